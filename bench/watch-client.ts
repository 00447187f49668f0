import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { startsWith } from './sockets.js';

// A child process holding the sockets of the subscription rows (subscriptions.ts), so that
// reading their frames shares neither the service's event loop nor the benchmark's: the socket
// clients of a row are split over a few of these. Each socket follows a list of users (given
// as `users=<id>` parameters in its connect query) or everyone. The process records every
// presence-change with its arrival time on the machine's monotonic clock
// (process.hrtime, the same clock in every process), the user it names and the socket; at the
// end, told when each change was sent, it answers the delivery times as a histogram, the
// deliveries missing, and the changes of users a socket does not follow. A socket that follows
// everyone keeps its last online-users-list, to be compared with the final state.

/** What the parent sends first: the sockets to open. */
export interface WatchClientSetup {
  type: 'setup';
  url: string;
  /** One entry per socket: the users it follows, or null for everyone. */
  lists: (string[] | null)[];
  concurrency: number;
}

/** The changes sent, in order, for the matching: the k-th change of a user at a socket is the
 * k-th change of that user sent. */
export interface WatchClientReportRequest {
  type: 'report';
  changes: { user: string; status: string; sentMs: number }[];
}

export interface WatchClientOpened {
  type: 'opened';
  opened: number;
  failed: string | null;
}

export interface WatchClientReport {
  type: 'report';
  sockets: number;
  /** Delivery time histogram: 0.1 ms buckets (key: bucket index), over matched deliveries. */
  histogram: Record<number, number>;
  matched: number;
  /** Deliveries owed (changes of users a socket follows, or every change for everyone). */
  expected: number;
  /** presence-change frames naming a user the socket does not follow. */
  foreign: number;
  /** presence-change frames beyond the changes sent of their user, or with the wrong status. */
  unexpected: number;
  wrongStatus: number;
  /** Per change (index in the request): the first and last arrival, ms after its send. */
  firstMs: (number | null)[];
  lastMs: (number | null)[];
  frames: { change: number; list: number; count: number; other: number };
  bytes: number;
  /** Close codes of the sockets the service closed, with counts. */
  closed: Record<string, number>;
  errors: number;
  /** This process's event-loop delay since its sockets opened: what its frames waited here. */
  lagMs: { p99: number; max: number };
}

/** Answer to `{type: 'lists'}`: bytes and list snapshots so far, and each last list's digest. */
export interface WatchClientLists {
  type: 'lists';
  bytes: number;
  /** presence-change frames received so far. */
  changes: number;
  /** List snapshots each socket has received so far. */
  lists: number[];
  lastLists: ({ digest: string; users: number } | null)[];
}

const PRESENCE_CHANGE = Buffer.from('{"event":"presence-change"');
const USERS_LIST = Buffer.from('{"event":"online-users-list"');
const USERS_COUNT = Buffer.from('{"event":"online-users-count"');
const ERROR = Buffer.from('{"event":"error"');
const BUCKET_MS = 0.1;

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** A list reduced to what the final-state check compares: every user's id, status and time. */
export function listDigest(items: { user: string; status: string; time: number }[]) {
  const hash = createHash('sha256');
  for (const { user, status, time } of items) hash.update(`${user}\t${status}\t${time}\n`);
  return { digest: hash.digest('hex'), users: items.length };
}

interface Socket {
  ws: WebSocket;
  follows: Set<string> | null;
  lists: number;
  last?: Buffer;
  /** The digest of `last`, once asked for (a new list clears it). */
  lastDigest?: { digest: string; users: number };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** `{"event":"presence-change","data":{"user":"<id>","status":"<status>",...`: read without
 * parsing the whole frame when the id needs no escapes (the benchmark's ids are digits). */
const FAST_USER = Buffer.from('{"event":"presence-change","data":{"user":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
function readChange(data: Buffer): { user: string; status: string } {
  if (startsWith(data, FAST_USER)) {
    const end = data.indexOf(QUOTE, FAST_USER.length);
    const statusAt = end + '","status":"'.length;
    const statusEnd = data.indexOf(QUOTE, statusAt);
    const slash = data.indexOf(BACKSLASH, FAST_USER.length);
    const between = data.toString('latin1', end, statusAt);
    if (between === '","status":"' && statusEnd > statusAt && (slash < 0 || slash > statusEnd)) {
      return {
        user: data.toString('latin1', FAST_USER.length, end),
        status: data.toString('latin1', statusAt, statusEnd),
      };
    }
  }
  return (JSON.parse(data.toString()) as { data: { user: string; status: string } }).data;
}

async function main() {
  const setup = await new Promise<WatchClientSetup>((resolve) =>
    process.once('message', (m) => resolve(m as WatchClientSetup)),
  );
  const sockets: Socket[] = [];
  // Every presence-change, as parallel arrays: arrival time, socket, user, status.
  const arrivals: number[] = [];
  const bySocket: number[] = [];
  const users: string[] = [];
  const statuses: string[] = [];
  const frames = { change: 0, list: 0, count: 0, other: 0 };
  let bytes = 0;
  let foreign = 0;
  let errors = 0;
  const closed: Record<string, number> = {};
  let ending = false;

  const open = (index: number, follows: string[] | null) =>
    new Promise<void>((resolve, reject) => {
      const query = follows ? follows.map((u) => `&users=${encodeURIComponent(u)}`).join('') : '';
      const ws = new WebSocket(`${setup.url}${query}`, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
      });
      const socket: Socket = { ws, follows: follows ? new Set(follows) : null, lists: 0 };
      sockets[index] = socket;
      ws.on('message', (data: Buffer) => {
        const at = nowMs();
        bytes += data.length;
        if (startsWith(data, PRESENCE_CHANGE)) {
          frames.change += 1;
          const change = readChange(data);
          if (socket.follows && !socket.follows.has(change.user)) foreign += 1;
          arrivals.push(at);
          bySocket.push(index);
          users.push(change.user);
          statuses.push(change.status);
        } else if (startsWith(data, USERS_LIST)) {
          frames.list += 1;
          socket.lists += 1;
          if (!socket.follows) {
            socket.last = data;
            socket.lastDigest = undefined;
          }
        } else if (startsWith(data, USERS_COUNT)) {
          frames.count += 1;
        } else {
          frames.other += 1;
          if (startsWith(data, ERROR)) errors += 1;
        }
      });
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('close', (code) => {
        if (!ending) closed[code] = (closed[code] ?? 0) + 1;
      });
    });

  let failed: string | null = null;
  let next = 0;
  const opener = async () => {
    while (next < setup.lists.length) {
      const index = next++;
      await open(index, setup.lists[index] ?? null);
    }
  };
  try {
    const workers = Math.min(setup.concurrency, setup.lists.length);
    await Promise.all(Array.from({ length: workers }, opener));
  } catch (error) {
    failed = (error as Error).message;
  }
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  process.send?.({
    type: 'opened',
    opened: sockets.filter(Boolean).length,
    failed,
  } satisfies WatchClientOpened);

  const lastLists = () =>
    sockets.map((s) => {
      if (!s || s.follows || !s.last) return null;
      if (!s.lastDigest) {
        const { data } = JSON.parse(s.last.toString()) as {
          data: { user: string; status: string; time: number }[];
        };
        s.lastDigest = listDigest(data);
      }
      return s.lastDigest;
    });
  const end = () => {
    ending = true;
    for (const s of sockets) s?.ws.terminate();
    process.exit(0);
  };
  process.on('disconnect', end);
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'close') end();
    if (message.type === 'lists') {
      process.send?.({
        type: 'lists',
        bytes,
        changes: frames.change,
        lists: sockets.map((s) => s?.lists ?? 0),
        lastLists: lastLists(),
      } satisfies WatchClientLists);
    }
    if (message.type !== 'report') return;
    const { changes } = message as WatchClientReportRequest;
    // Each user's changes in the order sent.
    const sendsOf = new Map<string, number[]>();
    changes.forEach((c, i) => {
      const list = sendsOf.get(c.user);
      if (list) list.push(i);
      else sendsOf.set(c.user, [i]);
    });
    const seen = sockets.map(() => new Map<string, number>());
    const histogram: Record<number, number> = {};
    const firstMs: (number | null)[] = changes.map(() => null);
    const lastMs: (number | null)[] = changes.map(() => null);
    let matched = 0;
    let unexpected = 0;
    let wrongStatus = 0;
    for (let i = 0; i < arrivals.length; i++) {
      const user = users[i] as string;
      const counts = seen[bySocket[i] as number] as Map<string, number>;
      const k = counts.get(user) ?? 0;
      counts.set(user, k + 1);
      const change = sendsOf.get(user)?.[k];
      const sent = change === undefined ? undefined : changes[change];
      if (change === undefined || !sent) {
        unexpected += 1;
        continue;
      }
      if (sent.status !== statuses[i]) wrongStatus += 1;
      const ms = (arrivals[i] as number) - sent.sentMs;
      const bucket = Math.max(0, Math.floor(ms / BUCKET_MS));
      histogram[bucket] = (histogram[bucket] ?? 0) + 1;
      firstMs[change] = Math.min(firstMs[change] ?? ms, ms);
      lastMs[change] = Math.max(lastMs[change] ?? ms, ms);
      matched += 1;
    }
    // Deliveries owed: for each user, the changes sent times the sockets here following it.
    let expected = 0;
    for (const s of sockets) {
      if (!s) continue;
      if (!s.follows) expected += changes.length;
      else for (const user of s.follows) expected += sendsOf.get(user)?.length ?? 0;
    }
    const report: WatchClientReport = {
      type: 'report',
      sockets: sockets.length,
      histogram,
      matched,
      expected,
      foreign,
      unexpected,
      wrongStatus,
      firstMs,
      lastMs,
      frames,
      bytes,
      closed,
      errors,
      lagMs: { p99: round1(lag.percentile(99) / 1e6), max: round1(lag.max / 1e6) },
    };
    process.send?.(report);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void main();
}
