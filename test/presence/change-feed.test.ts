import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type KyselyPlugin, sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createChangeFeed } from '../../src/presence/change-feed.js';
import { latestPosition, readLogState, type StatusChange } from '../../src/presence/changes.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/wait.js';

// The change feed (src/presence/change-feed.ts) on its own, against a real log: batches,
// wake-ups during a read, failures to read and to hand on, and stopping. (With the listener
// that wakes it: test/db/listener.test.ts.)

const database = useTestDatabase();

const ping = (user: string, status = 'busy') =>
  sql`select presently.ping(${user}, ${status})`.execute(database.db);

/** A logger whose messages the test reads back. */
function recordingLogger() {
  const messages: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      const line = JSON.parse(String(chunk));
      lines.push(line);
      messages.push(line.msg);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), messages, lines };
}

/** Counts the reads of the log; `during` runs once, while the first read is on its way. */
function instrumented(options: { failReads?: number; during?: () => Promise<void> } = {}) {
  const state = { reads: 0, failReads: options.failReads ?? 0 };
  let during = options.during;
  const plugin: KyselyPlugin = {
    transformQuery: (args) => {
      state.reads += 1;
      return args.node;
    },
    async transformResult({ result }) {
      if (during) {
        const hook = during;
        during = undefined;
        await hook();
      }
      if (state.failReads > 0) {
        state.failReads -= 1;
        throw new Error('the database failed this read');
      }
      return result;
    },
  };
  return { db: database.db.withPlugin(plugin), state };
}

const positionsOf = (batches: StatusChange[][]) => batches.flat().map((c) => c.position);

describe('the change feed', () => {
  it('reads everything after its position in order, in batches, on one wake-up', async () => {
    const after = await latestPosition(database.db);
    for (const user of ['a', 'b', 'c', 'd', 'e']) await ping(user);
    const latest = await latestPosition(database.db);
    const batches: StatusChange[][] = [];
    const feed = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db: database.db,
      logger: silentLogger,
      after,
      batchSize: 2,
      onChanges: (batch) => batches.push(batch),
    });
    expect(feed.position).toBe(after);
    feed.wake();
    await waitFor('the latest position', () => feed.position === latest);
    await sleep(50);
    expect(batches.map((batch) => batch.length)).toEqual([2, 2, 1]);
    expect(positionsOf(batches)).toEqual([1, 2, 3, 4, 5].map((i) => after + i));
    feed.stop();
  });

  it('waits for a batch to be handed on before reading the next', async () => {
    const after = await latestPosition(database.db);
    for (const user of ['slow-a', 'slow-b', 'slow-c']) await ping(user);
    const latest = await latestPosition(database.db);
    const handed: StatusChange[][] = [];
    let release = () => {};
    let handing = 0;
    const feed = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db: database.db,
      logger: silentLogger,
      after,
      batchSize: 1,
      onChanges: (batch) => {
        handing += 1;
        handed.push(batch);
        return new Promise<void>((resolve) => {
          release = () => {
            handing -= 1;
            resolve();
          };
        });
      },
    });
    feed.wake();
    await waitFor('the first batch', () => handed.length === 1);
    // Wake-ups and time while the first is handed on start no other read.
    feed.wake();
    await ping('slow-d');
    feed.wake();
    await sleep(100);
    expect(handed).toHaveLength(1);
    for (let n = 2; n <= 4; n++) {
      release();
      await waitFor(`batch ${n}`, () => handed.length === n);
      expect(handing).toBe(1);
    }
    release();
    expect(positionsOf(handed)).toEqual([1, 2, 3, 4].map((i) => after + i));
    await waitFor('the latest position', () => feed.position >= latest + 1);
    feed.stop();
  });

  it('reads once more for wake-ups during a read, however many', async () => {
    const after = await latestPosition(database.db);
    await ping('first');
    const batches: StatusChange[][] = [];
    const { db, state } = instrumented({
      during: async () => {
        await ping('second');
        for (let i = 0; i < 5; i++) feed.wake();
      },
    });
    const feed = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db,
      logger: silentLogger,
      after,
      onChanges: (batch) => batches.push(batch),
    });
    feed.wake();
    await waitFor('both changes', () => batches.flat().length === 2);
    await sleep(100);
    expect(batches.flat().map((c) => (c.kind === 'change' ? c.user : null))).toEqual([
      'first',
      'second',
    ]);
    expect(state.reads).toBe(2);
    feed.stop();
  });

  it('moves on when handing changes on fails, and says so', async () => {
    const after = await latestPosition(database.db);
    await ping('lost');
    const { logger, messages, lines } = recordingLogger();
    const handed: StatusChange[][] = [];
    let fail = true;
    const feed = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db: database.db,
      logger,
      after,
      onChanges: (batch) => {
        handed.push(batch);
        if (fail) throw new Error('a subscriber failed');
      },
    });
    feed.wake();
    await waitFor('a batch', () => handed.length === 1);
    expect(messages).toContain('could not publish changes');
    expect(lines).toContainEqual(
      expect.objectContaining({ err: expect.objectContaining({ message: 'a subscriber failed' }) }),
    );
    fail = false;
    await ping('next');
    feed.wake();
    await waitFor('a second batch', () => handed.length === 2);
    expect(handed[1]?.map((c) => (c.kind === 'change' ? c.user : null))).toEqual(['next']);
    feed.stop();
  });

  it('tries a failed read again after retryMs, without a wake-up, and says so', async () => {
    const after = await latestPosition(database.db);
    await ping('late');
    const { logger, messages, lines } = recordingLogger();
    const { db } = instrumented({ failReads: 1 });
    const handed: StatusChange[][] = [];
    const feed = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db,
      logger,
      after,
      retryMs: 300,
      onChanges: (batch) => handed.push(batch),
    });
    const startedAt = Date.now();
    feed.wake();
    await waitFor('a batch', () => handed.length === 1);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
    expect(messages).toContain('could not read the change log');
    expect(lines).toContainEqual(
      expect.objectContaining({ reason: 'the database failed this read' }),
    );
    expect(feed.position).toBe(after + 1);
    feed.stop();
  });

  it('after stop, hands nothing on, even from a read on its way, and retries nothing', async () => {
    const after = await latestPosition(database.db);
    await ping('never');
    const handed: StatusChange[][] = [];
    const { db, state } = instrumented({ during: async () => feed.stop() });
    const feed = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db,
      logger: silentLogger,
      after,
      onChanges: (batch) => handed.push(batch),
    });
    feed.wake();
    await sleep(200);
    feed.wake();
    await sleep(100);
    expect(handed).toEqual([]);
    expect(feed.position).toBe(after);
    expect(state.reads).toBe(1);

    const failing = instrumented({ failReads: 1 });
    const stopped = createChangeFeed({
      identity: (await readLogState(database.db)).identity,
      db: failing.db,
      logger: silentLogger,
      after,
      retryMs: 50,
      onChanges: (batch) => handed.push(batch),
    });
    stopped.wake();
    await waitFor('a read', () => failing.state.reads === 1);
    stopped.stop();
    await sleep(200);
    expect(failing.state.reads).toBe(1);
    expect(handed).toEqual([]);
  });
});

/** Lets reads (real I/O) finish while a fake clock stands still. */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`waited 10 s for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Counts the log-state checks and every result back from PostgreSQL; `onCheck` runs once. */
function checking(onCheck?: () => Promise<void>) {
  const state = { checks: 0, results: 0 };
  let hook = onCheck;
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      if (JSON.stringify(node).includes('log_state')) state.checks += 1;
      return node;
    },
    async transformResult({ result }) {
      const row = result.rows[0] as Record<string, unknown> | undefined;
      if (hook && row && 'log_end' in row) {
        const run = hook;
        hook = undefined;
        await run();
      }
      state.results += 1;
      return result;
    },
  };
  return { db: database.db.withPlugin(plugin), state };
}

describe('a log that moved', () => {
  // The clock alone is faked: how often the log is checked is exact.
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('is checked for after a read that found nothing, at most every second, and read from its end', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const log = await readLogState(database.db);
      const { logger, lines } = recordingLogger();
      const { db, state } = checking();
      const moved: number[] = [];
      const handed: StatusChange[][] = [];
      // A position past the log's end: an older copy of the database was restored.
      const feed = createChangeFeed({
        identity: log.identity,
        db,
        logger,
        after: log.end + 10,
        onChanges: (batch) => handed.push(batch),
        onMoved: (position) => moved.push(position),
      });
      feed.wake();
      await until('a read', () => state.results === 1);
      await settle();
      vi.setSystemTime(Date.now() + 999);
      feed.wake();
      await until('a read', () => state.results === 2);
      await settle();
      expect(state.checks).toBe(0);
      expect(lines).toEqual([]);

      vi.setSystemTime(Date.now() + 1);
      feed.wake();
      await until('the move', () => moved.length === 1);
      expect(moved).toEqual([log.end]);
      expect(feed.position).toBe(log.end);
      expect(lines).toEqual([
        expect.objectContaining({
          msg: 'the change log moved; sockets are told to resync',
          from: log.end + 10,
          to: log.end,
          sameDatabase: true,
        }),
      ]);
      // A read that finds changes costs no check, even when one is due.
      vi.setSystemTime(Date.now() + 1_000);
      await ping('after-the-move');
      feed.wake();
      await until('the change', () => handed.length === 1);
      expect(handed[0]?.map((c) => c.position)).toEqual([log.end + 1]);
      expect(state.checks).toBe(1);
      feed.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('is of another database when its identity differs; the same log at the position has not moved', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const log = await readLogState(database.db);
      const { logger, lines } = recordingLogger();
      const { db, state } = checking();
      const moved: number[] = [];
      const same = createChangeFeed({
        identity: log.identity,
        db,
        logger,
        after: log.end,
        onChanges: () => {},
        onMoved: (position) => moved.push(position),
      });
      vi.setSystemTime(Date.now() + 1_000);
      same.wake();
      await until('a check', () => state.checks === 1 && state.results === 2);
      await settle();
      expect(moved).toEqual([]);
      same.stop();

      const other = createChangeFeed({
        identity: 'another-database',
        db,
        logger,
        after: log.end,
        onChanges: () => {},
        onMoved: () => {
          throw new Error('no socket could be told');
        },
      });
      vi.setSystemTime(Date.now() + 1_000);
      other.wake();
      await until('the move', () => lines.length === 2);
      expect(lines[0]).toMatchObject({ from: log.end, to: log.end, sameDatabase: false });
      expect(lines[1]).toMatchObject({
        msg: 'could not announce that the log moved',
        err: expect.objectContaining({ message: 'no socket could be told' }),
      });
      expect(other.position).toBe(log.end);
      other.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('is checked without losing a wake-up that came during the check', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const log = await readLogState(database.db);
      const handed: StatusChange[][] = [];
      const { db } = checking(async () => {
        await ping('during-the-check');
        feed.wake();
      });
      const feed = createChangeFeed({
        identity: log.identity,
        db,
        logger: silentLogger,
        after: log.end,
        onChanges: (batch) => handed.push(batch),
      });
      vi.setSystemTime(Date.now() + 1_000);
      feed.wake();
      await until('the change', () => handed.length === 1);
      expect(handed[0]?.map((c) => (c.kind === 'change' ? c.user : null))).toEqual([
        'during-the-check',
      ]);
      feed.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a failed read', () => {
  it('is tried again after retryMs exactly, a second unless given', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      for (const [retryMs, expected] of [
        [300, 300],
        [undefined, 1_000],
      ] as const) {
        const { logger, messages } = recordingLogger();
        const { db, state } = instrumented({ failReads: 1 });
        const feed = createChangeFeed({
          identity: 'any',
          db,
          logger,
          after: 0,
          checkMs: 60_000,
          retryMs,
          onChanges: () => {},
        });
        feed.wake();
        await until('the failure', () => messages.length === 1);
        vi.advanceTimersByTime(expected - 1);
        expect(state.reads).toBe(1);
        vi.advanceTimersByTime(1);
        expect(state.reads).toBe(2);
        feed.stop();
      }
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a read that fails after stop', () => {
  it('schedules no retry', async () => {
    const retries: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    // The feed's retry timer calls its `wake`: counted here, everything else passed through.
    globalThis.setTimeout = ((callback: () => void, ms?: number) => {
      if (callback.name === 'wake') retries.push(ms ?? 0);
      return realSetTimeout(callback, ms);
    }) as typeof setTimeout;
    try {
      const { logger, messages } = recordingLogger();
      const { db } = instrumented({ failReads: 1, during: async () => feed.stop() });
      const feed = createChangeFeed({
        identity: 'any',
        db,
        logger,
        after: 0,
        onChanges: () => {},
      });
      feed.wake();
      await waitFor('the failure', () => messages.length === 1);
      expect(retries).toEqual([]);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
  });
});
