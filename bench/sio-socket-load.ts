import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import { onCleanup } from './process.js';
import { closeSioSockets, openSioSockets, type SioClient } from './sio-sockets.js';
import { newCounters } from './sockets.js';
import { percentile, round } from './stats.js';
import { heartbeatStatus, otherStatus, type Status, userWalk } from './users.js';

// Sustained `user-ping` events over many Socket.IO sockets (socket.io-client, WebSocket
// transport), in two ways:
// - without acknowledgements, paced as the /ws socket ping row (socket-load.ts): a burst of
//   heartbeats, then one ping that changes the socket's own marker user, and the next burst
//   once that marker's presence-change has come back (a socket's pings are stored in order);
// - with acknowledgements: each socket keeps `burst` heartbeats in flight, each with its
//   callback, and sends the next as each is answered (`{data: counts}` once stored). No marker
//   is needed, so nothing is fanned out but the snapshots of the counts.
// A socket may have at most 64 pings waiting for the database; `burst` + 1 stays under it.

export type SioPingMode = 'no-ack' | 'ack';

export interface SioPingResult {
  mode: SioPingMode;
  sockets: number;
  /** Heartbeats per burst (no-ack) or in flight per socket (ack). */
  burst: number;
  durationS: number;
  frames: number;
  /** Ping events per second, stored (acknowledged ones, with acknowledgements). */
  framesPerSecond: number;
  /** Marker pings (status changes) per second (no-ack only), each fanned out to every socket. */
  changesPerSecond: number;
  /** `error` events (no-ack) or acknowledgements with an error (ack), by code: must be none. */
  errors: Record<string, number>;
  /** From the emit to its acknowledgement (ack only). */
  ackMs?: { p50: number; p99: number; max: number };
  /** Packets (and bytes) the sockets received: changes, snapshots, acknowledgements. */
  received: { frames: number; megabytes: number };
  /** Sockets the service closed during the run. */
  closed: number;
  cpu?: CpuShare;
}

const MARKER_TIMEOUT_MS = 15_000;

type Answer = { data: unknown } | { error: { code: string } };

export async function runSioSocketLoad(options: {
  url: string;
  mode: SioPingMode;
  sockets: number;
  burst: number;
  durationS: number;
  users: number;
  start?: number;
  cpu?: CpuTargets;
}): Promise<SioPingResult> {
  const counters = newCounters();
  const clients = await openSioSockets(options.url, options.sockets, counters);
  const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
  const stopSampler = onCleanup(async () => {
    await sampler?.stop();
  });
  try {
    const nextUser = userWalk(options.users, options.start ?? 0);
    const begin = performance.now();
    const deadline = begin + options.durationS * 1000;
    const ackErrors = new Map<string, number>();
    const ackMs: number[] = [];
    let frames = 0;
    let stored = 0;
    let changes = 0;

    const noAck = async (client: SioClient, index: number) => {
      const marker = `bench-sio-marker-${index + 1}`;
      let markerStatus: Status = 'busy';
      while (performance.now() < deadline) {
        for (let i = 0; i < options.burst; i++) {
          const user = nextUser();
          client.socket.emit('user-ping', { id: user, status: heartbeatStatus(user) });
        }
        markerStatus = otherStatus(markerStatus);
        const expected = markerStatus;
        const back = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(new Error(`no presence-change for ${marker} within ${MARKER_TIMEOUT_MS} ms`)),
            MARKER_TIMEOUT_MS,
          );
          client.onChange = (change) => {
            if (change.user !== marker || change.status !== expected) return;
            clearTimeout(timer);
            resolve();
          };
        });
        client.socket.emit('user-ping', { id: marker, status: expected });
        frames += options.burst + 1;
        stored += options.burst + 1;
        changes += 1;
        await back;
      }
    };

    const withAck = (client: SioClient) =>
      new Promise<void>((resolve, reject) => {
        let inFlight = 0;
        const send = () => {
          const user = nextUser();
          const sent = performance.now();
          inFlight += 1;
          frames += 1;
          client.socket
            .timeout(MARKER_TIMEOUT_MS)
            .emit(
              'user-ping',
              { id: user, status: heartbeatStatus(user) },
              (timedOut: Error | null, answer: Answer) => {
                inFlight -= 1;
                if (timedOut) {
                  reject(new Error(`no acknowledgement within ${MARKER_TIMEOUT_MS} ms`));
                  return;
                }
                const now = performance.now();
                if ('data' in answer) {
                  stored += 1;
                  ackMs.push(now - sent);
                } else {
                  const code = answer.error?.code ?? 'unknown';
                  ackErrors.set(code, (ackErrors.get(code) ?? 0) + 1);
                }
                if (now < deadline) send();
                else if (inFlight === 0) resolve();
              },
            );
        };
        for (let i = 0; i < options.burst; i++) send();
      });

    await Promise.all(
      clients.map((client, index) =>
        options.mode === 'ack' ? withAck(client) : noAck(client, index),
      ),
    );
    const seconds = (performance.now() - begin) / 1000;
    const cpu = await sampler?.stop();
    await stopSampler();
    const sorted = ackMs.sort((a, b) => a - b);
    const errors = new Map(counters.errors);
    for (const [code, count] of ackErrors) errors.set(code, (errors.get(code) ?? 0) + count);
    return {
      mode: options.mode,
      sockets: options.sockets,
      burst: options.burst,
      durationS: round(seconds),
      frames,
      framesPerSecond: Math.round(stored / seconds),
      changesPerSecond: Math.round(changes / seconds),
      errors: Object.fromEntries(errors),
      ...(options.mode === 'ack'
        ? {
            ackMs: {
              p50: percentile(sorted, 50),
              p99: percentile(sorted, 99),
              max: percentile(sorted, 100),
            },
          }
        : {}),
      received: { frames: counters.frames, megabytes: round(counters.bytes / 2 ** 20) },
      closed: counters.closed,
      ...(cpu ? { cpu } : {}),
    };
  } finally {
    await stopSampler();
    closeSioSockets(clients);
  }
}
