import { pathToFileURL } from 'node:url';
import { closeSockets, newCounters, openSockets } from './sockets.js';

// A child process holding idle sockets open for the memory measurement (a process may have at
// most `ulimit -n` descriptors, so 10,000 sockets are split over two of these). It opens them,
// says how many it has, then holds them until told to close or until its parent goes away.

export interface MemoryClientReport {
  opened: number;
  failed: string | null;
  /** Frames the sockets received (each gets its snapshots on connect). */
  frames: number;
}

export const isReport = (m: unknown): m is MemoryClientReport =>
  typeof m === 'object' && m !== null && typeof (m as { opened?: unknown }).opened === 'number';

async function main(url: string, count: number) {
  const counters = newCounters();
  let sockets: Awaited<ReturnType<typeof openSockets>> = [];
  let failed: string | null = null;
  try {
    sockets = await openSockets(url, count, counters, 50);
  } catch (error) {
    failed = (error as Error).message;
  }
  // Let the snapshots every socket receives on connect arrive before reporting.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const report: MemoryClientReport = { opened: sockets.length, failed, frames: counters.frames };
  process.send?.(report);
  const end = () => {
    closeSockets(sockets);
    process.exit(0);
  };
  process.on('message', (message) => {
    if (message === 'close') end();
  });
  process.on('disconnect', end);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void main(process.argv[2] ?? '', Number(process.argv[3]));
}
