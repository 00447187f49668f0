import { setTimeout as sleep } from 'node:timers/promises';
import { type RawBuilder, sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { sweepAway } from '../../src/presence/changes.js';
import { createPingWriter } from '../../src/presence/ping-writer.js';
import { recordPing, setAwayTimeout } from '../../src/presence/repository.js';
import { endSession, readUserState, setMessage, setOverride } from '../../src/presence/sessions.js';
import type { Ping } from '../../src/presence/validation.js';
import { useTestDatabase } from '../helpers/database.js';

// Sessions, overrides and messages (migrations/0007): one user's devices merged in SQL.

const database = useTestDatabase();

beforeEach(async () => {
  await setAwayTimeout(database.db, 60);
  await sql`truncate presently.presence`.execute(database.db);
});

const rows = async <T>(query: RawBuilder<T>) => (await query.execute(database.db)).rows;
const ping = (id: string, status: Ping['status'], session?: string, timeout?: number) =>
  recordPing(database.db, { id, status, session, timeout });
const viewed = async (user: string) =>
  (
    await rows(sql<{ status: string }>`
      select status from presently.user_status where user_id = ${user}`)
  )[0]?.status;
const log = (user: string) =>
  rows(sql<{ status: string | null; previous: string | null; message: string | null }>`
    select status, previous, message from presently.status_changes
    where user_id = ${user} order by position`);
/** The O(1) totals and the views' counts, which must agree once the sweep has run. */
const totalsAndViews = () =>
  rows(sql<{ totals: unknown; views: unknown }>`
    select (select row_to_json(t)::jsonb - 'singleton' from presently.status_totals t) as totals,
           (select row_to_json(c)::jsonb from presently.status_counts c) as views`);
const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1_000);

describe('the effective status', () => {
  it('merges live sessions, busy over available, whichever pinged last', async () => {
    await ping('ann', 'busy', 'phone');
    await ping('ann', 'available', 'laptop');
    expect(await viewed('ann')).toBe('busy');
    await ping('ann', 'available');
    expect(await viewed('ann')).toBe('busy');
    await ping('ann', 'available', 'phone');
    expect(await viewed('ann')).toBe('available');
    expect((await log('ann')).map((row) => row.status)).toEqual(['busy', 'available']);
    expect((await readUserState(database.db, 'ann'))?.sessions?.map((s) => s.session)).toEqual([
      'default',
      'laptop',
      'phone',
    ]);
  });

  it('applies an override only while a session is live, and is away with none', async () => {
    await ping('bob', 'available', 'laptop', 1);
    await setOverride(database.db, 'bob', { status: 'busy', expires: null });
    expect(await viewed('bob')).toBe('busy');
    await setOverride(database.db, 'bob', { status: 'away', expires: null });
    expect(await viewed('bob')).toBe('away');
    await setOverride(database.db, 'bob', { status: 'busy', expires: null });
    await sleep(1_200);
    expect(await viewed('bob')).toBe('away');
    await sweepAway(database.db);
    expect((await log('bob')).map((row) => row.status)).toEqual([
      'available',
      'busy',
      'away',
      'busy',
      'away',
    ]);
    expect(await totalsAndViews()).toEqual([
      { totals: expect.anything(), views: expect.anything() },
    ]);
    const [{ totals, views }] = (await totalsAndViews()) as [{ totals: unknown; views: unknown }];
    expect(totals).toEqual(views);
  });

  it('lets each device lapse on its own timeout, announced at its real time', async () => {
    await ping('cat', 'busy', 'phone', 1);
    await ping('cat', 'available', 'laptop', 60);
    const pinged = (await readUserState(database.db, 'cat'))?.time ?? 0;
    await sleep(1_300);
    expect(await viewed('cat')).toBe('available');
    expect(await sweepAway(database.db)).toBe(1);
    expect(await sweepAway(database.db)).toBe(0);
    const changes = await rows(sql<{ status: string; at: number }>`
      select status, extract(epoch from changed_at)::float8 as at from presently.status_changes
      where user_id = 'cat' order by position`);
    expect(changes.map((row) => row.status)).toEqual(['busy', 'available']);
    // The phone's last ping plus its timeout, not when the sweep noticed.
    expect(Math.abs((changes[1]?.at ?? 0) - (pinged + 1))).toBeLessThan(1.1);
    expect((await readUserState(database.db, 'cat'))?.sessions?.map((s) => s.session)).toEqual([
      'laptop',
    ]);
    // `time` is the latest ping of any session, even one that has ended.
    expect((await readUserState(database.db, 'cat'))?.time).toBe(pinged);
  });

  it('keeps an expired override from coming back: it ends while no session is live', async () => {
    await ping('dan', 'available', 'phone', 1);
    await setOverride(database.db, 'dan', { status: 'busy', expires: inSeconds(2) });
    expect(await viewed('dan')).toBe('busy');
    await sleep(1_200);
    await sweepAway(database.db);
    expect(await viewed('dan')).toBe('away');
    await sleep(1_000);
    await sweepAway(database.db);
    expect((await readUserState(database.db, 'dan'))?.override).toBeUndefined();
    await ping('dan', 'available', 'phone');
    expect(await viewed('dan')).toBe('available');
    expect((await log('dan')).map((row) => row.status)).toEqual([
      'available',
      'busy',
      'away',
      'available',
    ]);
  });
});

describe('ending sessions', () => {
  it('makes the user away at once when no other session is live', async () => {
    await ping('eve', 'busy');
    await ping('eve', 'available', 'tablet');
    await endSession(database.db, 'eve', undefined);
    expect(await viewed('eve')).toBe('available');
    await endSession(database.db, 'eve', 'tablet');
    expect(await viewed('eve')).toBe('away');
    await expect(endSession(database.db, 'eve', 'tablet')).rejects.toMatchObject({
      code: 'session_not_found',
    });
    await expect(endSession(database.db, 'nobody', 'tablet')).rejects.toMatchObject({
      code: 'user_not_found',
    });
    expect((await log('eve')).map((row) => row.status)).toEqual(['busy', 'available', 'away']);
  });
});

describe('messages', () => {
  it('are logged when set and cleared, and shown only while set', async () => {
    await ping('fay', 'available');
    await setMessage(database.db, 'fay', { text: 'lunch', expires: inSeconds(1) });
    expect((await readUserState(database.db, 'fay'))?.message).toBe('lunch');
    await sleep(1_200);
    expect((await readUserState(database.db, 'fay'))?.message).toBeUndefined();
    expect(await sweepAway(database.db)).toBe(1);
    await setMessage(database.db, 'fay', { text: 'back', expires: null });
    await setMessage(database.db, 'fay', null);
    expect(await log('fay')).toEqual([
      { status: 'available', previous: null, message: null },
      { status: 'available', previous: 'available', message: 'lunch' },
      { status: 'available', previous: 'available', message: null },
      { status: 'available', previous: 'available', message: 'back' },
      { status: 'available', previous: 'available', message: null },
    ]);
  });
});

describe('many sessions of one user at once', () => {
  it('loses no update and never deadlocks, and the counts stay the views', async () => {
    const writers = Array.from({ length: 8 }, () => createPingWriter({ db: database.db }));
    const last = new Map<string, Ping['status']>();
    for (let round = 0; round < 10; round++) {
      const pings = writers.flatMap((_, w) =>
        ['gus', 'hal'].map((id) => {
          const status: Ping['status'] = (round + w) % 3 === 0 ? 'busy' : 'available';
          last.set(`${id}/${w}`, status);
          return { id, status, session: w === 0 ? undefined : `device-${w}` };
        }),
      );
      await Promise.all(
        pings.map((p, i) =>
          (writers[i % writers.length] as ReturnType<typeof createPingWriter>).record(p),
        ),
      );
    }
    for (const id of ['gus', 'hal']) {
      const expected = [...last].some(
        ([key, status]) => key.startsWith(`${id}/`) && status === 'busy',
      )
        ? 'busy'
        : 'available';
      expect(await viewed(id)).toBe(expected);
      const logged = await log(id);
      expect(logged.at(-1)?.status).toBe(expected);
      expect((await readUserState(database.db, id))?.sessions).toHaveLength(8);
    }
    const [{ totals, views }] = (await totalsAndViews()) as [{ totals: unknown; views: unknown }];
    expect(totals).toEqual(views);
  });
});

describe('reports', () => {
  it('count devices per user and day, and seconds of do-not-disturb', async () => {
    await ping('ivy', 'available');
    await ping('ivy', 'available', 'phone');
    await ping('ivy', 'busy', 'laptop');
    await setOverride(database.db, 'ivy', { status: 'busy', expires: null });
    await sleep(1_100);
    await setOverride(database.db, 'ivy', null);
    const devices = await rows(sql<{ devices: number }>`
      select devices::int from reporting.devices(now() - interval '1 day', now() + interval '1 day')
      where user_id = 'ivy'`);
    expect(devices).toEqual([{ devices: 3 }]);
    const dnd = await rows(sql<{ seconds: number }>`
      select seconds from reporting.do_not_disturb(now() - interval '1 day', now() + interval '1 day')
      where user_id = 'ivy'`);
    expect(dnd).toHaveLength(1);
    expect(dnd[0]?.seconds).toBeGreaterThan(0.9);
  });
});
