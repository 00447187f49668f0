import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  countUsers,
  listUsers,
  recordPing,
  setAwayTimeout,
} from '../../src/presence/repository.js';
import { useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

const database = useTestDatabase();

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
  await setAwayTimeout(database.db, 60);
});

const insertAged = (user: string, status: string, secondsAgo: number) =>
  sql`insert into presently.presence values (${user}, ${status}, now() - make_interval(secs => ${secondsAgo}))`.execute(
    database.db,
  );

describe('the status views', () => {
  it('derive away from the last ping, the stored timeout and now()', async () => {
    await insertAged('fresh', 'busy', 59);
    await insertAged('stale', 'busy', 61);
    const { rows } = await sql<{ user_id: string; status: string }>`
      select user_id, status from presently.user_status order by user_id`.execute(database.db);
    expect(rows).toEqual([
      { user_id: 'fresh', status: 'busy' },
      { user_id: 'stale', status: 'away' },
    ]);
  });

  it('read the timeout from presently.settings', async () => {
    await insertAged('u', 'available', 30);
    expect((await countUsers(database.db)).available).toBe(1);
    const previous = await setAwayTimeout(database.db, 10);
    expect(previous).toBe(60);
    expect(await countUsers(database.db)).toEqual({ available: 0, busy: 0, away: 1 });
    const { rows } = await sql<{ away_timeout: string }>`
      select away_timeout::text from presently.settings`.execute(database.db);
    expect(rows).toEqual([{ away_timeout: '00:00:10' }]);
  });

  it('get their settings row back at start-up if someone removed it', async () => {
    await insertAged('u', 'busy', 1);
    await sql`delete from presently.settings`.execute(database.db);
    expect(await countUsers(database.db)).toEqual({ available: 0, busy: 0, away: 0 });
    expect(await setAwayTimeout(database.db, 30)).toBe(30);
    expect(await countUsers(database.db)).toEqual({ available: 0, busy: 1, away: 0 });
  });

  it('give the Unix time of the last ping in whole seconds, for away users too', async () => {
    await sql`insert into presently.presence values ('old', 'busy', to_timestamp(1676735121.9))`.execute(
      database.db,
    );
    expect(await listUsers(database.db, 'all')).toEqual([
      { user: 'old', status: 'away', time: 1676735121 },
    ]);
  });

  it('count zero of every status in an empty table', async () => {
    expect(await countUsers(database.db)).toEqual({ available: 0, busy: 0, away: 0 });
  });

  it('answer the API and a direct SQL query alike', async () => {
    await insertAged('a', 'available', 5);
    await insertAged('b', 'busy', 120);
    await recordPing(database.db, { id: 'c', status: 'busy' });
    const api = (await request(testApp(database.db), 'GET', '/users/list/all')).body.data;
    const { rows } = await sql`
      select user_id as "user", status, "time" from presently.user_status order by user_id`.execute(
      database.db,
    );
    expect(api).toEqual(rows);
    const counts = await sql`select * from presently.status_counts`.execute(database.db);
    expect((await request(testApp(database.db), 'GET', '/users/count')).body.data).toEqual(
      counts.rows[0],
    );
  });

  it('refuse what no ping could store', async () => {
    await expect(insertAged('u', 'away', 0)).rejects.toThrow(/check constraint/);
    await expect(insertAged('', 'busy', 0)).rejects.toThrow(/check constraint/);
    await expect(
      sql`update presently.settings set away_timeout = '0 seconds'`.execute(database.db),
    ).rejects.toThrow(/check constraint/);
    await expect(
      sql`insert into presently.settings default values`.execute(database.db),
    ).rejects.toThrow();
  });
});

describe('the away transition', () => {
  it('moves a user to away once the timeout passes, keeping the time of the last ping', async () => {
    await setAwayTimeout(database.db, 1);
    const app = testApp(database.db);
    const pinged = await request(app, 'POST', '/users/ping', {
      body: { id: 7, status: 'available' },
    });
    expect(pinged.body.data).toEqual({ available: 1, busy: 0, away: 0 });
    const [before] = (await request(app, 'GET', '/users/list/available')).body.data;
    expect(before).toMatchObject({ user: '7', status: 'available' });

    await new Promise((resolve) => setTimeout(resolve, 1_500));

    expect((await request(app, 'GET', '/users/list/available')).body.data).toEqual([]);
    expect((await request(app, 'GET', '/users/list/away')).body.data).toEqual([
      { user: '7', status: 'away', time: before.time },
    ]);
    expect((await request(app, 'GET', '/users/count')).body.data).toEqual({
      available: 0,
      busy: 0,
      away: 1,
    });

    const back = await request(app, 'POST', '/users/ping', { body: { id: '7', status: 'busy' } });
    expect(back.body.data).toEqual({ available: 0, busy: 1, away: 0 });
  });
});

describe('the planner', () => {
  // A table never analyzed is guessed at about a thousand rows: a join of the users with it was
  // then costed a thousand times too high, and JIT-compiled where JIT exists.
  it('knows that the settings and the totals are one row each', async () => {
    for (const table of ['presently.settings', 'presently.status_totals']) {
      const { rows } = await sql<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>`
        explain (format json) select * from ${sql.raw(table)}`.execute(database.db);
      expect(rows[0]?.['QUERY PLAN'][0].Plan['Plan Rows'], table).toBe(1);
    }
  });

  it('costs the status views as a scan of the users, not a join with a guessed thousand rows', async () => {
    const { rows } = await sql<{ 'QUERY PLAN': [{ Plan: { 'Total Cost': number } }] }>`
      explain (format json) select * from presently.user_status`.execute(database.db);
    // Unanalyzed, about 11,700 here: a join with a guessed 1,060 settings rows.
    expect(rows[0]?.['QUERY PLAN'][0].Plan['Total Cost']).toBeLessThan(1_000);
  });
});
