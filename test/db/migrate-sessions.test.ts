import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { migrate, readMigrations } from '../../src/db/migrate.js';
import { createTestDatabase, silentLogger } from '../helpers/database.js';

// 0007 (sessions) over a database of the previous schema with users and history in it: every
// user keeps their status, time and history, and the migration holds presence for a moment
// whatever the number of users. MIGRATION_USERS=1000000 measures it at a million users
// (docs/performance.md); the default keeps the suite quick.

const USERS = Number(process.env.MIGRATION_USERS ?? 20_000);
let drop: (() => Promise<void>) | undefined;
afterAll(async () => drop?.());

it(`keeps every user's status, time and history, holding presence a moment (${USERS} users)`, {
  timeout: 900_000,
}, async () => {
  const created = await createTestDatabase({ migrated: false });
  drop = created.drop;
  const all = await readMigrations();
  const sessions = all.find((m) => m.name === '0007_sessions.sql');
  expect(sessions).toBeDefined();
  await migrate(
    created.url,
    all.filter((m) => m.id < 7),
    silentLogger,
  );

  const client = new pg.Client({ connectionString: created.url });
  await client.connect();
  try {
    // Users of every kind: live, away by time and swept, away and unswept; a history each.
    await client.query(`select presently.ping_many(
      array(select 'u' || i from generate_series(1, ${USERS}) i),
      array(select case when i % 2 = 0 then 'busy' else 'available' end
            from generate_series(1, ${USERS}) i))`);
    await client.query(`update presently.presence set last_ping = now() - interval '10 minutes'
                        where user_id like 'u%1'`);
    await client.query('select presently.sweep_away()');
    await client.query(`update presently.presence set last_ping = now() - interval '2 minutes'
                        where user_id like 'u%2'`);
    await client.query("select presently.ping_many(array['u2', 'u3'], array['available', 'busy'])");
    const before = await snapshot(client);

    // Pings from another connection throughout: none may wait more than a moment.
    const pinger = new pg.Client({ connectionString: created.url });
    await pinger.connect();
    let pinging = true;
    let slowest = 0;
    const pings = (async () => {
      while (pinging) {
        const started = performance.now();
        await pinger.query(`select presently.ping_many(array['u4'], array['busy'])`);
        slowest = Math.max(slowest, performance.now() - started);
      }
    })();
    const started = performance.now();
    await migrate(created.url, all, silentLogger);
    const took = performance.now() - started;
    pinging = false;
    await pings;
    await pinger.end();
    console.log(
      `0007 over ${USERS} users: ${took.toFixed(0)} ms; slowest ping meanwhile ${slowest.toFixed(0)} ms`,
    );
    expect(took).toBeLessThan(2_000);
    expect(slowest).toBeLessThan(2_000);

    const after = await snapshot(client);
    expect(after.views).toEqual(before.views);
    expect(after.log).toEqual(before.log);
    expect(after.statuses).toEqual(before.statuses);
    // Once swept (a large fill takes longer than the timeout), the O(1) totals are the views.
    await client.query('select presently.sweep_away()');
    expect(await totals(client)).toEqual(
      (
        await client.query(
          'select available::int, busy::int, away::int from presently.status_counts',
        )
      ).rows[0],
    );
    // The new schema works on the old rows: a named session, then the sweep.
    await client.query(
      `select presently.ping_many(array['u1'], array['busy'], array['phone'], array[60::float8])`,
    );
    const { rows } = await client.query(
      `select status from presently.user_status where user_id = 'u1'`,
    );
    expect(rows).toEqual([{ status: 'busy' }]);
  } finally {
    await client.end();
  }
});

async function snapshot(client: pg.Client) {
  const one = async (text: string) => (await client.query(text)).rows[0];
  return {
    // u4 is pinged during the migration: left out of what must not change.
    views: await one(`select count(*) filter (where status = 'available')::int as available,
                             count(*) filter (where status = 'busy')::int as busy,
                             count(*) filter (where status = 'away')::int as away
                      from presently.user_status where user_id <> 'u4'`),
    statuses: await one(`select md5(string_agg(user_id || status || "time", ',' order by user_id))
                         as digest from presently.user_status where user_id <> 'u4'`),
    log: await one(`select count(*)::int as n, md5(string_agg(concat_ws('/', user_id, status,
                    previous, changed_at, ended_at), ',' order by position)) as digest
                    from presently.status_changes where user_id is distinct from 'u4'`),
  };
}

async function totals(client: pg.Client) {
  const { rows } = await client.query(
    'select available::int, busy::int, away::int from presently.status_totals',
  );
  return rows[0];
}
