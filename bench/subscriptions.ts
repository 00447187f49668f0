import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import type pg from 'pg';
import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import { restoreHeartbeatStatus } from './fill.js';
import { exited, nextMessage, onCleanup, sleep, spawnScript } from './process.js';
import { ACCESS_KEY, ACCESS_KEY_SYSTEM } from './service.js';
import { percentile, round } from './stats.js';
import { heartbeatStatus, otherStatus, type Status } from './users.js';
import {
  listDigest,
  nowMs,
  type WatchClientLists,
  type WatchClientOpened,
  type WatchClientReport,
  type WatchClientSetup,
} from './watch-client.js';

// The subscription rows (issue "Subscriptions that scale"):
//
// - Watch-list fan-out: many sockets, each following a list of users (`users=<id>` parameters
//   in its connect query), while REST pings change the statuses of a set of users at a steady
//   rate. Every presence-change is timed from just before its ping is sent to its arrival at
//   each follower; every socket checks that it hears no change of a user it does not follow.
// - Everyone-followers under steady change: a few sockets following everyone (the default)
//   while one user changes every `periodMs`; no socket may be closed, and once the changes
//   stop, every socket's last online-users-list must show the final state (the same users,
//   statuses and times as GET /users/list/all).
//
// The sockets live in child processes (watch-client.ts, at most 5,000 each, within the
// descriptor limit), apart from the service and from this process, which sends the pings.

const PER_CLIENT = 5_000;
const CONNECT_CONCURRENCY = 50;

export interface Distribution {
  p50: number;
  p99: number;
  max: number;
}

interface Deliveries {
  /** Over every (change, follower) delivery that came. */
  deliveryMs: Distribution;
  /** Per change, until its first and its last follower had it. */
  firstFollowerMs: { p50: number; max: number };
  lastFollowerMs: { p50: number; max: number };
  delivered: number;
  expected: number;
  missing: number;
  /** Changes of a user the socket does not follow: there must be none. */
  foreign: number;
  /** Changes beyond those sent for their user, or with another status than sent. */
  unexpected: number;
  wrongStatus: number;
}

interface Received {
  frames: { change: number; list: number; count: number; other: number };
  megabytes: number;
  /** Sockets the service closed, by close code: there must be none. */
  closed: Record<string, number>;
  errors: number;
}

export interface WatchFanoutResult extends Deliveries, Received {
  users: number;
  sockets: number;
  perSocket: number;
  changingUsers: number;
  /** Sockets following each changing user. */
  followers: { min: number; mean: number; max: number };
  seed: number;
  clientProcesses: number;
  connectS: number;
  changes: number;
  /** The rate the pings were sent at (from the first send to the last). */
  changesPerSecond: number;
  /** Pings not answered 2xx, by status code or error. */
  failedPings: Record<string, number>;
  /** From the first ping sent to the last one sent. */
  durationS: number;
  /** From the first ping sent to the last one answered. */
  answeredS: number;
  /** Each ping's answer, from its send: the part of a delivery's time before the fan-out. */
  pingAnsweredMs: { p50: number; p99: number; max: number };
  /** The client processes' event-loop delay (the worst of them): time their frames waited there. */
  clientLagMs: { p99: number; max: number };
  /** Measured from the first change to the end of the drain after the last. */
  cpu?: CpuShare;
  cpuSeconds: number;
  /** The service's CPU time over the measurement divided by the presence-change frames delivered. */
  serviceUsPerFrame: number;
  postgresUsPerFrame: number;
  /** The service's event-loop delay over the measurement (from its /metrics). */
  eventLoopLagMs?: { p99: number; max: number };
}

export interface EveryoneSteadyResult extends Deliveries, Received {
  users: number;
  sockets: number;
  periodMs: number;
  changes: number;
  failedPings: Record<string, number>;
  durationS: number;
  /** The client process's event-loop delay: what its frames waited there. */
  clientLagMs: { p99: number; max: number };
  /** Bytes each socket received a second, over the changes (snapshots and changes). */
  bytesPerSecondPerSocket: number;
  /** online-users-list frames each socket received over the changes (min, mean, max). */
  listsPerSocket: { min: number; mean: number; max: number };
  /** Sockets whose last list was the final state, when checked. */
  finalListSockets: number;
  /** From the last ping's answer until every socket's last list was the final state. */
  finalListAfterS: number | null;
  settleS: number;
  /** The service's event-loop delay over the changes (from its /metrics). */
  eventLoopLagMs?: { p99: number; max: number };
  cpu?: CpuShare;
  cpuSeconds: number;
}

/** A small seeded generator (mulberry32): the same lists in every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The service's event-loop delay since the previous call, from its /metrics (prom-client's
 * monitor, 10 ms resolution, reset at each scrape): how long its loop was held up, by snapshot
 * rounds among others, during which no frame went out.
 */
async function eventLoopLag(url: string): Promise<{ p99: number; max: number } | undefined> {
  const response = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${ACCESS_KEY_SYSTEM}` },
  }).catch(() => undefined);
  if (!response?.ok) return undefined;
  const text = await response.text();
  const read = (name: string) =>
    round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN) * 1000, 1);
  return {
    p99: read('nodejs_eventloop_lag_p99_seconds'),
    max: read('nodejs_eventloop_lag_max_seconds'),
  };
}

/** Socket descriptors the service may hold: its soft `Max open files`. */
async function openFileLimit(pid: number): Promise<number> {
  const limits = await fs.readFile(`/proc/${pid}/limits`, 'utf8');
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return match?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match?.[1] ?? 0);
}

/** Client processes holding `lists` sockets, all open, and a way to ask and to end them. */
async function openClients(wsUrl: string, lists: (string[] | null)[]) {
  const processes = Math.ceil(lists.length / PER_CLIENT);
  const children: ChildProcess[] = [];
  const close = onCleanup(async () => {
    for (const child of children) if (child.connected) child.send({ type: 'close' });
    await Promise.race([Promise.all(children.map(exited)), sleep(5_000)]);
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });
  try {
    for (let i = 0; i < processes; i++) {
      const child = spawnScript('watch-client.ts');
      children.push(child);
      const setup: WatchClientSetup = {
        type: 'setup',
        url: wsUrl,
        lists: lists.slice(i * PER_CLIENT, (i + 1) * PER_CLIENT),
        concurrency: CONNECT_CONCURRENCY,
      };
      child.send(setup);
    }
    const opened = await Promise.all(
      children.map((child) =>
        nextMessage(
          child,
          (m): m is WatchClientOpened => (m as { type?: string }).type === 'opened',
          300_000,
        ),
      ),
    );
    const failed = opened.find((o) => o.failed);
    if (failed) throw new Error(`a socket client could not open its sockets: ${failed.failed}`);
  } catch (error) {
    await close();
    throw error;
  }
  const ask = <T>(request: object, type: string) =>
    Promise.all(
      children.map((child) => {
        const answer = nextMessage(
          child,
          (m): m is T => (m as { type?: string }).type === type,
          120_000,
        );
        child.send(request);
        return answer;
      }),
    );
  return {
    processes,
    close,
    report: (changes: Sent[]) =>
      ask<WatchClientReport>({ type: 'report', changes }, 'report').then(merge),
    lists: () => ask<WatchClientLists>({ type: 'lists' }, 'lists'),
  };
}

interface Sent {
  user: string;
  status: string;
  sentMs: number;
}

/** The reports of every client process as one. */
function merge(reports: WatchClientReport[]) {
  const histogram = new Map<number, number>();
  let matched = 0;
  let expected = 0;
  let foreign = 0;
  let unexpected = 0;
  let wrongStatus = 0;
  let bytes = 0;
  let errors = 0;
  const frames = { change: 0, list: 0, count: 0, other: 0 };
  const closed: Record<string, number> = {};
  const first: (number | null)[] = [];
  const last: (number | null)[] = [];
  for (const r of reports) {
    for (const [bucket, count] of Object.entries(r.histogram)) {
      histogram.set(Number(bucket), (histogram.get(Number(bucket)) ?? 0) + count);
    }
    matched += r.matched;
    expected += r.expected;
    foreign += r.foreign;
    unexpected += r.unexpected;
    wrongStatus += r.wrongStatus;
    bytes += r.bytes;
    errors += r.errors;
    for (const key of Object.keys(frames) as (keyof typeof frames)[]) frames[key] += r.frames[key];
    for (const [code, count] of Object.entries(r.closed))
      closed[code] = (closed[code] ?? 0) + count;
    r.firstMs.forEach((ms, i) => {
      if (ms !== null) first[i] = Math.min(first[i] ?? ms, ms);
    });
    r.lastMs.forEach((ms, i) => {
      if (ms !== null) last[i] = Math.max(last[i] ?? ms, ms);
    });
  }
  /** The p-th percentile of the histogram (0.1 ms buckets), in ms. */
  const fromHistogram = (p: number) => {
    const rank = Math.max(1, Math.ceil((p / 100) * matched));
    let seen = 0;
    for (const [bucket, count] of [...histogram].sort((a, b) => a[0] - b[0])) {
      seen += count;
      if (seen >= rank) return round((bucket + 1) / 10, 1);
    }
    return 0;
  };
  const sorted = (values: (number | null)[]) =>
    values.filter((v): v is number => v !== null && v !== undefined).sort((a, b) => a - b);
  const f = sorted(first);
  const l = sorted(last);
  const deliveries: Deliveries = {
    deliveryMs: { p50: fromHistogram(50), p99: fromHistogram(99), max: fromHistogram(100) },
    firstFollowerMs: { p50: percentile(f, 50), max: percentile(f, 100) },
    lastFollowerMs: { p50: percentile(l, 50), max: percentile(l, 100) },
    delivered: matched,
    expected,
    missing: Math.max(0, expected - matched),
    foreign,
    unexpected,
    wrongStatus,
  };
  const received: Received = { frames, megabytes: round(bytes / 2 ** 20, 1), closed, errors };
  const clientLag = {
    p99: Math.max(...reports.map((r) => r.lagMs.p99)),
    max: Math.max(...reports.map((r) => r.lagMs.max)),
  };
  return { deliveries, received, clientLag };
}

/**
 * REST pings, one every `periodMs` for `durationS`, each flipping the status of the user
 * `pick()` names (from its heartbeat status to the other and back), not waiting for the answer
 * before the next is due. Each is timed from just before it is sent.
 */
async function pingChanges(
  url: string,
  options: { periodMs: number; durationS: number; pick: (i: number) => number },
) {
  const current = new Map<number, Status>();
  const sent: Sent[] = [];
  /** Pings not answered 2xx, by status code or error. */
  const failures: Record<string, number> = {};
  const fail = (reason: string) => {
    failures[reason] = (failures[reason] ?? 0) + 1;
  };
  const answers: Promise<void>[] = [];
  /** Each ping answered 2xx: ms from its send to its answer. */
  const answerMs: number[] = [];
  const count = Math.floor((options.durationS * 1000) / options.periodMs);
  const began = nowMs();
  for (let i = 0; i < count; i++) {
    const wait = began + i * options.periodMs - nowMs();
    if (wait > 0) await sleep(wait);
    const user = options.pick(i);
    const status = otherStatus(current.get(user) ?? heartbeatStatus(user));
    current.set(user, status);
    const sentMs = nowMs();
    sent.push({ user: String(user), status, sentMs });
    answers.push(
      fetch(`${url}/users/ping`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACCESS_KEY}` },
        body: JSON.stringify({ id: user, status }),
      }).then(
        async (response) => {
          await response.arrayBuffer();
          if (!response.ok) fail(String(response.status));
          else answerMs.push(nowMs() - sentMs);
        },
        (error: Error) => fail((error.cause as Error | undefined)?.message ?? error.message),
      ),
    );
  }
  // The rate the pings were sent at: from the first send to the last.
  const sendingS = ((sent.at(-1)?.sentMs ?? began) - began) / 1000;
  await Promise.all(answers);
  const answeredS = (nowMs() - began) / 1000;
  // Users whose status is no longer their heartbeat status, to be given it back.
  const flipped = [...current].filter(([user, s]) => s !== heartbeatStatus(user)).map(([u]) => u);
  answerMs.sort((a, b) => a - b);
  const pingAnsweredMs = {
    p50: percentile(answerMs, 50),
    p99: percentile(answerMs, 99),
    max: percentile(answerMs, 100),
  };
  return { sent, failures, sendingS, answeredS, flipped, pingAnsweredMs };
}

export async function runWatchFanout(options: {
  url: string;
  wsUrl: string;
  servicePid: number;
  db: pg.Client;
  users: number;
  sockets: number;
  perSocket: number;
  changingUsers: number;
  changesPerSecond: number;
  durationS: number;
  cpu?: CpuTargets;
  drainS?: number;
  seed?: number;
}): Promise<WatchFanoutResult> {
  const { sockets, perSocket, changingUsers, users } = options;
  const limit = await openFileLimit(options.servicePid);
  if (limit < sockets + 1_000) {
    throw new Error(
      `the service may open ${limit} files (ulimit -n): too few for ${sockets} sockets; raise it`,
    );
  }
  const seed = options.seed ?? 20_261_207;
  const rand = random(seed);
  // The changing users, spread evenly over the table; each socket follows `perSocket` of them,
  // drawn at random without repeats (a partial shuffle), so each has about
  // sockets x perSocket / changingUsers followers and no two sockets need share a list.
  const changing = Array.from(
    { length: changingUsers },
    (_, k) => 1 + Math.floor((k * users) / changingUsers),
  );
  const pool = [...changing];
  const followers = new Map<number, number>();
  const lists = Array.from({ length: sockets }, () => {
    for (let j = 0; j < perSocket; j++) {
      const other = j + Math.floor(rand() * (pool.length - j));
      [pool[j], pool[other]] = [pool[other] as number, pool[j] as number];
    }
    const list = pool.slice(0, perSocket);
    for (const user of list) followers.set(user, (followers.get(user) ?? 0) + 1);
    return list.map(String);
  });
  const counts = changing.map((user) => followers.get(user) ?? 0);

  const connectBegan = performance.now();
  const clients = await openClients(options.wsUrl, lists);
  const connectS = round((performance.now() - connectBegan) / 1000, 1);
  try {
    await sleep(2_000); // every socket's first list and counts have gone out
    await eventLoopLag(options.url);
    const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
    const began = performance.now();
    // Changes walk the changing users in a shuffled order, round and round.
    const order = [...changing];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const run = await pingChanges(options.url, {
      periodMs: 1000 / options.changesPerSecond,
      durationS: options.durationS,
      pick: (i) => order[i % order.length] as number,
    });
    // Deliveries still on their way are waited for: until all have come, or none came for
    // `drainS`, or a minute has passed since the last ping was answered.
    const owed = run.sent.reduce((sum, c) => sum + (followers.get(Number(c.user)) ?? 0), 0);
    const drainBegan = performance.now();
    let lastCount = -1;
    let lastMoved = drainBegan;
    for (;;) {
      const count = (await clients.lists()).reduce((sum, a) => sum + a.changes, 0);
      const now = performance.now();
      if (count !== lastCount) lastMoved = now;
      lastCount = count;
      if (count >= owed || now - lastMoved > (options.drainS ?? 3) * 1000) break;
      if (now - drainBegan > 60_000) break;
      await sleep(250);
    }
    const cpu = await sampler?.stop();
    const cpuSeconds = round((performance.now() - began) / 1000, 1);
    const lag = await eventLoopLag(options.url);
    const { deliveries, received, clientLag } = await clients.report(run.sent);
    await restoreHeartbeatStatus(options.db, run.flipped);
    const perFrame = (share: number | undefined) =>
      Math.round((((share ?? 0) / 100) * cpuSeconds * 1e6) / Math.max(1, deliveries.delivered));
    return {
      users,
      sockets,
      perSocket,
      changingUsers,
      followers: {
        min: Math.min(...counts),
        mean: round(counts.reduce((a, b) => a + b, 0) / counts.length, 1),
        max: Math.max(...counts),
      },
      seed,
      clientProcesses: clients.processes,
      connectS,
      changes: run.sent.length,
      changesPerSecond: round((run.sent.length - 1) / Math.max(0.001, run.sendingS), 1),
      failedPings: run.failures,
      durationS: round(run.sendingS, 1),
      answeredS: round(run.answeredS, 1),
      pingAnsweredMs: run.pingAnsweredMs,
      clientLagMs: clientLag,
      ...deliveries,
      ...received,
      ...(cpu ? { cpu } : {}),
      cpuSeconds,
      ...(lag ? { eventLoopLagMs: lag } : {}),
      serviceUsPerFrame: perFrame(cpu?.service),
      postgresUsPerFrame: perFrame(cpu?.postgres),
    };
  } finally {
    await clients.close();
  }
}

export async function runEveryoneSteady(options: {
  url: string;
  wsUrl: string;
  db: pg.Client;
  users: number;
  sockets: number;
  periodMs: number;
  durationS: number;
  /** The longest wait, after the last ping's answer, for every socket's list to be final. */
  settleS: number;
  cpu?: CpuTargets;
  seed?: number;
}): Promise<EveryoneSteadyResult> {
  const { sockets, users } = options;
  const clients = await openClients(
    options.wsUrl,
    Array.from({ length: sockets }, () => null),
  );
  try {
    await sleep(2_000); // every socket's first list has come
    const before = await clients.lists();
    const rand = random(options.seed ?? 20_261_208);
    await eventLoopLag(options.url);
    const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
    const began = performance.now();
    const run = await pingChanges(options.url, {
      periodMs: options.periodMs,
      durationS: options.durationS,
      pick: () => 1 + Math.floor(rand() * users),
    });
    const cpu = await sampler?.stop();
    const cpuSeconds = round((performance.now() - began) / 1000, 1);
    const lag = await eventLoopLag(options.url);
    const after = await clients.lists();
    const bytesOf = (answers: WatchClientLists[]) => answers.reduce((s, a) => s + a.bytes, 0);
    const bytes = bytesOf(after) - bytesOf(before);
    const listsBefore = before.flatMap((a) => a.lists);
    const lists = after.flatMap((a) => a.lists).map((n, i) => n - (listsBefore[i] ?? 0));

    // The final state, then every socket's last list against it, until all agree or time is up.
    const response = await fetch(`${options.url}/users/list/all`, {
      headers: { authorization: `Bearer ${ACCESS_KEY}` },
    });
    if (!response.ok) throw new Error(`the list answered ${response.status}`);
    const final = listDigest(
      ((await response.json()) as { data: { user: string; status: string; time: number }[] }).data,
    );
    const settleBegan = performance.now();
    let finalListSockets = 0;
    let finalListAfterS: number | null = null;
    for (;;) {
      const last = (await clients.lists()).flatMap((a) => a.lastLists);
      finalListSockets = last.filter((l) => l?.digest === final.digest).length;
      const waited = (performance.now() - settleBegan) / 1000;
      if (finalListSockets === sockets) {
        finalListAfterS = round(waited, 1);
        break;
      }
      if (waited >= options.settleS) break;
      await sleep(250);
    }
    const { deliveries, received, clientLag } = await clients.report(run.sent);
    await restoreHeartbeatStatus(options.db, run.flipped);
    return {
      users,
      sockets,
      periodMs: options.periodMs,
      changes: run.sent.length,
      failedPings: run.failures,
      durationS: round(run.sendingS, 1),
      bytesPerSecondPerSocket: Math.round(bytes / sockets / run.sendingS),
      clientLagMs: clientLag,
      listsPerSocket: {
        min: Math.min(...lists),
        mean: round(lists.reduce((a, b) => a + b, 0) / sockets, 1),
        max: Math.max(...lists),
      },
      finalListSockets,
      finalListAfterS,
      settleS: options.settleS,
      ...(lag ? { eventLoopLagMs: lag } : {}),
      ...deliveries,
      ...received,
      ...(cpu ? { cpu } : {}),
      cpuSeconds,
    };
  } finally {
    await clients.close();
  }
}
