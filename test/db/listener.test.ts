import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createListener,
  LISTENER_APPLICATION_NAME,
  type ListenerOptions,
} from '../../src/db/listener.js';
import type { Logger } from '../../src/logger.js';
import { createChangeFeed } from '../../src/presence/change-feed.js';
import {
  CHANGES_CHANNEL,
  latestPosition,
  readLogState,
  type StatusChange,
} from '../../src/presence/changes.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { closedPort, waitFor, within } from '../helpers/wait.js';

// The listener and the change feed together, against a real PostgreSQL: notifications wake the
// feed, a lost connection is replaced and whatever happened meanwhile is read from the log.

const database = useTestDatabase();
const running: { stop(): unknown }[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const each of running.splice(0)) await each.stop();
});

const ping = (user: string, status: string) =>
  database.pool.query('select presently.ping($1, $2)', [user, status]);

/** A logger that only reports warnings: the listener warns exactly once per failure. */
const stubLogger = (warn: () => void) =>
  ({ warn, info: () => {}, debug: () => {}, error: () => {} }) as unknown as Logger;

/**
 * Ends the listener's connection from the server side and resolves once the listener has seen
 * it go. Not `pg_terminate_backend(pid, 5000)`: it waits for the backend's exit, by which time a
 * quick listener has connected again.
 */
async function terminateListener(warnings: EventEmitter) {
  const lost = once(warnings, 'warn');
  const { rows } = await database.pool.query(
    `select pg_terminate_backend(pid) as terminated from pg_stat_activity
     where application_name = $1 and datname = current_database()`,
    [LISTENER_APPLICATION_NAME],
  );
  expect(rows).toEqual([{ terminated: true }]);
  await within('the listener to lose its connection', lost, 5_000);
}

/** Nothing is triggered on the log itself: a row inserted directly notifies no one. */
const insertIntoLog = (user: string) =>
  database.pool.query(
    `insert into presently.status_changes (user_id, status, previous, changed_at)
     values ($1, 'busy', null, now())`,
    [user],
  );

/** The listener's backends in this test file's database. */
async function listenerBackends(): Promise<number> {
  const { rows } = await database.pool.query(
    'select count(*) as n from pg_stat_activity where application_name = $1 and datname = current_database()',
    [LISTENER_APPLICATION_NAME],
  );
  return rows[0].n;
}

/** A feed from the current end of the log, woken by a listener that is already listening. */
async function startFeed(options: Partial<ListenerOptions> & { batchSize?: number } = {}) {
  const { batchSize, ...listenerOptions } = options;
  const changes: StatusChange[] = [];
  const feed = createChangeFeed({
    db: database.db,
    logger: silentLogger,
    after: await latestPosition(database.db),
    identity: (await readLogState(database.db)).identity,
    onChanges: (batch) => changes.push(...batch),
    batchSize,
  });
  const warnings = new EventEmitter();
  const listener = createListener({
    connectionString: database.url,
    channel: CHANGES_CHANNEL,
    logger: stubLogger(() => warnings.emit('warn')),
    onWake: feed.wake,
    // The first retry comes after 100 to 200 ms: time enough to change things while it is down.
    retryInitialMs: 200,
    ...listenerOptions,
  });
  running.push(listener, feed);
  listener.start();
  await waitFor('the listener to listen', () => listener.listening);
  return { feed, listener, changes, terminate: () => terminateListener(warnings) };
}

/** Delivered in strictly increasing positions: in order, none twice. */
function expectInOrderOnce(changes: StatusChange[]) {
  const positions = changes.map((change) => change.position);
  expect(positions).toEqual([...new Set(positions)].sort((a, b) => a - b));
}

describe('listener and change feed', () => {
  it('delivers pings in position order, woken by notifications', async () => {
    // A check interval far beyond the test: only notifications can wake the feed.
    const { feed, changes } = await startFeed({ checkIntervalMs: 60_000 });
    await ping('alice', 'available');
    await ping('bob', 'busy');
    await ping('alice', 'available'); // a heartbeat: no change, no log row
    await ping('alice', 'busy');
    await database.pool.query(`delete from presently.presence where user_id = 'bob'`);

    await waitFor('four changes', () => changes.length >= 4);
    expect(changes).toMatchObject([
      { kind: 'change', user: 'alice', status: 'available', previous: null },
      { kind: 'change', user: 'bob', status: 'busy', previous: null },
      { kind: 'change', user: 'alice', status: 'busy', previous: 'available' },
      { kind: 'change', user: 'bob', status: null, previous: 'busy' },
    ]);
    expectInOrderOnce(changes);
    expect(feed.position).toBe(await latestPosition(database.db));
  });

  it('reads what changed while its connection was terminated, once reconnected', async () => {
    // Small batches: the catch-up after reconnecting takes several reads.
    const { feed, listener, changes, terminate } = await startFeed({
      checkIntervalMs: 60_000,
      batchSize: 2,
    });
    await ping('carol', 'available');
    await waitFor('the first change', () => changes.length === 1);

    await terminate();
    const missed = ['dan', 'erin', 'frank', 'grace', 'heidi'];
    for (const user of missed) await ping(user, 'busy');
    // All made while it was down.
    expect(listener.connections).toBe(1);

    await waitFor('a second connection', () => listener.connections === 2);
    await waitFor('every change', () => changes.length >= 1 + missed.length);
    expect(changes.map((change) => (change.kind === 'change' ? change.user : null))).toEqual([
      'carol',
      ...missed,
    ]);
    expectInOrderOnce(changes);
    expect(feed.position).toBe(await latestPosition(database.db));
    expect(listener.connections).toBe(2);
  });

  it('reads the log after reconnecting, even when no notification is pending', async () => {
    // PostgreSQL may hand a new LISTEN notifications committed just before it (still in its
    // queue), which can wake the feed by themselves: a row inserted into the log directly
    // notifies no one, so only the listener's own wake after reconnecting can deliver it.
    const { listener, changes, terminate } = await startFeed({ checkIntervalMs: 60_000 });
    await terminate();
    await insertIntoLog('judy');
    expect(listener.connections).toBe(1);
    await waitFor('a second connection', () => listener.connections === 2);
    await waitFor('the inserted row', () => changes.length === 1, 3_000);
    expect(changes).toMatchObject([{ kind: 'change', user: 'judy', status: 'busy' }]);
  });

  it('keeps retrying an unreachable server quietly, and stop() ends the retries', async () => {
    const port = await closedPort();
    // Every attempt is a new pg.Client connecting; the listener also warns once per failure.
    const attempts = vi.spyOn(pg.Client.prototype, 'connect');
    // Every timer made from here on (the listener's, pg's, this test's) must be over after stop.
    const timers = [vi.spyOn(globalThis, 'setTimeout'), vi.spyOn(globalThis, 'setInterval')];
    const pendingTimers = () =>
      timers
        .flatMap((spy) => spy.mock.results.map((result) => result.value))
        .filter((timer: { _destroyed?: boolean }) => !timer._destroyed).length;
    let failures = 0;
    let wakes = 0;
    const listener = createListener({
      connectionString: `postgres://nobody:x@127.0.0.1:${port}/none`,
      channel: CHANGES_CHANNEL,
      logger: stubLogger(() => failures++),
      onWake: () => wakes++,
      checkIntervalMs: 20,
      retryInitialMs: 10,
      retryMaxMs: 40,
    });
    running.push(listener);
    listener.start();
    await waitFor('several attempts', () => failures >= 4);
    expect(attempts.mock.calls.length).toBeGreaterThanOrEqual(4);
    expect(listener.listening).toBe(false);
    expect(listener.connections).toBe(0);
    expect(wakes).toBe(0);

    await within('stop()', listener.stop(), 2_000);
    const attemptsAtStop = attempts.mock.calls.length;
    const failuresAtStop = failures;
    // Neither the retry timer nor the check interval outlives stop().
    expect(pendingTimers()).toBe(0);
    // Several times the longest retry delay: nothing is left to try again.
    await sleep(200);
    expect(attempts.mock.calls.length).toBe(attemptsAtStop);
    expect(failures).toBe(failuresAtStop);
    expect(listener.listening).toBe(false);
  });

  it('wakes the feed on its periodic check, with no notification', async () => {
    const { changes } = await startFeed({ checkIntervalMs: 100 });
    // A session of its own listening on the channel, to show that nothing was notified.
    const witness = new pg.Client({ connectionString: database.url });
    await witness.connect();
    running.push({ stop: () => witness.end() });
    let notifications = 0;
    witness.on('notification', () => notifications++);
    await witness.query(`listen ${CHANGES_CHANNEL}`);

    await insertIntoLog('ivan');
    await waitFor('the inserted row', () => changes.length === 1, 3_000);
    expect(changes).toMatchObject([{ kind: 'change', user: 'ivan', status: 'busy' }]);
    // A round trip on the witness: a notification sent at that commit would be in by now.
    await witness.query('select 1');
    expect(notifications).toBe(0);
  });

  it('leaves no connection behind once stopped', async () => {
    const { listener, feed } = await startFeed();
    expect(await listenerBackends()).toBe(1);
    await listener.stop();
    feed.stop();
    await waitFor('no listener backend', async () => (await listenerBackends()) === 0, 3_000);

    // Stopped while still connecting: the connection being made is dropped too.
    const early = createListener({
      connectionString: database.url,
      channel: CHANGES_CHANNEL,
      logger: silentLogger,
      onWake: () => {},
    });
    early.start();
    await early.stop();
    // Long enough for a leaked connection to finish its start-up and show.
    await sleep(200);
    expect(await listenerBackends()).toBe(0);
    expect(early.listening).toBe(false);
  });
});
