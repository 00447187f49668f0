import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pino } from 'pino';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { createScratchDatabase } from './database.js';

// Sessions at scale (migrations/0007): users with two named sessions each (a phone and a
// laptop), then the cost of the away sweep with nothing due and with 1% due, and named-session
// heartbeat throughput (batches of 1,000 as the group commit writes them, two in flight), at
// 1,000 users and at SESSIONS_USERS (default 1,000,000). Also checks that heartbeats stayed HOT.
//
//   npx tsx bench/sessions.ts            (DATABASE_URL, or an embedded server)

const BIG = Number(process.env.SESSIONS_USERS ?? 1_000_000);
const SECONDS = Number(process.env.SESSIONS_SECONDS ?? 10);
const BATCH = 1_000;

/**
 * Users and their two sessions, written directly with triggers off (superuser: the embedded
 * server's): a consistent state set by hand (every user available, logged so, the totals
 * matching) rather than a million changes through the log, which is not what is measured here.
 */
async function fill(client: pg.Client, users: number) {
  const started = performance.now();
  await client.query('begin');
  await client.query('set local session_replication_role = replica');
  await client.query(
    `insert into presently.presence (user_id, status, last_ping, logged_status, logged_at)
     select 'u' || i, null, now(), 'available', now() from generate_series(1, $1::int) i`,
    [users],
  );
  await client.query(
    `insert into presently.sessions (user_id, session, status, last_ping, timeout)
     select 'u' || i, s, 'available', now(), interval '60 seconds'
     from generate_series(1, $1::int) i cross join unnest(array['phone', 'laptop']) s`,
    [users],
  );
  await client.query('update presently.status_totals set available = $1, busy = 0, away = 0', [
    users,
  ]);
  await client.query('commit');
  await client.query('vacuum analyze presently.presence, presently.sessions');
  return (performance.now() - started) / 1000;
}

async function sweepMs(client: pg.Client, runs = 5) {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await client.query('select presently.sweep_away()');
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] ?? 0;
}

async function heartbeats(url: string, users: number) {
  const clients = await Promise.all([1, 2].map(() => connect(url)));
  const until = performance.now() + SECONDS * 1000;
  let pings = 0;
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < until) {
        const start = Math.floor(Math.random() * Math.max(1, users - BATCH));
        const ids = Array.from(
          { length: Math.min(BATCH, users) },
          (_, i) => `u${start + i + 1}`,
        ).sort();
        await client.query(
          `select presently.ping_many($1::text[], array_fill('available'::text, array[$2::int]),
             array_fill('phone'::text, array[$2::int]), array_fill(null::float8, array[$2::int]))`,
          [ids, ids.length],
        );
        pings += ids.length;
      }
    }),
  );
  await Promise.all(clients.map((client) => client.end()));
  return pings / SECONDS;
}

async function connect(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function measure(users: number) {
  const scratch = await createScratchDatabase({
    databaseUrl: process.env.DATABASE_URL,
    log: console.log,
  });
  try {
    await migrate(scratch.url, await readMigrations(), pino({ level: 'warn' }));
    const client = await connect(scratch.url);
    const fillSeconds = await fill(client, users);
    const idle = await sweepMs(client);
    const rate = await heartbeats(scratch.url, users);
    const { rows } = await client.query(
      `select n_tup_upd::int as updates, n_tup_hot_upd::int as hot
       from pg_stat_user_tables where relid = 'presently.sessions'::regclass`,
    );
    // 1% of the sessions due: their last ping pushed back past the timeout.
    await client.query(`set session_replication_role = replica`);
    await client.query(
      `update presently.sessions set last_ping = now() - interval '2 minutes'
       where session = 'phone' and hashtext(user_id) % 50 = 0`,
    );
    await client.query(`set session_replication_role = origin`);
    const started = performance.now();
    const { rows: swept } = await client.query('select presently.sweep_away() as n');
    const dueMs = performance.now() - started;
    await client.end();
    return {
      users,
      sessions: 2 * users,
      fillSeconds,
      idleSweepMs: idle,
      dueSweepMs: dueMs,
      swept: swept[0].n,
      heartbeatsPerSecond: rate,
      hot: rows[0],
    };
  } finally {
    await scratch.drop();
  }
}

const small = await measure(1_000);
console.log(JSON.stringify(small));
const big = await measure(BIG);
console.log(JSON.stringify(big));
console.log(
  `heartbeats at ${BIG} users: ${(big.heartbeatsPerSecond / small.heartbeatsPerSecond).toFixed(2)} of the 1,000-user figure`,
);
