import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type KyselyPlugin, sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
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
  const stream = new Writable({
    write(chunk, _encoding, done) {
      messages.push(JSON.parse(String(chunk)).msg);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), messages };
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
    const { logger, messages } = recordingLogger();
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
    const { logger, messages } = recordingLogger();
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
