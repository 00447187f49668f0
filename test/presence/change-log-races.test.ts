import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { setAwayTimeout } from '../../src/presence/repository.js';
import { useClients, useTestDatabase } from '../helpers/database.js';

// Races between pings, sweeps, clears and timeout changes, each played out on connections of
// their own with transactions held open at the moment that matters.

const database = useTestDatabase();
const connect = useClients(database);

beforeEach(async () => {
  await setAwayTimeout(database.db, 60);
  await sql`truncate presently.presence`.execute(database.db);
});

const query = async <T = unknown>(text: string) =>
  (await sql.raw<T>(text).execute(database.db)).rows;
const userLog = (user: string) =>
  query<{
    status: string | null;
    changed_at: Date;
  }>(`select status, previous, changed_at from presently.status_changes
         where user_id = '${user}' order by position`);
const viewAndLog = () =>
  query(`select u.user_id, u.status as viewed, p.logged_status as logged
         from presently.user_status u join presently.presence p using (user_id)`);
/** A user who pinged 100 s ago, logged as available (the timeout was longer then): now due. */
async function insertDue(user: string) {
  await setAwayTimeout(database.db, 3_600);
  await query(`insert into presently.presence (user_id, status, last_ping)
               values ('${user}', 'available', now() - interval '100 seconds')`);
  await setAwayTimeout(database.db, 60);
}

describe('clearing inside a transaction', () => {
  it('does not deadlock with another ping committing meanwhile', async () => {
    const other = await connect();
    const clearer = await connect();
    await other.query(`begin; select presently.ping('bob', 'busy')`);
    await clearer.query(`begin; select presently.ping('ann', 'busy')`);
    const clear = clearer.query('select presently.clear_all()');
    await sleep(200);
    const commit = other.query('commit');
    await Promise.all([clear, commit]);
    await clearer.query('commit');
    expect(await query('select user_id, status from presently.status_changes')).toEqual([
      { user_id: null, status: null },
    ]);
  });
});

describe('a timeout changed while a sweep runs', () => {
  it('waits for the sweep, then logs the user back', async () => {
    await insertDue('u');
    const sweeper = await connect();
    await sweeper.query('begin');
    expect((await sweeper.query('select presently.sweep_away() as n')).rows).toEqual([{ n: 1 }]);
    const raised = setAwayTimeout(database.db, 3_600);
    await sleep(200);
    await sweeper.query('commit');
    await raised;
    expect(await viewAndLog()).toEqual([
      { user_id: 'u', viewed: 'available', logged: 'available' },
    ]);
    expect((await userLog('u')).map((row) => row.status)).toEqual([
      'available',
      'away',
      'available',
    ]);
  });

  it('is waited for by the sweep, which then uses the new timeout', async () => {
    await insertDue('u');
    const setter = await connect();
    await setter.query(`begin; update presently.settings set away_timeout = interval '1 hour'`);
    const swept = query('select presently.sweep_away() as n');
    await sleep(200);
    await setter.query('commit');
    expect(await swept).toEqual([{ n: 0 }]);
    expect(await viewAndLog()).toEqual([
      { user_id: 'u', viewed: 'available', logged: 'available' },
    ]);
  });
});

describe('a sweep waiting for a timeout change', () => {
  it('holds no user meanwhile, so the changing transaction may ping them (no deadlock)', async () => {
    await insertDue('u');
    const changer = await connect();
    await changer.query(`begin; update presently.settings set away_timeout = '61 seconds'`);
    const swept = query('select presently.sweep_away() as n');
    await sleep(200);
    await changer.query(`select presently.ping('u', 'busy')`);
    await changer.query('commit');
    // The ping logged the timeout that had passed, then its status: nothing left to sweep.
    expect(await swept).toEqual([{ n: 0 }]);
    expect((await userLog('u')).map((row) => row.status)).toEqual(['available', 'away', 'busy']);
  });
});

it('never dates an away before the change it follows, when the timeout goes up and down', async () => {
  await insertDue('v');
  await query('select presently.sweep_away()');
  await setAwayTimeout(database.db, 3_600);
  await setAwayTimeout(database.db, 60);
  await query('select presently.sweep_away()');
  const log = await userLog('v');
  expect(log.map((row) => row.status)).toEqual(['available', 'away', 'available', 'away']);
  const times = log.map((row) => row.changed_at.getTime());
  expect(times).toEqual([...times].sort((a, b) => a - b));
});
