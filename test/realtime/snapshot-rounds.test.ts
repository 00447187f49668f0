import { type KyselyPlugin, sql } from 'kysely';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSocketHub, type Peer } from '../../src/realtime/hub.js';
import { createSnapshotPump } from '../../src/realtime/snapshots.js';
import type { Watch } from '../../src/realtime/watch.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { RecordingSocket } from '../helpers/recording-socket.js';

// The snapshot pump's rounds (src/realtime/snapshots.ts) on a clock of the test's own, against
// real PostgreSQL: who gets which snapshot and when, to the millisecond. Only the pump's timers
// and Date are faked; a read "takes" the time the test says (the clock is moved while its result
// is on its way), so the pacing by cost is exact whatever the machine.

const database = useTestDatabase();

/** Fake milliseconds each kind of read takes; what has been started of each, and failures. */
let cost: { list: number; counts: number };
let started: { list: number; counts: number };
let failNextLists: number;
let finished: number;
/** Runs while a list read is on its way (before it "takes" its time). */
let duringListRead: (() => void) | undefined;
/** Runs while the lists of sockets following users are read. */
let duringWatchListRead: (() => void) | undefined;

/** The list read (with its counts) and the counts read alone, told apart by their SQL. */
const kindOf = (node: unknown): 'list' | 'counts' | undefined => {
  const text = JSON.stringify(node);
  if (text.includes('string_agg')) return 'list';
  if (text.includes('status_totals')) return 'counts';
  return undefined;
};

const timed: KyselyPlugin = {
  transformQuery({ node }) {
    const kind = kindOf(node);
    if (kind) started[kind] += 1;
    return node;
  },
  async transformResult({ result }) {
    const row = result.rows[0] as Record<string, unknown> | undefined;
    if (row && 'json' in row) duringWatchListRead?.();
    const kind = row && ('list' in row ? 'list' : 'counts' in row ? 'counts' : undefined);
    if (!kind) return result;
    if (kind === 'list') duringListRead?.();
    vi.setSystemTime(Date.now() + cost[kind]);
    finished += 1;
    if (kind === 'list' && failNextLists > 0) {
      failNextLists -= 1;
      throw new Error('the list could not be read');
    }
    return result;
  },
};

const stops: (() => Promise<void>)[] = [];

/** The delays the pump's rounds were scheduled with (its timer callback is named `round`). */
let roundDelays: number[];
let fakeSetTimeout: typeof setTimeout;

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
  cost = { list: 0, counts: 0 };
  started = { list: 0, counts: 0 };
  failNextLists = 0;
  finished = 0;
  duringListRead = undefined;
  duringWatchListRead = undefined;
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  roundDelays = [];
  fakeSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    if (callback.name === 'round') roundDelays.push(ms ?? 0);
    return fakeSetTimeout(callback, ms);
  }) as typeof setTimeout;
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  globalThis.setTimeout = fakeSetTimeout;
  vi.useRealTimers();
});

/** Lets reads (real I/O) finish while the fake clock stands still. */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`waited 10 s for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function startPump(options: { intervalMs: number; retryMs?: number; logger?: pino.Logger }) {
  const hub = createSocketHub({ logger: silentLogger });
  const pump = createSnapshotPump({
    db: database.db.withPlugin(timed),
    hub,
    logger: options.logger ?? silentLogger,
    intervalMs: options.intervalMs,
    retryMs: options.retryMs,
  });
  stops.push(async () => {
    pump.stop();
    await hub.close(0);
  });
  const connect = (watch: Watch = 'all') => {
    const socket = new RecordingSocket();
    const peer = hub.add(socket) as Peer;
    pump.watch.set(peer, watch);
    return { socket, peer };
  };
  return { hub, pump, connect };
}

const events = (socket: RecordingSocket) => socket.frames.map((f) => f.event);
const lastOf = (socket: RecordingSocket, event: string) =>
  socket.frames.filter((f) => f.event === event).at(-1)?.data;
const listUsers = (socket: RecordingSocket) =>
  (lastOf(socket, 'online-users-list') as { user: string }[]).map((item) => item.user);

async function ping(user: string, status: 'available' | 'busy') {
  await sql`
    insert into presently.presence (user_id, status, last_ping) values (${user}, ${status}, now())
    on conflict (user_id) do update set status = excluded.status, last_ping = excluded.last_ping
  `.execute(database.db);
}

describe('a socket following everyone', () => {
  it('is welcomed with the list, then the counts read with it', async () => {
    await ping('a', 'busy');
    const { pump, connect } = startPump({ intervalMs: 50 });
    const { socket, peer } = connect();
    pump.welcome(peer);
    expect(socket.frames).toEqual([]);
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => socket.frames.length === 2);
    expect(events(socket)).toEqual(['online-users-list', 'online-users-count']);
    expect(listUsers(socket)).toEqual(['a']);
    expect(lastOf(socket, 'online-users-count')).toEqual({ available: 0, busy: 1, away: 0 });
    expect(started).toEqual({ list: 1, counts: 0 });
  });

  it('is given the current list at once, unread, while nothing changed and it is younger than the interval', async () => {
    await ping('a', 'busy');
    const { pump, connect } = startPump({ intervalMs: 50 });
    const first = connect();
    pump.welcome(first.peer);
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => first.socket.frames.length === 2);

    vi.advanceTimersByTime(49);
    const second = connect();
    pump.welcome(second.peer);
    expect(second.socket.frames).toEqual(first.socket.frames);
    expect(started.list).toBe(1);

    // 50 ms old: no longer current; the newcomer waits for a list read now.
    vi.advanceTimersByTime(1);
    const third = connect();
    pump.welcome(third.peer);
    expect(third.socket.frames).toEqual([]);
    vi.advanceTimersByTime(0);
    await until('a fresh list', () => third.socket.frames.length === 2);
    expect(started.list).toBe(2);
    expect(events(third.socket)).toEqual(['online-users-list', 'online-users-count']);
  });

  it('waits, after a change, for the next list rather than being given the stale one', async () => {
    const { pump, connect } = startPump({ intervalMs: 50 });
    const first = connect();
    pump.welcome(first.peer);
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => first.socket.frames.length === 2);

    await ping('b', 'available');
    pump.changed();
    const second = connect();
    pump.welcome(second.peer);
    expect(second.socket.frames).toEqual([]);
    vi.advanceTimersByTime(50);
    await until('the next list', () => second.socket.frames.length === 2);
    expect(listUsers(second.socket)).toEqual(['b']);
  });
});

describe('the pace of snapshots', () => {
  it('is ten times what a list costs: a list read in 100 ms comes again 500 ms later, then 650', async () => {
    cost.list = 100;
    const { pump, connect } = startPump({ intervalMs: 50 });
    const everyone = connect();
    const nobody = connect(new Set());
    pump.welcome(everyone.peer);
    pump.welcome(nobody.peer);
    const t0 = Date.now();
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => everyone.socket.frames.length === 2);
    // The first round counts at most one interval: a typical cost of 50 ms, so 500 ms apart.
    expect(Date.now()).toBe(t0 + 100);
    expect(events(nobody.socket)).toEqual(['online-users-count']);

    await ping('a', 'busy');
    pump.changed();
    // Counts are cheap: they go at once to the socket that follows nobody; the socket that
    // follows everyone never gets counts without their list.
    vi.advanceTimersByTime(0);
    await until('counts', () => nobody.socket.frames.length === 2);
    expect(lastOf(nobody.socket, 'online-users-count')).toEqual({ available: 0, busy: 1, away: 0 });
    expect(everyone.socket.frames.length).toBe(2);

    vi.advanceTimersByTime(t0 + 499 - Date.now());
    expect(started.list).toBe(1);
    vi.advanceTimersByTime(1);
    expect(started.list).toBe(2);
    await until('the second list', () => everyone.socket.frames.length === 4);
    expect(listUsers(everyone.socket)).toEqual(['a']);

    // Its cost is now 0.7 × 50 + 0.3 × 100 = 65 ms: the next list no sooner than 650 ms after.
    await ping('b', 'busy');
    pump.changed();
    vi.advanceTimersByTime(0);
    await until('counts', () => nobody.socket.frames.length === 3);
    vi.advanceTimersByTime(t0 + 500 + 649 - Date.now());
    expect(started.list).toBe(2);
    vi.advanceTimersByTime(1);
    expect(started.list).toBe(3);
    await until('the third list', () => everyone.socket.frames.length === 6);
    expect(events(everyone.socket)).toEqual([
      'online-users-list',
      'online-users-count',
      'online-users-list',
      'online-users-count',
      'online-users-list',
      'online-users-count',
    ]);
  });
});

describe('the cost a round is paced by', () => {
  /** Each frame given to the socket "takes" 50 ms, as writes to many sockets would. */
  const slow = (socket: RecordingSocket) => {
    socket.onSend = () => vi.setSystemTime(Date.now() + 50);
  };

  it('includes handing a list out: read at once, out in 100 ms, it comes again 500 ms later', async () => {
    const { pump, connect } = startPump({ intervalMs: 50 });
    const everyone = connect();
    slow(everyone.socket);
    pump.welcome(everyone.peer);
    const t0 = Date.now();
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => everyone.socket.frames.length === 2);
    expect(Date.now()).toBe(t0 + 100);
    // The first round counts at most one interval (50 ms): the next list 500 ms after it began.
    // A change's counts round comes first, at once (no one hears counts alone here).
    await ping('a', 'busy');
    pump.changed();
    vi.advanceTimersByTime(0);
    await until('the counts round, and the list round scheduled', () => roundDelays.length === 3);
    expect(started.counts).toBe(1);
    vi.advanceTimersByTime(t0 + 499 - Date.now());
    expect(started.list).toBe(1);
    vi.advanceTimersByTime(1);
    expect(started.list).toBe(2);
    await until('the second list', () => everyone.socket.frames.length === 4);
  });

  it('includes handing counts out, to sockets following a list or nobody', async () => {
    await ping('a', 'busy');
    const { pump, connect } = startPump({ intervalMs: 50 });
    const follower = connect(new Set(['a']));
    const nobody = connect(new Set());
    slow(follower.socket);
    pump.welcome(follower.peer);
    pump.welcome(nobody.peer);
    const t0 = Date.now();
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => follower.socket.frames.length === 2);
    // The follower's list and counts took 100 ms; counted at most one interval the first time.
    expect(Date.now()).toBe(t0 + 100);
    expect(started.counts).toBe(1);

    await ping('b', 'busy');
    pump.changed();
    vi.advanceTimersByTime(t0 + 499 - Date.now());
    expect(started.counts).toBe(1);
    vi.advanceTimersByTime(1);
    expect(started.counts).toBe(2);
    // Counts to both, 50 ms for the follower's: still 0.7 × 50 + 0.3 × 50 = 50 ms a round.
    await until('the second counts', () => nobody.socket.frames.length === 2);
    const t1 = t0 + 500;
    expect(Date.now()).toBe(t1 + 50);

    await ping('c', 'busy');
    pump.changed();
    vi.advanceTimersByTime(t1 + 499 - Date.now());
    expect(started.counts).toBe(2);
    vi.advanceTimersByTime(1);
    expect(started.counts).toBe(3);
    await until('the third counts', () => nobody.socket.frames.length === 3);
  });
});

describe('a read that fails', () => {
  const recordingLogger = () => {
    const lines: { level: number; msg: string; reason?: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    return { logger, lines };
  };

  it('is tried again a second later, logged once until it reads again, and the newcomer still served', async () => {
    const { logger, lines } = recordingLogger();
    await ping('a', 'busy');
    failNextLists = 2;
    const { pump, connect } = startPump({ intervalMs: 50, logger });
    const { socket, peer } = connect();
    pump.welcome(peer);
    vi.advanceTimersByTime(0);
    await until('the retry to be scheduled', () => roundDelays.length === 2);
    expect(roundDelays).toEqual([0, 1_000]);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'could not read snapshots',
        reason: 'the list could not be read',
      }),
    ]);
    vi.advanceTimersByTime(999);
    expect(started.list).toBe(1);
    vi.advanceTimersByTime(1);
    await until('the second retry', () => roundDelays.length === 3);
    expect(roundDelays.at(-1)).toBe(1_000);
    expect(lines.length).toBe(1);
    vi.advanceTimersByTime(1_000);
    await until('the snapshots', () => socket.frames.length === 2);
    expect(listUsers(socket)).toEqual(['a']);
    expect(lines.at(-1)).toMatchObject({ level: 30, msg: 'snapshots read again' });
    expect(lines.length).toBe(2);
  });

  it('loses no change: the list and the counts it was to bring come with the retry', async () => {
    const { logger, lines } = recordingLogger();
    const { pump, connect } = startPump({ intervalMs: 50, logger });
    const everyone = connect();
    const nobody = connect(new Set());
    pump.welcome(everyone.peer);
    pump.welcome(nobody.peer);
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => everyone.socket.frames.length === 2);

    await ping('a', 'busy');
    failNextLists = 1;
    vi.advanceTimersByTime(50);
    pump.changed();
    vi.advanceTimersByTime(0);
    await until('the retry to be scheduled', () => roundDelays.at(-1) === 1_000);
    vi.advanceTimersByTime(1_000);
    await until('the list', () => everyone.socket.frames.length === 4);
    expect(listUsers(everyone.socket)).toEqual(['a']);
    expect(lastOf(nobody.socket, 'online-users-count')).toEqual({ available: 0, busy: 1, away: 0 });
    // Logged when it failed and when it read again: not for the reads that went well before.
    expect(lines.map((line) => line.msg)).toEqual([
      'could not read snapshots',
      'snapshots read again',
    ]);
  });
});

describe('a socket catching up', () => {
  it('is not given the current list when welcomed before it caught up', async () => {
    const { pump, connect } = startPump({ intervalMs: 1_000 });
    const control = connect();
    pump.welcome(control.peer);
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => control.socket.frames.length === 2);
    const catching = connect();
    catching.peer.held = [];
    pump.welcome(catching.peer);
    expect(catching.socket.frames).toEqual([]);
  });

  it('costs no read of the whole list while it is the only one following everyone', async () => {
    const { pump, connect } = startPump({ intervalMs: 50 });
    const catching = connect();
    catching.peer.held = [];
    const some = connect(new Set(['a']));
    pump.welcome(catching.peer);
    pump.welcome(some.peer);
    vi.advanceTimersByTime(0);
    await until('the snapshots', () => some.socket.frames.length === 2);
    expect(started).toEqual({ list: 0, counts: 1 });
  });

  it('gets no snapshot until it is welcomed again once caught up', async () => {
    await ping('a', 'busy');
    const { pump, connect } = startPump({ intervalMs: 50 });
    const catching = connect();
    catching.peer.held = [];
    const control = connect();
    pump.welcome(catching.peer);
    pump.welcome(control.peer);
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => control.socket.frames.length === 2);
    // A change: counts and a list for everyone else, still nothing for it.
    await ping('b', 'busy');
    pump.changed();
    vi.advanceTimersByTime(50);
    await until('the next list', () => control.socket.frames.length === 4);
    expect(catching.socket.frames).toEqual([]);

    catching.peer.held = undefined;
    pump.welcome(catching.peer);
    expect(events(catching.socket)).toEqual(['online-users-list', 'online-users-count']);
    expect(listUsers(catching.socket)).toEqual(['a', 'b']);
  });
});

describe('a socket following a list of users', () => {
  it('is welcomed with the list of those it follows that exist; following nobody, with counts only, or an empty list when it asked', async () => {
    await ping('a', 'busy');
    await ping('b', 'available');
    const { pump, connect } = startPump({ intervalMs: 50 });
    const some = connect(new Set(['b', 'zz']));
    const silent = connect(new Set());
    const asking = connect(new Set());
    pump.welcome(some.peer);
    pump.welcome(silent.peer);
    pump.welcome(asking.peer, true);
    // No list of everyone is waited for: the round is at once.
    expect(roundDelays).toEqual([0]);
    vi.advanceTimersByTime(0);
    await until('the snapshots', () => some.socket.frames.length === 2);
    expect(listUsers(some.socket)).toEqual(['b']);
    expect(events(silent.socket)).toEqual(['online-users-count']);
    expect(events(asking.socket)).toEqual(['online-users-list', 'online-users-count']);
    expect(lastOf(asking.socket, 'online-users-list')).toEqual([]);
    expect(started).toEqual({ list: 0, counts: 1 });

    // After that, its users' changes reach it as presence-change frames: counts only here.
    await ping('b', 'busy');
    pump.changed();
    vi.advanceTimersByTime(50);
    await until('counts', () => some.socket.frames.length === 3);
    expect(events(some.socket).at(-1)).toBe('online-users-count');
    // Nobody follows everyone: the whole list is never read, and nothing more is due.
    expect(started.list).toBe(0);
    expect(roundDelays).toEqual([0, 50]);
  });
});

describe('the pump', () => {
  it('reads nothing for a change while no socket is open', async () => {
    const { pump } = startPump({ intervalMs: 50 });
    pump.changed();
    vi.advanceTimersByTime(10_000);
    expect(roundDelays).toEqual([]);
    expect(started).toEqual({ list: 0, counts: 0 });
  });

  it('once stopped, delivers nothing, not even the round being read', async () => {
    const { pump, connect } = startPump({ intervalMs: 50 });
    const { socket, peer } = connect();
    pump.welcome(peer);
    vi.advanceTimersByTime(0);
    pump.stop();
    await until('the read', () => finished === 1);
    await new Promise((resolve) => setImmediate(resolve));
    pump.changed();
    pump.welcome(connect().peer);
    vi.advanceTimersByTime(10_000);
    expect(roundDelays).toEqual([0]);
    expect(socket.frames).toEqual([]);
  });
});

describe('newcomers following everyone', () => {
  it('wait, after a change, for the list the cost rule allows: a crowd of them costs one read', async () => {
    cost.list = 100;
    const { pump, connect } = startPump({ intervalMs: 50 });
    const nobody = connect(new Set());
    const first = connect();
    pump.welcome(nobody.peer);
    pump.welcome(first.peer);
    const t0 = Date.now();
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => first.socket.frames.length === 2);
    // The only socket following everyone goes: the change that follows reads counts only.
    pump.forget(first.peer);
    first.socket.close();
    await ping('a', 'busy');
    pump.changed();
    vi.advanceTimersByTime(0);
    await until('counts', () => nobody.socket.frames.length === 2);
    expect(roundDelays).toEqual([0, 0]);

    vi.advanceTimersByTime(100);
    const crowd = [connect(), connect(), connect()];
    for (const { peer } of crowd) pump.welcome(peer);
    // The list is stale (a change since); the next may be read 500 ms after the last one.
    expect(roundDelays).toEqual([0, 0, t0 + 500 - Date.now()]);
    vi.advanceTimersByTime(t0 + 500 - Date.now());
    await until('the list', () => crowd.every(({ socket }) => socket.frames.length === 2));
    expect(started.list).toBe(2);
    for (const { socket } of crowd) expect(listUsers(socket)).toEqual(['a']);
  });

  it('arriving while a list is read wait for that list, not the one before', async () => {
    cost.list = 100;
    const { pump, connect } = startPump({ intervalMs: 50 });
    const first = connect();
    pump.welcome(first.peer);
    const t0 = Date.now();
    vi.advanceTimersByTime(0);
    await until('the first snapshots', () => first.socket.frames.length === 2);
    await ping('a', 'busy');
    pump.changed();
    // First the counts (for nobody here: a socket following everyone never gets them alone).
    vi.advanceTimersByTime(0);
    await until('the counts read', () => finished === 2);
    await until('the list to be scheduled', () => roundDelays.length === 3);
    const late = connect();
    duringListRead = () => {
      duringListRead = undefined;
      pump.welcome(late.peer);
      expect(late.socket.frames).toEqual([]);
    };
    vi.advanceTimersByTime(t0 + 500 - Date.now());
    await until('the list', () => late.socket.frames.length === 2);
    expect(listUsers(late.socket)).toEqual(['a']);
  });
});

describe('the pace of counts', () => {
  it('is ten times what they cost too: counts read in 100 ms come again 500 ms later', async () => {
    cost.counts = 100;
    const { pump, connect } = startPump({ intervalMs: 50 });
    const nobody = connect(new Set());
    pump.welcome(nobody.peer);
    const t0 = Date.now();
    vi.advanceTimersByTime(0);
    await until('counts', () => nobody.socket.frames.length === 1);
    await ping('a', 'busy');
    pump.changed();
    expect(roundDelays).toEqual([0, t0 + 500 - Date.now()]);
  });
});

describe('a subscription changed while its list is read', () => {
  it('is answered with the list it follows now, not the one read for the old', async () => {
    await ping('a', 'busy');
    await ping('b', 'busy');
    const { pump, connect } = startPump({ intervalMs: 50 });
    const { socket, peer } = connect(new Set(['a']));
    duringWatchListRead = () => {
      duringWatchListRead = undefined;
      pump.watch.set(peer, new Set(['b']));
      pump.welcome(peer, true);
    };
    pump.welcome(peer);
    vi.advanceTimersByTime(0);
    await until('counts', () => socket.frames.length === 1);
    vi.advanceTimersByTime(0);
    await until('the list', () => events(socket).includes('online-users-list'));
    const lists = socket.frames.filter((f) => f.event === 'online-users-list');
    expect(lists.map((f) => f.data.map((item: { user: string }) => item.user))).toEqual([['b']]);
  });
});
