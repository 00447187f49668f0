import { setTimeout as sleep } from 'node:timers/promises';
import { type RawBuilder, sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { CHANGES_CHANNEL, latestPosition, sweepAway } from '../../src/presence/changes.js';
import { clearAll, recordPing, setAwayTimeout } from '../../src/presence/repository.js';
import { useClients, useTestDatabase } from '../helpers/database.js';
import { within } from '../helpers/wait.js';

// The change log (migrations/0002_status_changes.sql) is written by triggers only, so these
// tests drive presently.presence with SQL and read presently.status_changes back.

const database = useTestDatabase();
const connect = useClients(database);

beforeEach(async () => {
  await setAwayTimeout(database.db, 60);
  // Leaves one clear marker in the log: log() below reads only the rows about users.
  await sql`truncate presently.presence`.execute(database.db);
});

const rows = async <T>(query: RawBuilder<T>) => (await query.execute(database.db)).rows;
const ping = (id: string, status: 'available' | 'busy') => recordPing(database.db, { id, status });

/** The payloads of every notification on the change channel from now on. */
async function listen(): Promise<string[]> {
  const client = await connect();
  const payloads: string[] = [];
  client.on('notification', (message) => payloads.push(message.payload ?? ''));
  await client.query(`listen ${CHANGES_CHANNEL}`);
  return payloads;
}

/** Long enough for a notification committed before it to reach a local listener. */
const settle = () => sleep(300);

/** A user whose last ping was `secondsAgo`: within the 60 s timeout, so logged as pinged. */
async function insertPinged(user: string, status: string, secondsAgo: number): Promise<Date> {
  const at = new Date(Date.now() - secondsAgo * 1_000);
  await rows(sql`insert into presently.presence values (${user}, ${status}, ${at})`);
  return at;
}

type Maybe = string | null;
const change = (user_id: string, status: Maybe, previous: Maybe) => ({ user_id, status, previous });
const log = () =>
  rows(sql<{ user_id: string; status: Maybe; previous: Maybe }>`
    select user_id, status, previous from presently.status_changes
    where user_id is not null order by position`);
/** Whether the latest row of the log is timed at its user's last ping. */
const latestAtPing = () =>
  rows(sql<{ at_ping: boolean }>`select c.changed_at = p.last_ping as at_ping
    from presently.status_changes c join presently.presence p using (user_id)
    order by c.position desc limit 1`);

describe('the change log on pings', () => {
  it("logs a new user's first ping once: no previous status, at the ping's time", async () => {
    await ping('ann', 'available');
    expect(await log()).toEqual([change('ann', 'available', null)]);
    expect(await latestAtPing()).toEqual([{ at_ping: true }]);
  });

  it('neither logs nor notifies a heartbeat, but notifies a change with an empty payload', async () => {
    await ping('ann', 'available');
    const notifications = await listen();
    await ping('ann', 'available');
    await settle();
    expect(notifications).toEqual([]);
    expect(await log()).toEqual([change('ann', 'available', null)]);
    // The same wait does see a real change, so the check above could have failed.
    await ping('ann', 'busy');
    await settle();
    expect(notifications).toEqual(['']);
  });

  it('logs a change of status as previous → new, at the time of the ping', async () => {
    await ping('ann', 'available');
    await ping('ann', 'busy');
    expect(await log()).toEqual([
      change('ann', 'available', null),
      change('ann', 'busy', 'available'),
    ]);
    expect(await latestAtPing()).toEqual([{ at_ping: true }]);
  });

  it('sends one notification per transaction, however many users it changes', async () => {
    const notifications = await listen();
    await rows(
      sql`select count(*) from generate_series(1, 50) i, presently.ping('u' || i, 'busy')`,
    );
    await settle();
    expect(notifications).toHaveLength(1);
    const client = await connect();
    await client.query(`begin; select presently.ping('u1', 'available');
      select presently.ping('u2', 'available'); commit`);
    await settle();
    expect(notifications).toHaveLength(2);
    // ...while every user's change is logged.
    expect(
      await rows(sql`select status, previous, count(*) as n from presently.status_changes
        where user_id is not null group by status, previous order by status, previous`),
    ).toEqual([
      { status: 'available', previous: 'busy', n: 2 },
      { status: 'busy', previous: null, n: 50 },
    ]);
  });

  it('logs a user deleted with SQL as a change to a null status', async () => {
    await ping('ann', 'busy');
    await rows(sql`delete from presently.presence where user_id = 'ann'`);
    expect(await log()).toEqual([change('ann', 'busy', null), change('ann', null, 'busy')]);
    // A user past the timeout and not swept yet goes away first, then is removed.
    await insertPinged('bob', 'available', 30);
    await setAwayTimeout(database.db, 10);
    await rows(sql`delete from presently.presence where user_id = 'bob'`);
    expect((await log()).slice(2)).toEqual([
      change('bob', 'available', null),
      change('bob', 'away', 'available'),
      change('bob', null, 'away'),
    ]);
  });
});

describe('going away by time', () => {
  const awayRows = () =>
    rows(sql<{ user_id: string; previous: string; changed_at: Date }>`
      select user_id, previous, changed_at from presently.status_changes
      where status = 'away' order by user_id`);
  const plus10s = (date: Date) => new Date(date.getTime() + 10_000);

  it('is logged once by the sweep, at the last ping plus the timeout', async () => {
    const ann = await insertPinged('ann', 'available', 30);
    const bob = await insertPinged('bob', 'busy', 30);
    await insertPinged('cat', 'busy', 5);
    await setAwayTimeout(database.db, 10);
    expect(await sweepAway(database.db)).toBe(2);
    expect(await sweepAway(database.db)).toBe(0);
    // When the user went away, not when the sweep noticed.
    expect(await awayRows()).toEqual([
      { user_id: 'ann', previous: 'available', changed_at: plus10s(ann) },
      { user_id: 'bob', previous: 'busy', changed_at: plus10s(bob) },
    ]);
    expect(await log()).toHaveLength(5);
  });

  it('is logged exactly once when sweeps race on separate connections', async () => {
    await rows(sql`insert into presently.presence select 'u' || i, 'busy',
      now() - interval '30 seconds' from generate_series(1, 400) i`);
    await setAwayTimeout(database.db, 10);
    const sweepers = await Promise.all([1, 2, 3, 4].map(() => connect()));
    const swept = await Promise.all(
      sweepers.map((client) => client.query<{ n: number }>('select presently.sweep_away() as n')),
    );
    expect(swept.reduce((total, result) => total + (result.rows[0]?.n ?? 0), 0)).toBe(400);
    expect(
      await rows(sql`select count(*) as n, count(distinct user_id) as users
        from presently.status_changes where status = 'away'`),
    ).toEqual([{ n: 400, users: 400 }]);
  });

  it('is logged by a ping that comes first, before the new status, even the same one', async () => {
    const ann = await insertPinged('ann', 'available', 30);
    await insertPinged('bob', 'busy', 30);
    await setAwayTimeout(database.db, 10);
    await ping('ann', 'available');
    await ping('bob', 'available');
    expect(await log()).toEqual([
      change('ann', 'available', null),
      change('bob', 'busy', null),
      change('ann', 'away', 'available'),
      change('ann', 'available', 'away'),
      change('bob', 'away', 'busy'),
      change('bob', 'available', 'away'),
    ]);
    expect((await awayRows())[0]?.changed_at).toEqual(plus10s(ann));
    expect(await sweepAway(database.db)).toBe(0);
  });

  it('skips a user another transaction holds, without waiting: that transaction logs it', async () => {
    await insertPinged('ann', 'available', 30);
    await insertPinged('bob', 'available', 30);
    await setAwayTimeout(database.db, 10);
    const other = await connect();
    await other.query(`begin; select presently.ping('ann', 'busy')`);
    expect(
      await within(
        'the sweep, which must not wait for the held user',
        sweepAway(database.db),
        2_000,
      ),
    ).toBe(1);
    await other.query('commit');
    expect((await log()).filter((row) => row.user_id === 'ann')).toEqual([
      change('ann', 'available', null),
      change('ann', 'away', 'available'),
      change('ann', 'busy', 'away'),
    ]);
  });

  // Raising the timeout turns a swept user back to busy in presently.user_status with no write
  // to presence: the settings trigger logs it, or the log (and the sockets it drives) would say
  // away while the REST API says busy.
  it('stays in step with presently.user_status when the timeout is raised', async () => {
    await insertPinged('ann', 'busy', 30);
    await setAwayTimeout(database.db, 10);
    expect(await sweepAway(database.db)).toBe(1);
    await setAwayTimeout(database.db, 60); // what a restart with AWAY_TIMEOUT_SECONDS=60 does
    expect(
      await rows(sql`select u.status as viewed, (select c.status from presently.status_changes c
        where c.user_id = u.user_id order by c.position desc limit 1) as logged
        from presently.user_status u`),
    ).toEqual([{ viewed: 'busy', logged: 'busy' }]);
  });
});

describe('clearing', () => {
  it.each([
    ['presently.clear_all()', () => clearAll(database.db)],
    ['truncate presently.presence', () => rows(sql`truncate presently.presence`)],
  ])('%s empties the log but for one marker past every earlier position', async (_, clear) => {
    await ping('ann', 'available');
    await ping('ann', 'busy');
    const before = await latestPosition(database.db);
    const notifications = await listen();
    await clear();
    const left = await rows(sql<{ position: number }>`
      select position, user_id, status, previous from presently.status_changes`);
    expect(left).toEqual([
      { position: expect.any(Number), user_id: null, status: null, previous: null },
    ]);
    // Positions never restart: a reader past the old ones still finds the marker.
    expect(left[0]?.position).toBeGreaterThan(before);
    await settle();
    expect(notifications).toEqual(['']);
  });
});

describe('clearing in a transaction', () => {
  it('works after pings in the same transaction, and leaves only the marker', async () => {
    const client = await connect();
    await client.query('begin');
    await client.query(`select * from presently.ping('ann', 'busy')`);
    await client.query('select presently.clear_all()');
    await client.query('commit');
    const left = await rows(sql`select user_id, status from presently.status_changes`);
    expect(left).toEqual([{ user_id: null, status: null }]);
  });
});

describe('positions', () => {
  it('follow commit order, and an open transaction blocks no other ping', async () => {
    const late = await connect();
    await late.query(`begin; select presently.ping('late', 'busy')`);
    await within(
      'a ping, which must not wait for the open transaction',
      ping('early', 'busy'),
      2_000,
    );
    // A reader while 'late' is open sees 'early' only; nothing may appear before it later.
    expect(await log()).toEqual([change('early', 'busy', null)]);
    await late.query('commit');
    // Ordered by position: 'late' comes after 'early', though it pinged first (its time is
    // the start of its transaction).
    expect(await log()).toEqual([change('early', 'busy', null), change('late', 'busy', null)]);
    expect(
      await rows(sql`select
        (select changed_at from presently.status_changes where user_id = 'late') <
        (select changed_at from presently.status_changes where user_id = 'early') as pinged_first`),
    ).toEqual([{ pinged_first: true }]);
  });

  it('belong only to changes of a user or to clear markers', async () => {
    const insert = (user: Maybe, status: Maybe, previous: Maybe) =>
      rows(sql`insert into presently.status_changes (user_id, status, previous, changed_at)
        values (${user}, ${status}, ${previous}, now())`);
    await expect(insert(null, 'busy', null)).rejects.toThrow(/check constraint/);
    await expect(insert(null, null, 'busy')).rejects.toThrow(/check constraint/);
    await expect(insert('ann', null, null)).rejects.toThrow(/check constraint/);
    await expect(insert('ann', 'gone', null)).rejects.toThrow(/check constraint/);
  });
});
