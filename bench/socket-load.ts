import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import {
  type ClientSocket,
  closeSockets,
  errorCount,
  newCounters,
  openSockets,
  pingFrame,
  userNeedle,
} from './sockets.js';
import { heartbeatStatus, otherStatus, type Status, userWalk } from './users.js';

// Sustained `user-ping` frames over many sockets. A socket ping is never acknowledged, and a
// socket may have at most 64 pings waiting for the database, so each socket is paced by a
// window: a burst of heartbeats, then one ping that changes the socket's own marker user, and
// the next burst once that marker's presence-change has come back. Pings of a socket are stored
// in the order sent, so by then the whole burst is stored. Every frame sent is counted, markers
// included; the run ends when the last burst begun before the deadline has come back.

export interface SocketLoadResult {
  sockets: number;
  burst: number;
  durationS: number;
  frames: number;
  /** Ping frames per second, stored. */
  framesPerSecond: number;
  /** Marker pings (status changes) per second, each fanned out to every socket. */
  changesPerSecond: number;
  /** `error` frames received, by code: there must be none. */
  errors: Record<string, number>;
  /** Frames (and bytes) the sockets received: changes and snapshots. */
  received: { frames: number; megabytes: number };
  cpu?: CpuShare;
}

const MARKER_TIMEOUT_MS = 15_000;

export async function runSocketLoad(options: {
  wsUrl: string;
  sockets: number;
  burst: number;
  durationS: number;
  users: number;
  start?: number;
  cpu?: CpuTargets;
}): Promise<SocketLoadResult> {
  const counters = newCounters();
  const clients = await openSockets(options.wsUrl, options.sockets, counters);
  try {
    const nextUser = userWalk(options.users, options.start ?? 0);
    const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
    const begin = performance.now();
    const deadline = begin + options.durationS * 1000;
    let frames = 0;
    let changes = 0;

    const drive = async (client: ClientSocket, index: number) => {
      const marker = `bench-marker-${index + 1}`;
      client.watch = userNeedle(marker);
      let markerStatus: Status = 'busy';
      while (performance.now() < deadline) {
        for (let i = 0; i < options.burst; i++) {
          const user = nextUser();
          client.socket.send(pingFrame(user, heartbeatStatus(user)));
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
        client.socket.send(pingFrame(marker, expected));
        frames += options.burst + 1;
        changes += 1;
        await back;
      }
    };

    await Promise.all(clients.map(drive));
    const seconds = (performance.now() - begin) / 1000;
    const cpu = await sampler?.stop();
    return {
      sockets: options.sockets,
      burst: options.burst,
      durationS: round(seconds),
      frames,
      framesPerSecond: Math.round(frames / seconds),
      changesPerSecond: Math.round(changes / seconds),
      errors: Object.fromEntries(counters.errors),
      received: { frames: counters.frames, megabytes: round(counters.bytes / 2 ** 20) },
      ...(cpu ? { cpu } : {}),
    };
  } finally {
    closeSockets(clients);
  }
}

export const socketErrors = (result: SocketLoadResult) =>
  errorCount({ frames: 0, bytes: 0, closed: 0, errors: new Map(Object.entries(result.errors)) });

const round = (n: number) => Math.round(n * 100) / 100;
