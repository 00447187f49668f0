import net from 'node:net';
import { type KyselyPlugin, sql, ValueNode } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { createPingWriter, writePings } from '../../src/presence/ping-writer.js';
import { countUsers } from '../../src/presence/repository.js';
import type { Ping } from '../../src/presence/validation.js';
import { presenceRows, silentLogger, useClients, useTestDatabase } from '../helpers/database.js';
import { closedPort } from '../helpers/wait.js';

// Group commit (presently.ping_many through the ping writer) and the counts it answers, kept by
// the change log (presently.status_totals) rather than counted per ping.

const database = useTestDatabase();
const connect = useClients(database);

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
});

const totals = async () => {
  const { rows } = await sql<{ available: number; busy: number; away: number }>`
    select available, busy, away from presently.status_totals`.execute(database.db);
  return rows[0];
};
const ping = (id: string, status: Ping['status']): Ping => ({ id, status });

describe('the ping writer', () => {
  it('writes concurrent pings in a few batches, answering each once stored', async () => {
    const batches: number[] = [];
    const writer = createPingWriter({ db: database.db, onBatch: (size) => batches.push(size) });
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        writer.record(ping(`u${i}`, i % 2 ? 'busy' : 'available')),
      ),
    );
    expect(batches.reduce((a, b) => a + b)).toBe(500);
    expect(batches.length).toBeLessThan(20);
    expect((await presenceRows(database.db)).length).toBe(500);
    // Every answer includes its own ping (and what had committed by then).
    for (const counts of answers) expect(counts.available + counts.busy).toBeGreaterThan(0);
    expect(await totals()).toEqual({ available: 250, busy: 250, away: 0 });
  });

  it('keeps the later of two pings of one user in a batch', async () => {
    expect(await writePings(database.db, [ping('a', 'busy'), ping('a', 'available')])).toEqual({
      available: 1,
      busy: 0,
      away: 0,
    });
    expect((await presenceRows(database.db)).map((row) => row.status)).toEqual(['available']);
  });

  it('answers a failed write with an error for every ping of the batch', async () => {
    const pool = createPool(
      { connectionString: `postgres://nobody@127.0.0.1:${await closedPort()}/none` },
      silentLogger,
    );
    const writer = createPingWriter({ db: createDb(pool) });
    const results = await Promise.allSettled([
      writer.record(ping('x', 'busy')),
      writer.record(ping('y', 'busy')),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    await pool.end();
  });

  it('drains: resolves at once when idle, else once every ping taken is stored', async () => {
    const writer = createPingWriter({ db: database.db, maxInFlight: 1 });
    await writer.drain();
    const answered: string[] = [];
    const pings = Array.from({ length: 200 }, (_, i) =>
      writer.record(ping(`d${i}`, 'busy')).then(() => answered.push(`d${i}`)),
    );
    // Several batches queue behind the first (one in flight at a time).
    await writer.drain();
    expect(answered.length).toBe(200);
    expect((await presenceRows(database.db)).length).toBe(200);
    await Promise.all(pings);
  });

  it('drains only once a batch in flight is stored, with nothing queued behind it', async () => {
    // The common case at shutdown: one write on its way, the queue empty.
    const writer = createPingWriter({ db: database.db });
    const order: string[] = [];
    const recorded = writer.record(ping('in-flight', 'busy')).then(() => order.push('stored'));
    await writer.drain().then(() => order.push('drained'));
    await recorded;
    expect(order).toEqual(['stored', 'drained']);
    expect((await presenceRows(database.db)).map((row) => row.user_id)).toEqual(['in-flight']);
  });

  it('drains after a failed write too', async () => {
    const pool = createPool(
      { connectionString: `postgres://nobody@127.0.0.1:${await closedPort()}/none` },
      silentLogger,
    );
    const writer = createPingWriter({ db: createDb(pool) });
    const failed = writer.record(ping('x', 'busy')).catch(() => 'failed');
    await writer.drain();
    expect(await failed).toBe('failed');
    await pool.end();
  });

  it('refuses (503) a ping queued too long behind writes the database does not answer', async () => {
    // A server that takes connections and never says a word.
    const silent = net.createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((resolve) => silent.once('listening', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const pool = createPool({ connectionString: `postgres://x@127.0.0.1:${port}/x` }, silentLogger);
    const writer = createPingWriter({ db: createDb(pool), maxInFlight: 1, maxQueueMs: 200 });
    let firstSettled = false;
    const first = writer.record(ping('stuck', 'busy'));
    first
      .catch(() => {})
      .finally(() => {
        firstSettled = true;
      });
    await expect(writer.record(ping('queued', 'busy'))).rejects.toMatchObject({
      code: 'database_unavailable',
      status: 503,
      message: 'the database is not answering in time; retry shortly',
    });
    // Refused by the queue's own timer, while the write ahead of it still hangs: not in the
    // wake of that write failing.
    expect(firstSettled).toBe(false);
    await pool.end().catch(() => {});
    silent.close();
  });

  it('writes at most maxBatch pings a statement, and at most maxInFlight statements at once', async () => {
    const sizes: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    // Each statement's answer is held back a little, so that pings queue behind it.
    const db = database.db.withPlugin({
      transformQuery: (args) => {
        inFlight += 1;
        mostInFlight = Math.max(mostInFlight, inFlight);
        return args.node;
      },
      async transformResult({ result }) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        inFlight -= 1;
        return result;
      },
    });
    const writer = createPingWriter({ db, maxBatch: 3, onBatch: (size) => sizes.push(size) });
    await Promise.all(Array.from({ length: 14 }, (_, i) => writer.record(ping(`b${i}`, 'busy'))));
    // Written at once: the first ping, then the second (two may be in flight); the rest queue.
    expect(sizes).toEqual([1, 1, 3, 3, 3, 3]);
    expect(mostInFlight).toBe(2);
    expect((await presenceRows(database.db)).length).toBe(14);
  });

  it('keeps a queued ping waiting while writes take less than maxQueueMs', async () => {
    const db = database.db.withPlugin({
      transformQuery: (args) => args.node,
      async transformResult({ result }) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        return result;
      },
    });
    const writer = createPingWriter({ db, maxInFlight: 1, maxQueueMs: 1_000 });
    const answers = await Promise.all([
      writer.record(ping('first', 'busy')),
      writer.record(ping('queued', 'available')),
    ]);
    expect(answers[1]).toEqual({ available: 1, busy: 1, away: 0 });
  });

  it('never deadlocks batches sharing users, whatever order they came in', async () => {
    const users = Array.from({ length: 50 }, (_, i) => `shared-${i}`);
    const round = (order: string[], status: Ping['status']) =>
      writePings(
        database.db,
        order.map((id) => ping(id, status)),
      );
    for (let i = 0; i < 10; i++) {
      await Promise.all([round(users, 'busy'), round([...users].reverse(), 'available')]);
    }
    expect((await presenceRows(database.db)).length).toBe(50);
  });
});

describe('the counts a ping answers', () => {
  it('include the ping, before its transaction commits, and no one else’s uncommitted ping', async () => {
    await writePings(database.db, [ping('a', 'busy')]);
    const [mine, theirs] = [await connect(), await connect()];
    await mine.query('begin');
    await theirs.query('begin');
    await theirs.query(`select * from presently.ping_many('{b}', '{busy}')`);
    const answer = await mine.query(
      `select * from presently.ping_many('{a,c}', '{available,available}')`,
    );
    expect(answer.rows).toEqual([{ available: '2', busy: '0', away: '0' }]);
    await theirs.query('commit');
    await mine.query('commit');
    expect(await totals()).toEqual({ available: 2, busy: 1, away: 0 });
  });

  it('count what a transaction did, less what it rolled back to a savepoint', async () => {
    const client = await connect();
    await client.query('begin');
    await client.query(`insert into presently.presence (user_id, status, last_ping)
      select 'bulk-' || g, 'busy', now() from generate_series(1, 5000) g`);
    await client.query('savepoint before_more');
    await client.query(`select * from presently.ping_many('{extra}', '{available}')`);
    await client.query('rollback to savepoint before_more');
    await client.query('commit');
    expect(await totals()).toEqual({ available: 0, busy: 5000, away: 0 });
    expect(await totals()).toEqual(await countUsers(database.db));
  });

  it('are emptied by a clear in the same transaction as pings, with what was pending', async () => {
    await writePings(database.db, [ping('before', 'available')]);
    const client = await connect();
    await client.query('begin');
    await client.query(`select * from presently.ping_many('{a,b}', '{busy,available}')`);
    await client.query('select presently.clear_all()');
    await client.query('commit');
    expect(await countUsers(database.db)).toEqual({ available: 0, busy: 0, away: 0 });
    expect(await totals()).toEqual(await countUsers(database.db));
  });

  it('agree with the status views after pings, sweeps, deletes and clears', async () => {
    await sql`update presently.settings set away_timeout = interval '1 second'`.execute(
      database.db,
    );
    try {
      await writePings(
        database.db,
        ['a', 'b', 'c', 'd'].map((id) => ping(id, 'busy')),
      );
      await writePings(database.db, [ping('a', 'available'), ping('e', 'available')]);
      await sql`delete from presently.presence where user_id = 'b'`.execute(database.db);
      expect(await totals()).toEqual(await countUsers(database.db));
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await sql`select presently.sweep_away()`.execute(database.db);
      expect(await totals()).toEqual({ available: 0, busy: 0, away: 4 });
      expect(await totals()).toEqual(await countUsers(database.db));
      // Back after the timeout: the away interval is logged, then the new status.
      await writePings(database.db, [ping('c', 'available')]);
      expect(await totals()).toEqual(await countUsers(database.db));
      await sql`update presently.settings set away_timeout = interval '1 hour'`.execute(
        database.db,
      );
      expect(await totals()).toEqual(await countUsers(database.db));
      await sql`select presently.clear_all()`.execute(database.db);
      expect(await totals()).toEqual({ available: 0, busy: 0, away: 0 });
    } finally {
      await sql`update presently.settings set away_timeout = interval '60 seconds'`.execute(
        database.db,
      );
    }
  });
});

describe('groups of pings (recordMany)', () => {
  it('writes a group in one batch, whole, the later ping of a user winning', async () => {
    const batches: number[] = [];
    const writer = createPingWriter({ db: database.db, onBatch: (size) => batches.push(size) });
    const counts = await writer.recordMany([
      ping('g1', 'busy'),
      ping('g2', 'busy'),
      ping('g1', 'available'),
    ]);
    expect(counts).toEqual({ available: 1, busy: 1, away: 0 });
    expect(batches).toEqual([3]);
    const rows = await presenceRows(database.db);
    expect(rows.map((row) => [row.user_id, row.status])).toEqual([
      ['g1', 'available'],
      ['g2', 'busy'],
    ]);
  });

  it('never splits a group across batches, and keeps groups and single pings in order', async () => {
    const batches: number[] = [];
    const writer = createPingWriter({
      db: database.db,
      maxInFlight: 1,
      maxBatch: 1_000,
      onBatch: (size) => batches.push(size),
    });
    const first = writer.record(ping('s', 'busy'));
    const groups = Array.from({ length: 3 }, (_, g) =>
      writer.recordMany(
        Array.from({ length: 600 }, (_, i) => ping(`m${i}`, (i + g) % 2 ? 'busy' : 'available')),
      ),
    );
    const last = writer.record(ping('m0', 'busy'));
    await Promise.all([first, ...groups, last]);
    // 1, then one group per batch (two would exceed 1,000), the last ping riding with the third.
    expect(batches).toEqual([1, 600, 600, 601]);
    const rows = new Map((await presenceRows(database.db)).map((row) => [row.user_id, row.status]));
    expect(rows.get('m0')).toBe('busy');
    expect(rows.get('m1')).toBe('busy'); // the third group's
    expect(rows.size).toBe(601);
  });

  it('writes a group larger than maxBatch whole, in one statement', async () => {
    const batches: number[] = [];
    const writer = createPingWriter({
      db: database.db,
      maxBatch: 2,
      onBatch: (size) => batches.push(size),
    });
    await writer.recordMany([ping('big1', 'busy'), ping('big2', 'busy'), ping('big3', 'busy')]);
    expect(batches).toEqual([3]);
    expect((await presenceRows(database.db)).length).toBe(3);
  });
});

describe('the order of a statement', () => {
  it('is by user, then session (the default first), whatever order the pings came in', async () => {
    // The arrays handed to presently.ping_many, read from the statement as sent.
    const sent: unknown[][] = [];
    const capture: KyselyPlugin = {
      transformQuery({ node }) {
        if (node.kind === 'RawNode') {
          for (const parameter of node.parameters) {
            if (ValueNode.is(parameter) && Array.isArray(parameter.value))
              sent.push(parameter.value);
          }
        }
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    await writePings(database.db.withPlugin(capture), [
      { id: 'b', status: 'busy', session: 'tablet' },
      { id: 'a', status: 'busy', session: 'phone' },
      { id: 'b', status: 'busy' },
      { id: 'a', status: 'available' },
      { id: 'b', status: 'available', session: 'phone' },
    ]);
    const [ids, statuses, sessions] = sent;
    expect(ids).toEqual(['a', 'a', 'b', 'b', 'b']);
    expect(sessions).toEqual([null, 'phone', null, 'phone', 'tablet']);
    expect(statuses).toEqual(['available', 'busy', 'busy', 'available', 'busy']);
  });
});

describe('a timeout without a session', () => {
  it("is the default session's own timeout, alone or beside plain pings", async () => {
    await writePings(database.db, [{ id: 'alone', status: 'busy', timeout: 5 }]);
    await writePings(database.db, [
      { id: 'plain', status: 'busy' },
      { id: 'beside', status: 'available', timeout: 90.5 },
    ]);
    const rows = await database.db
      .selectFrom('presently.presence')
      .select(['user_id', sql<number | null>`extract(epoch from timeout)::float8`.as('seconds')])
      .orderBy('user_id')
      .execute();
    expect(rows).toEqual([
      { user_id: 'alone', seconds: 5 },
      { user_id: 'beside', seconds: 90.5 },
      { user_id: 'plain', seconds: null },
    ]);
  });
});
