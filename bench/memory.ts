import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import { isReport, type MemoryClientReport, type SocketTransport } from './memory-client.js';
import { exited, nextMessage, onCleanup, rssKiB, sleep, spawnScript } from './process.js';
import { round } from './stats.js';

// Resident memory per idle socket: the service's RSS (VmRSS) once settled, before and after
// `sockets` idle sockets are opened by separate client processes (at most 5,000 each, within
// the descriptor limit), again once settled. A warm-up round of 1,000 sockets, opened and
// closed, comes first: V8's area for short-lived objects grows once, by about 13 MB, the first
// time many sockets connect, whatever their number; that is not a cost of each socket.
// The same for Socket.IO sockets (transport `socketio`: socket.io-client over the WebSocket
// transport), on a service of their own, with their own warm-up.

export interface MemoryResult {
  /** `ws` (absent in older results) or `socketio`. */
  transport?: SocketTransport;
  sockets: number;
  clientProcesses: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  /** After the sockets closed again, once settled: what the service kept. */
  rssAfterCloseKiB: number;
  kibPerSocket: number;
  settleS: number;
  /** From the warm-up to the last sample after closing. */
  cpu?: CpuShare;
}

const PER_CLIENT = 5_000;
const WARM_UP_SOCKETS = 1_000;

/** RSS once it moves less than 1% over three samples (or after `maxS`). */
async function settledRss(pid: number, maxS: number): Promise<{ rss: number; seconds: number }> {
  const began = performance.now();
  const samples = [await rssKiB(pid)];
  const interval = maxS < 10 ? 250 : 1_000;
  while ((performance.now() - began) / 1000 < maxS) {
    await sleep(interval);
    samples.push(await rssKiB(pid));
    const last = samples.slice(-4);
    if (last.length === 4 && Math.max(...last) - Math.min(...last) < 0.01 * Math.max(...last)) {
      break;
    }
  }
  const rss = samples.at(-1) ?? 0;
  return { rss, seconds: round((performance.now() - began) / 1000, 1) };
}

export async function runMemory(options: {
  /** The /ws address (with its key), or the service's address for Socket.IO. */
  url: string;
  transport?: SocketTransport;
  servicePid: number;
  sockets: number;
  maxSettleS: number;
  cpu?: CpuTargets;
}): Promise<MemoryResult> {
  const transport = options.transport ?? 'ws';
  const open = (sockets: number) => openIdleSockets(options.url, sockets, transport);
  const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
  // A failed step must still stop the sampler (its timer would keep the benchmark alive).
  const stopSampler = onCleanup(async () => {
    await sampler?.stop();
  });
  const warmUp = await open(Math.min(WARM_UP_SOCKETS, options.sockets));
  await warmUp.close();
  const before = await settledRss(options.servicePid, options.maxSettleS);
  const idle = await open(options.sockets);
  try {
    const after = await settledRss(options.servicePid, options.maxSettleS);
    await idle.close();
    const afterClose = await settledRss(options.servicePid, options.maxSettleS);
    const cpu = await sampler?.stop();
    await stopSampler();
    return {
      transport,
      sockets: idle.opened,
      clientProcesses: idle.processes,
      rssBeforeKiB: before.rss,
      rssAfterKiB: after.rss,
      rssAfterCloseKiB: afterClose.rss,
      kibPerSocket: round((after.rss - before.rss) / idle.opened, 2),
      settleS: after.seconds,
      ...(cpu ? { cpu } : {}),
    };
  } finally {
    await idle.close();
  }
}

/** `sockets` idle sockets, opened by as many client processes as the descriptor limit needs. */
async function openIdleSockets(url: string, sockets: number, transport: SocketTransport) {
  const processes = Math.ceil(sockets / PER_CLIENT);
  const clients = Array.from({ length: processes }, (_, i) => {
    const count = Math.min(PER_CLIENT, sockets - i * PER_CLIENT);
    return spawnScript('memory-client.ts', [url, String(count), transport]);
  });
  const close = onCleanup(async () => {
    for (const client of clients) if (client.connected) client.send('close');
    await Promise.race([Promise.all(clients.map(exited)), sleep(5_000)]);
    for (const client of clients) if (client.exitCode === null) client.kill('SIGKILL');
  });
  try {
    const reports: MemoryClientReport[] = await Promise.all(
      clients.map((client) => nextMessage(client, isReport, 120_000)),
    );
    const failed = reports.find((r) => r.failed);
    if (failed) throw new Error(`a memory client could not open its sockets: ${failed.failed}`);
    return { opened: reports.reduce((sum, r) => sum + r.opened, 0), processes, close };
  } catch (error) {
    await close();
    throw error;
  }
}
