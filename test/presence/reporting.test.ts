import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type RawBuilder, sql } from 'kysely';
import type pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { useClients, useTestDatabase } from '../helpers/database.js';

// History and reports (migrations/0003_reporting.sql). Changes are appended with
// presently.append_change, which the triggers call, so that the tests choose every time.

const database = useTestDatabase();
const connect = useClients(database);
const rows = async <T>(query: RawBuilder<T>) => (await query.execute(database.db)).rows;

beforeEach(async () => {
  await database.pool.query(`select presently.clear_all();
    update presently.settings set report_timezone = 'UTC';
    truncate presently.history_pruned`);
});

/**
 * Appends a user's changes in order: "<time> <status>, ..." (`removed`: the user deleted). A
 * time of day (09:30) is on `date`, in UTC; a full one (2026-01-06T02:00Z) stands as it is.
 */
async function timeline(user: string, changes: string, date = '2026-01-05') {
  let previous: string | null = null;
  for (const [time = '', word] of changes.split(', ').map((change) => change.split(' '))) {
    const at = time.includes('T') ? time : `${date}T${time}Z`;
    const status = word === 'removed' ? null : (word ?? null);
    await rows(
      sql`select presently.append_change(${user}, ${status}, ${previous}, ${at}::timestamptz)`,
    );
    previous = status;
  }
}
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
const setZone = (zone: string) =>
  rows(sql`update presently.settings set report_timezone = ${zone}`);

describe('reporting.status_intervals', () => {
  const at = (time: string) => new Date(`2026-01-05T${time}Z`);
  const intervals = () =>
    rows(sql`select status, started, ended, extract(epoch from duration)::float8 as seconds,
        period = tstzrange(started, ended) as period_ok, duration = now() - started as to_now
      from reporting.status_intervals order by position`);
  const interval = (status: string, started: string, ended: string | null, seconds?: number) => ({
    status,
    started: at(started),
    ended: ended && at(ended),
    period_ok: true,
    ...(seconds === undefined ? { to_now: true } : { seconds }),
  });

  it('has one row per interval, the last one open and lasting until now()', async () => {
    await timeline('ann', '09:00 available, 10:30 busy, 12:00 away');
    expect(await intervals()).toMatchObject([
      interval('available', '09:00', '10:30', 5400),
      interval('busy', '10:30', '12:00', 5400),
      interval('away', '12:00', null),
    ]);
  });

  it('ends the interval of a removed user, and the removal starts none', async () => {
    await timeline('ann', '09:00 available, 09:45 removed');
    expect(await intervals()).toMatchObject([interval('available', '09:00', '09:45', 2700)]);
  });

  it('never dates a change before the start of the interval it ends', async () => {
    await timeline('ann', '10:00 available, 09:00 busy, 11:00 away');
    expect(await intervals()).toMatchObject([
      interval('available', '10:00', '10:00', 0),
      interval('busy', '10:00', '11:00', 3600),
      interval('away', '11:00', null),
    ]);
  });

  it('never dates a user added again before their removal', async () => {
    await timeline('ann', '10:00 available, 11:00 removed');
    await timeline('ann', '10:30 busy');
    expect(await intervals()).toMatchObject([
      interval('available', '10:00', '11:00', 3600),
      interval('busy', '11:00', null),
    ]);
  });
});

describe('reporting.activity', () => {
  const activity = (from: string, to: string, zone: string | null = null) =>
    rows(sql`select day::text, available_seconds as available, busy_seconds as busy,
        away_seconds as away
      from reporting.activity(${from}::timestamptz, ${to}::timestamptz, ${zone}::text)`);
  const day = (day: string, busy: number, available = 0) => ({ day, available, busy, away: 0 });
  // bob, the only user: busy from 18:00 UTC (13:00 in New York, 23:30 in Kolkata) to 02:00,
  // then available an hour.
  const bob = () =>
    timeline('bob', '18:00 busy, 2026-01-06T02:00Z available, 2026-01-06T03:00Z removed');
  const january = ['2026-01-01T00:00Z', '2026-02-01T00:00Z'] as const;
  const inKolkata = [day('2026-01-05', 1800), day('2026-01-06', 27000, 3600)];

  it('splits intervals at midnight in the zone asked for', async () => {
    await bob();
    expect(await activity(...january, 'UTC')).toEqual([
      day('2026-01-05', 21600),
      day('2026-01-06', 7200, 3600),
    ]);
    expect(await activity(...january, 'America/New_York')).toEqual([
      day('2026-01-05', 28800, 3600),
    ]);
    expect(await activity(...january, 'Asia/Kolkata')).toEqual(inKolkata);
  });

  it('takes the zone from presently.settings by default', async () => {
    await bob();
    await setZone('Asia/Kolkata');
    expect(await activity(...january)).toEqual(inKolkata);
  });

  it('counts only the time in [from, to)', async () => {
    await bob();
    expect(await activity('2026-01-05T23:00Z', '2026-01-06T02:30Z', 'UTC')).toEqual([
      day('2026-01-05', 3600),
      day('2026-01-06', 7200, 1800),
    ]);
  });

  it('has days of 23 and 25 hours where daylight saving time starts and ends', async () => {
    // From midnight to midnight in New York, three days around each change of the clocks.
    await timeline('bob', '2026-03-07T05:00Z busy, 2026-03-10T04:00Z removed');
    await timeline('bob', '2026-10-31T04:00Z busy, 2026-11-03T05:00Z removed');
    expect(await activity('2026-03-01T00:00Z', '2026-11-10T00:00Z', 'America/New_York')).toEqual([
      day('2026-03-07', 86400),
      day('2026-03-08', 82800),
      day('2026-03-09', 86400),
      day('2026-10-31', 86400),
      day('2026-11-01', 90000),
      day('2026-11-02', 86400),
    ]);
  });

  it('counts an open interval up to now(), or up to `to` if earlier', async () => {
    // now() is one instant throughout a transaction, so the numbers are exact.
    const totals = await database.db.transaction().execute(async (trx) => {
      await sql`select presently.append_change('cat', 'available', null,
        now() - interval '90 minutes')`.execute(trx);
      const total = async (from: string, to: string) =>
        (
          await sql<{ s: number }>`select sum(available_seconds) as s from reporting.activity(
            now() - ${from}::interval, now() + ${to}::interval, null, 'cat')`.execute(trx)
        ).rows[0]?.s;
      return [
        await total('1 day', '1 day'),
        await total('1 day', '-30 min'),
        await total('1 hour', '0'),
      ];
    });
    expect(totals).toEqual([5400, 3600, 3600]);
  });
});

describe('reporting.concurrency', () => {
  // ann: available 09:15, busy 09:40 (a handover), away at 11:00 sharp. bob: 09:30 to 09:50.
  // carl and dave in hour 10, one after the other. Nobody online after 11:00.
  const at = (time: string) => `2026-02-02T${time}Z`;
  const day = async () => {
    await timeline('ann', '09:15 available, 09:40 busy, 11:00 away', '2026-02-02');
    await timeline('bob', '09:30 busy, 09:50 removed', '2026-02-02');
    await timeline('carl', '10:10 available, 10:20 away', '2026-02-02');
    await timeline('dave', '10:30 busy, 10:40 removed', '2026-02-02');
  };
  const hours = (source: RawBuilder<unknown>) =>
    rows(sql`select to_char(c.hour at time zone 'UTC', 'HH24:MI') as hour,
      c.online_users as online, c.peak_online as peak from ${source} c order by c.hour`);
  const concurrency = (from: string, to: string, zone: string) =>
    hours(sql`reporting.concurrency(${at(from)}::timestamptz, ${at(to)}::timestamptz, ${zone})`);
  const hour = (time: string, online: number, peak: number) => ({ hour: time, online, peak });
  const kolkata = [hour('08:30', 1, 1), hour('09:30', 3, 2), hour('10:30', 2, 2)];

  it('counts users online in each hour, and the most at once', async () => {
    await day();
    expect(await concurrency('09:00', '13:00', 'UTC')).toEqual([
      hour('09:00', 2, 2), // the handover is not a third user
      hour('10:00', 3, 2),
      hour('11:00', 0, 0), // ann went away as the hour began
      hour('12:00', 0, 0),
    ]);
  });

  it('uses the hours of the zone asked for', async () => {
    await day();
    expect(await concurrency('09:00', '11:00', 'Asia/Kolkata')).toEqual(kolkata);
  });

  it('is what the views report over the whole history, in the report zone', async () => {
    await day();
    await setZone('Asia/Kolkata');
    const [same] = await rows(sql`select
      array(select row(a.*) from reporting.daily_activity a)
        = array(select row(a.*) from reporting.activity('-infinity', 'infinity') a) as daily,
      array(select row(c.*) from reporting.hourly_concurrency c)
        = array(select row(c.*) from reporting.concurrency('-infinity', 'infinity') c) as hourly`);
    expect(same).toEqual({ daily: true, hourly: true });
    expect((await hours(sql`reporting.hourly_concurrency`)).slice(0, 4)).toEqual([
      ...kolkata,
      hour('11:30', 0, 0),
    ]);
    expect(
      await rows(sql`select available_seconds, busy_seconds from reporting.daily_activity
        where user_id = 'ann' and day = '2026-02-02'`),
    ).toEqual([{ available_seconds: 1500, busy_seconds: 4800 }]);
  });
});

describe('presently.prune_history', () => {
  const positions = async () =>
    (
      await rows(sql<{ position: number }>`select position from presently.status_changes
        where user_id is not null order by position`)
    ).map((row) => row.position);
  const prune = async (batch: number, client: pg.Client | pg.Pool = database.pool) =>
    (await client.query(`select presently.prune_history('5 days', ${batch}) as n`)).rows[0]?.n;
  const horizon = async () =>
    (await database.pool.query('select max(pruned_through) as h from presently.history_pruned'))
      .rows[0]?.h ?? 0;

  it('deletes rows that ended before the retention, oldest first, never an open one', async () => {
    await timeline('ann', `${daysAgo(10)} available, ${daysAgo(9)} busy, ${daysAgo(1)} away`);
    await timeline('bob', `${daysAgo(20)} busy`);
    await timeline('cat', `${daysAgo(8)} available, ${daysAgo(6)} removed`);
    const all = await positions();
    const [annOld, annRecent, annOpen, bobOpen, , catRemoved] = all;
    expect(await prune(2)).toBe(2);
    // ann's first interval, then one of cat's two rows (both end 6 days ago).
    const left = await positions();
    expect(left).toHaveLength(4);
    expect(left).not.toContain(annOld);
    expect(await horizon()).toBe(Math.max(...all.filter((p) => !left.includes(p))));
    expect(await prune(2)).toBe(1);
    expect(await prune(2)).toBe(0);
    expect(await positions()).toEqual([annRecent, annOpen, bobOpen]);
    expect(await horizon()).toBe(catRemoved);
  });

  /** Four finished rows, then two pruners in open transactions. */
  async function racingPruners() {
    for (const user of ['u1', 'u2', 'u3', 'u4']) {
      await timeline(user, `${daysAgo(10)} available, ${daysAgo(9)} busy`);
    }
    const [first, second] = [await connect(), await connect()];
    await first.query('begin');
    expect(await prune(2, first)).toBe(2);
    await second.query(`begin; set local lock_timeout = '2s'`);
    return { first, second };
  }

  it('from two transactions at once, deletes different rows (skip locked)', async () => {
    const { first, second } = await racingPruners();
    await second.query('set local lock_timeout = 0');
    const secondPrune = prune(2, second);
    await first.query('commit');
    expect(await secondPrune).toBe(2);
    await second.query('commit');
    const left = await rows(sql`select status from presently.status_changes where user_id > ''`);
    expect(left).toEqual(Array(4).fill({ status: 'busy' }));
  });

  it('from two transactions at once, does not wait for the other', async () => {
    const { first, second } = await racingPruners();
    // "canceling statement due to lock timeout" if it waits for the first transaction.
    const secondResult = await prune(2, second).catch((error: Error) => error.message);
    await first.query('commit');
    expect(secondResult).toBe(2);
  });
});

describe('clearing', () => {
  it('empties the history and every report', async () => {
    await timeline('ann', '09:00 busy');
    await rows(sql`select presently.ping('bob', 'available')`);
    await rows(sql`select presently.clear_all()`);
    const [counts] = await rows(sql`select
      (select count(*) from reporting.user_status) as users,
      (select count(*) from reporting.status_intervals) as intervals,
      (select count(*) from reporting.daily_activity) as daily,
      (select count(*) from reporting.hourly_concurrency) as hourly`);
    expect(counts).toEqual({ users: 0, intervals: 0, daily: 0, hourly: 0 });
    // The log keeps only its clear marker, about no user.
    expect(await rows(sql`select user_id, status from reporting.status_changes`)).toEqual([
      { user_id: null, status: null },
    ]);
  });
});

/** Runs `text` in a transaction that is rolled back, as `role` if given: 'ok' or the error. */
async function attempt(client: pg.Client, role: string | null, text: string) {
  await client.query('begin');
  try {
    if (role) await client.query(`set local role ${role}`);
    await client.query(text);
    return 'ok';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.query('rollback');
  }
}

/** presently_reporting if the server has it (the migration may not create it) and we may use it. */
const reportingRole = async () =>
  (
    await rows(sql<{ ok: boolean }>`select exists (select from pg_roles
      where rolname = 'presently_reporting' and pg_has_role(current_user, oid, 'member')) as ok`)
  )[0]?.ok
    ? 'presently_reporting'
    : null;

describe('the role presently_reporting', () => {
  it('reads every view and runs every function of reporting, and nothing in presently', async (ctx) => {
    const role = await reportingRole();
    if (!role) return ctx.skip();
    await timeline('ann', '09:00 busy');
    const views = await rows(sql<{ name: string }>`select table_name as name
      from information_schema.views where table_schema = 'reporting' order by 1`);
    expect(views.map((view) => view.name).join()).toBe(
      'daily_activity,hourly_concurrency,status_changes,status_intervals,user_status',
    );
    const client = await connect();
    for (const { name } of views)
      expect(await attempt(client, role, `table reporting.${name}`)).toBe('ok');
    const functions = `select reporting.report_zone();
      select * from reporting.activity('-infinity', 'infinity', 'UTC', 'ann');
      select * from reporting.concurrency(now() - interval '1 day', now())`;
    expect(await attempt(client, role, functions)).toBe('ok');
    for (const table of ['presently.presence', 'presently.status_changes']) {
      expect(await attempt(client, role, `table ${table}`)).toMatch(/permission denied/);
      expect(await attempt(client, null, `table ${table}`)).toBe('ok'); // the role's denial
    }
  });
});

describe('docs/reporting.md', () => {
  const sqlBlocks = async () => {
    const text = await readFile(new URL('../../docs/reporting.md', import.meta.url), 'utf8');
    return [...text.matchAll(/^```sql\n([\s\S]*?)^```$/gm)].map((match) => match[1] as string);
  };
  const aboutRoles = (block: string) => block.includes('presently_reporting');

  it('has recipes that run, as presently_reporting where the server has it', async () => {
    await timeline('ann', `${daysAgo(2)} available, ${daysAgo(1)} busy`);
    await rows(sql`select presently.ping('bob', 'busy')`);
    const role = await reportingRole();
    const recipes = (await sqlBlocks()).filter((block) => !aboutRoles(block));
    expect(recipes.length).toBeGreaterThanOrEqual(6);
    const client = await connect();
    const results = [];
    for (const recipe of recipes) results.push(await attempt(client, role, recipe));
    expect(results).toEqual(recipes.map(() => 'ok'));
  });

  it('has role SQL that works, where the test user may create roles', async (ctx) => {
    const [may] = await rows(sql<{ ok: boolean }>`select rolsuper or rolcreaterole as ok
      from pg_roles where rolname = current_user`);
    if (!may?.ok) return ctx.skip();
    // Roles belong to the whole server: fresh names, in a transaction rolled back.
    const suffix = randomBytes(4).toString('hex');
    const script = (await sqlBlocks())
      .filter(aboutRoles)
      .sort((a, b) => Number(b.includes('nologin')) - Number(a.includes('nologin')))
      .join('\n')
      .replaceAll('presently_reporting', `reporting_${suffix}`)
      .replaceAll('analyst', `analyst_${suffix}`);
    const client = await connect();
    const asAnalyst = (query: string) =>
      attempt(client, null, `${script}; set local role analyst_${suffix}; ${query}`);
    expect(await asAnalyst('table reporting.daily_activity')).toBe('ok');
    expect(await asAnalyst('table presently.presence')).toMatch(/permission denied/);
  });
});
