import { pathToFileURL } from 'node:url';
import { closeSioSockets, openSioSockets } from './sio-sockets.js';
import { closeSockets, newCounters, openSockets } from './sockets.js';

// A child process holding idle sockets open for the memory measurement (a process may have at
// most `ulimit -n` descriptors, so 10,000 sockets are split over two of these). It opens them,
// says how many it has, then holds them until told to close or until its parent goes away.
// `ws` sockets connect to /ws; `socketio` ones are Socket.IO clients (sio-sockets.ts), which
// answer Engine.IO's heartbeat by themselves while they idle.

export type SocketTransport = 'ws' | 'socketio';

export interface MemoryClientReport {
  opened: number;
  failed: string | null;
  /** Frames the sockets received (each gets its snapshots on connect). */
  frames: number;
}

export const isReport = (m: unknown): m is MemoryClientReport =>
  typeof m === 'object' && m !== null && typeof (m as { opened?: unknown }).opened === 'number';

async function main(url: string, count: number, transport: SocketTransport) {
  const counters = newCounters();
  let opened = 0;
  let close = () => {};
  let failed: string | null = null;
  try {
    if (transport === 'socketio') {
      const sockets = await openSioSockets(url, count, counters, 50);
      opened = sockets.length;
      close = () => closeSioSockets(sockets);
    } else {
      const sockets = await openSockets(url, count, counters, 50);
      opened = sockets.length;
      close = () => closeSockets(sockets);
    }
  } catch (error) {
    failed = (error as Error).message;
  }
  // Let the snapshots every socket receives on connect arrive before reporting.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const report: MemoryClientReport = { opened, failed, frames: counters.frames };
  process.send?.(report);
  const end = () => {
    close();
    process.exit(0);
  };
  process.on('message', (message) => {
    if (message === 'close') end();
  });
  process.on('disconnect', end);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const transport = process.argv[4] === 'socketio' ? 'socketio' : 'ws';
  void main(process.argv[2] ?? '', Number(process.argv[3]), transport);
}
