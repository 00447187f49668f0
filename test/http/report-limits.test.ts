import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { toAppError } from '../../src/edge/errors.js';
import { createReportGate } from '../../src/http/report-gate.js';
import { readActivity } from '../../src/presence/history.js';
import { silentLogger, useClients, useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

// Issue 19, finding 3: what a report may cost. A page computes only the days it shows; a report
// past the report pool's statement timeout is answered for what it is; reports beyond the bound
// on concurrent ones are refused at once rather than queued on the database.

const database = useTestDatabase();
const connect = useClients(database);
const USERS = 200;
const PERIOD = { from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' };
const periodQuery = 'from=2026-10-01&to=2026-11-01';
let tinyTimeout: ReturnType<typeof createDb>;

beforeAll(async () => {
  // Every user changes status every 12 hours from September 25 to November 5: two intervals a
  // day, so what a report reads grows with the days it covers.
  await sql`
    insert into presently.status_changes (user_id, status, previous, changed_at, ended_at)
    select 'u' || lpad(u::text, 3, '0'),
           case when h % 24 = 0 then 'available' else 'busy' end, null,
           timestamptz '2026-09-25T00:00:00Z' + make_interval(hours => h),
           timestamptz '2026-09-25T00:00:00Z' + make_interval(hours => h + 12)
    from generate_series(1, ${USERS}) u, generate_series(0, 41 * 24, 12) h
  `.execute(database.db);
  await sql`analyze presently.status_changes`.execute(database.db);
  const pool = createPool(
    { connectionString: database.url, max: 2, statementTimeoutMs: 1 },
    silentLogger,
  );
  tinyTimeout = createDb(pool);
}, 60_000);

afterAll(() => tinyTimeout?.destroy());

/** Rows of the log read by scans of the table or of its period index, in this transaction. */
async function fetchedBy(work: (db: typeof database.db) => Promise<unknown>): Promise<number> {
  return database.db.transaction().execute(async (trx) => {
    const read = () =>
      sql<{ fetched: number }>`
        select (pg_stat_get_xact_tuples_returned('presently.status_changes'::regclass)
              + pg_stat_get_xact_tuples_returned('presently.status_changes_period'::regclass))::int
               as fetched
      `
        .execute(trx)
        .then(({ rows }) => rows[0]?.fetched ?? 0);
    const before = await read();
    await work(trx);
    return (await read()) - before;
  });
}

describe('a page of /reports/activity', () => {
  it('reads only the days it shows, not the whole period', async () => {
    const whole = await fetchedBy((db) =>
      sql`select * from reporting.activity(${PERIOD.from}, ${PERIOD.to})`.execute(db),
    );
    const firstPage = await fetchedBy((db) => readActivity(db, PERIOD, { limit: 1 }));
    const lastDay = await fetchedBy((db) =>
      readActivity(db, PERIOD, { limit: 1, after: { day: '2026-10-31', user: 'u100' } }),
    );
    // About three intervals per user overlap one day; the month is about 62 per user.
    expect(whole).toBeGreaterThan(30 * 2 * USERS);
    for (const page of [firstPage, lastDay]) expect(page).toBeLessThan(4 * USERS);
  });

  it('answers what the whole report answers, page after page', async () => {
    const { rows } = await sql`
      select user_id as "user", to_char(day, 'YYYY-MM-DD') as day, available_seconds as available,
             busy_seconds as busy, away_seconds as away
      from reporting.activity(${PERIOD.from}, ${PERIOD.to})
      order by day, user_id collate "C"
    `.execute(database.db);
    const app = testApp(database.db);
    const pages: unknown[] = [];
    let cursor = '';
    for (let page = 0; page < 100; page += 1) {
      const answer = await request(
        app,
        'GET',
        `/reports/activity?${periodQuery}&limit=777${cursor}`,
      );
      expect(answer.status).toBe(200);
      pages.push(...answer.body.data);
      if (answer.body.next === null) break;
      cursor = `&cursor=${answer.body.next}`;
    }
    expect(rows).toHaveLength(31 * USERS);
    expect(pages).toEqual(rows);
  });
});

describe('a report past its statement timeout', () => {
  it('answers 503 report_too_expensive with Retry-After', async () => {
    const app = testApp(database.db, { reportDb: tinyTimeout });
    const answer = await request(app, 'GET', `/reports/activity?${periodQuery}&limit=10000`);
    expect(answer.status).toBe(503);
    expect(answer.body.error).toEqual({
      code: 'report_too_expensive',
      message: expect.stringMatching(/took too long.*shorter period/),
    });
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    // The ping path's pool is not the one that gave up: it answers.
    expect((await request(app, 'GET', '/users/count')).status).toBe(200);
  });

  it('is told apart from an unreachable database, in the one error mapping', async () => {
    const timedOut = await sql`select pg_sleep(1)`.execute(tinyTimeout).catch((e: Error) => e);
    expect(toAppError(timedOut, { report: true })).toMatchObject({
      code: 'report_too_expensive',
      status: 503,
    });
    // On the ping path, the database answered: it was slow, not unreachable.
    const elsewhere = toAppError(timedOut);
    expect(elsewhere).toMatchObject({ code: 'database_unavailable', status: 503 });
    expect(elsewhere.message).not.toMatch(/unreachable/);
  });

  it('is the same for a user history', async () => {
    // One user's history can take under a millisecond, so the log is held behind a lock: the
    // query then waits past the timeout every time, however fast the machine.
    const locker = await connect();
    await locker.query('begin; lock table presently.status_changes in access exclusive mode');
    try {
      const app = testApp(database.db, { reportDb: tinyTimeout });
      const answer = await request(app, 'GET', `/users/u001/history?${periodQuery}`);
      expect(answer.status).toBe(503);
      expect(answer.body.error.code).toBe('report_too_expensive');
    } finally {
      await locker.query('rollback');
    }
  });
});

describe('reports beyond the bound on concurrent ones', () => {
  it('are refused at once with 503 reports_busy and Retry-After', async () => {
    const app = testApp(database.db, {
      reportGate: createReportGate({ concurrency: 1, queue: 0, waitMs: 1_000 }),
    });
    // A report that waits on a lock holds the one place; nothing else in the test needs it.
    const locker = await connect();
    await locker.query('begin; lock table presently.settings in access exclusive mode');
    const first = request(app, 'GET', `/reports/activity?${periodQuery}`);
    await waitFor('the first report to wait on the lock', async () => {
      const { rows } = await locker.query(
        `select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0].n > 0;
    });
    const second = await request(app, 'GET', `/reports/activity?${periodQuery}`);
    await locker.query('rollback');
    expect(second.status).toBe(503);
    expect(second.body.error.code).toBe('reports_busy');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await first).status).toBe(200);
  });
});
