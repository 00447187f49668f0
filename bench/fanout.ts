import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import type { SocketTransport } from './memory-client.js';
import { onCleanup, sleep } from './process.js';
import { ACCESS_KEY } from './service.js';
import { closeSioSockets, openSioSockets } from './sio-sockets.js';
import {
  type Change,
  closeSockets,
  errorCount,
  newCounters,
  openSockets,
  type SocketCounters,
  userNeedle,
} from './sockets.js';
import { percentile } from './stats.js';

// From a status change to its presence-change on every subscribed socket: an HTTP ping that
// changes a user's status, timed from just before the request is sent to the frame's arrival at
// each socket. All sockets live in this one process, so the later ones also wait for the
// earlier ones' frames to be read here. The same with Socket.IO sockets (transport `socketio`,
// socket.io-client over the WebSocket transport), whose client decodes every packet it gets.

export interface FanoutResult {
  /** `ws` (absent in older results) or `socketio`. */
  transport?: SocketTransport;
  sockets: number;
  changes: number;
  /** Over every (change, socket) delivery. */
  deliveryMs: { p50: number; p99: number; max: number };
  /** Per change, until the first socket had it (the path through the database and the feed). */
  firstSocketMs: { p50: number; max: number };
  /** Per change, until the last socket had it. */
  lastSocketMs: { p50: number; max: number };
  /** The HTTP ping's own answer time, for comparison. */
  pingAnswerMs: { p50: number; max: number };
  /** Deliveries that never came (within 5 s). */
  missing: number;
  errors: number;
  /** While the changes went out (from the sockets' first snapshots to the last change's wait). */
  cpu?: CpuShare;
}

const USER = 'bench-fanout';
const DELIVERY_TIMEOUT_MS = 5_000;

/** A socket of either transport, told of every presence-change (`watch`: a cheap filter). */
interface ChangeClient {
  onChange?: (change: Change) => void;
  watch?: Buffer;
}

async function openClients(
  transport: SocketTransport,
  url: string,
  wsUrl: string,
  count: number,
  counters: SocketCounters,
): Promise<{ clients: ChangeClient[]; close: () => void }> {
  if (transport === 'socketio') {
    const clients = await openSioSockets(url, count, counters);
    return { clients, close: () => closeSioSockets(clients) };
  }
  const clients = await openSockets(wsUrl, count, counters);
  return { clients, close: () => closeSockets(clients) };
}

export async function runFanout(options: {
  url: string;
  wsUrl: string;
  transport?: SocketTransport;
  sockets: number;
  changes: number;
  /** Between changes, so that each change's snapshot has gone out before the next. */
  gapMs?: number;
  cpu?: CpuTargets;
}): Promise<FanoutResult> {
  const transport = options.transport ?? 'ws';
  const ping = (status: string) =>
    fetch(`${options.url}/users/ping`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACCESS_KEY}` },
      body: JSON.stringify({ id: USER, status }),
    }).then(async (response) => {
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`ping answered ${response.status}`);
    });
  // The user exists before the first timed change, and the HTTP connection is open.
  await ping('available');
  const counters = newCounters();
  const { clients, close } = await openClients(
    transport,
    options.url,
    options.wsUrl,
    options.sockets,
    counters,
  );
  const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
  const stopSampler = onCleanup(async () => {
    await sampler?.stop();
  });
  try {
    await sleep(500); // every socket's first snapshots have gone out
    const deliveries: number[] = [];
    const firstSocket: number[] = [];
    const lastSocket: number[] = [];
    const answers: number[] = [];
    let missing = 0;
    for (let i = 0; i < options.changes; i++) {
      const status = i % 2 === 0 ? 'busy' : 'available';
      const arrived: number[] = [];
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => {
        done = resolve;
      });
      let sent = 0;
      for (const client of clients) {
        let seen = false;
        client.watch = userNeedle(USER);
        client.onChange = (change) => {
          if (seen || change.user !== USER || change.status !== status) return;
          seen = true;
          arrived.push(performance.now() - sent);
          if (arrived.length === clients.length) done();
        };
      }
      sent = performance.now();
      await ping(status);
      answers.push(performance.now() - sent);
      await Promise.race([all, sleep(DELIVERY_TIMEOUT_MS)]);
      missing += clients.length - arrived.length;
      deliveries.push(...arrived);
      if (arrived.length > 0) firstSocket.push(Math.min(...arrived));
      lastSocket.push(Math.max(0, ...arrived));
      await sleep((options.gapMs ?? 250) + Math.random() * 100);
    }
    const cpu = await sampler?.stop();
    await stopSampler();
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    const d = sorted(deliveries);
    const f = sorted(firstSocket);
    const l = sorted(lastSocket);
    const a = sorted(answers);
    return {
      transport,
      sockets: options.sockets,
      changes: options.changes,
      deliveryMs: { p50: percentile(d, 50), p99: percentile(d, 99), max: percentile(d, 100) },
      firstSocketMs: { p50: percentile(f, 50), max: percentile(f, 100) },
      lastSocketMs: { p50: percentile(l, 50), max: percentile(l, 100) },
      pingAnswerMs: { p50: percentile(a, 50), max: percentile(a, 100) },
      missing,
      errors: errorCount(counters),
      ...(cpu ? { cpu } : {}),
    };
  } finally {
    close();
  }
}
