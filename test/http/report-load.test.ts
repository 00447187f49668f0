import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { createReadiness } from '../../src/db/readiness.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { LATEST_MIGRATION, request, testApp } from '../helpers/http.js';

// Issue 19, finding 3: heavy reports must not starve pings and readiness. 100,000 users whose
// intervals began 40 days ago; ten reports over 30 days at once; meanwhile pings, counts and
// /readyz must keep answering. The ping pool here is the service's own size, with a short wait
// for a connection (1 s instead of 5 s) and a short statement timeout (3 s instead of 10 s), so
// that a starved ping path shows within seconds rather than after the production timeouts.

const USERS = 100_000;
const database = useTestDatabase();
let pingPool: pg.Pool;
let reportDb: ReturnType<typeof createDb>;

beforeAll(async () => {
  // Direct inserts: one open interval per user, 40 days old (what append_change would write).
  await sql`
    insert into presently.status_changes (user_id, status, previous, changed_at)
    select 'u' || lpad(i::text, 6, '0'), 'available', null, now() - interval '40 days'
    from generate_series(1, ${USERS}) i
  `.execute(database.db);
  await sql`analyze presently.status_changes`.execute(database.db);
  pingPool = new pg.Pool({
    connectionString: database.url,
    max: 10,
    connectionTimeoutMillis: 1_000,
    statement_timeout: 3_000,
  });
  pingPool.on('error', () => {});
  // The service's report pool, as main.ts makes it.
  reportDb = createDb(createPool({ connectionString: database.url, ...REPORT_POOL }, silentLogger));
}, 60_000);

afterAll(async () => {
  await reportDb?.destroy();
  await pingPool?.end();
});

const REPORT_POOL = { max: 2, statementTimeoutMs: 5_000, applicationName: 'presently-reports' };

const day = (daysAgo: number) =>
  new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);

it('keeps pings, counts and readiness answering while ten heavy reports run', async () => {
  const db = createDb(pingPool);
  const app = testApp(db, {
    reportDb,
    readiness: createReadiness({
      db,
      listener: { listening: true },
      latestMigration: LATEST_MIGRATION,
    }),
  });
  const period = `from=${day(30)}&to=${day(0)}`;
  const reports = Array.from({ length: 10 }, () =>
    request(app, 'GET', `/reports/activity?${period}&limit=10000`),
  );
  // Let the reports take their connections first, as they would on a live instance.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const rounds = [];
  for (let round = 0; round < 3; round += 1) {
    rounds.push(
      await Promise.all([
        request(app, 'POST', '/users/ping', { body: { id: `p${round}`, status: 'busy' } }),
        request(app, 'GET', '/users/count'),
        request(app, 'GET', '/readyz', { key: null }),
      ]),
    );
  }
  for (const [ping, count, ready] of rounds) {
    expect(ping.status).toBe(200);
    expect(count.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ok', checks: { database: true } });
  }
  // Reports answer in full, or are refused at once with a reason and a time to come back.
  for (const answer of await Promise.all(reports)) {
    if (answer.status === 200) {
      expect(answer.body.data).toHaveLength(10_000);
      continue;
    }
    expect(answer.status).toBe(503);
    expect(['reports_busy', 'report_too_expensive']).toContain(answer.body.error.code);
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
  }
}, 60_000);
