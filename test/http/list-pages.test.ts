import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { listUsers } from '../../src/presence/repository.js';
import { useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

// GET /users/list/{status}?limit=N: the list in pages, by id, with an opaque cursor.

const database = useTestDatabase();
const app = () => testApp(database.db);
const get = (path: string) => request(app(), 'GET', path);

interface Row {
  user: string;
  status: string;
  time: number;
}

/** Every page of a list, following `next` until it is null. */
async function pageThrough(status: string, limit: number): Promise<{ rows: Row[]; pages: number }> {
  const rows: Row[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const after: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const answer = await get(`/users/list/${status}?limit=${limit}${after}`);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(['data', 'next']);
    expect(answer.body.data.length).toBeLessThanOrEqual(limit);
    rows.push(...answer.body.data);
    cursor = answer.body.next;
    pages += 1;
  } while (cursor !== null);
  return { rows, pages };
}

/** `count` users with ids of every kind, statuses mixed, some away. */
async function seed(count: number) {
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    select (array['', 'é', '😀', 'Z', 'a b', '"', '\\'])[g % 7 + 1] || g::text,
           case when g % 3 = 0 then 'busy' else 'available' end,
           case when g % 5 = 0 then now() - interval '2 hours' else now() end
    from generate_series(1, ${count}::int) g
  `.execute(database.db);
}

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
});

describe('GET /users/list/{status}?limit=', () => {
  it('pages through the same list, in the same order, as the unpaged read', async () => {
    await seed(1_003);
    const whole = await listUsers(database.db, 'all');
    for (const limit of [1, 7, 1_000, 1_003, 10_000]) {
      const { rows, pages } = await pageThrough('all', limit);
      expect(rows).toEqual(whole);
      expect(pages).toBe(Math.max(1, Math.ceil(1_003 / limit)));
    }
  });

  it.each(['available', 'busy', 'away'] as const)('pages the %s users only', async (status) => {
    await seed(500);
    const { rows } = await pageThrough(status, 13);
    expect(rows).toEqual(await listUsers(database.db, status));
    expect(rows.length).toBeGreaterThan(0);
  });

  it('answers one empty page, next null, when nobody is there', async () => {
    expect((await get('/users/list/all?limit=10')).body).toEqual({ data: [], next: null });
  });

  it('gives the next page as a Link header too, without the key', async () => {
    await seed(3);
    const answer = await get('/users/list/all?limit=2');
    const next = answer.body.next;
    expect(answer.headers.get('link')).toBe(`</users/list/all?limit=2&cursor=${next}>; rel="next"`);
    const last = await get(`/users/list/all?limit=2&cursor=${next}`);
    expect(last.body.next).toBeNull();
    expect(last.headers.get('link')).toBeNull();
  });

  it('lists every user exactly once while pings add and update users', async () => {
    await seed(2_000);
    const existing = (await listUsers(database.db, 'all')).map((row) => row.user);
    let paging = true;
    let pinged = 0;
    // Four clients ping throughout: new users land before, among and after the pages, and
    // existing ones change status.
    const pinger = async (client: number) => {
      for (let i = client; paging; i += 4) {
        const id = i % 2 === 0 ? `new-${['!', 'M', 'zz'][i % 3]}${i}` : existing[(i * 37) % 2_000];
        const status = i % 8 < 4 ? 'busy' : 'available';
        const answer = await request(app(), 'POST', '/users/ping', { body: { id, status } });
        expect(answer.status).toBe(200);
        pinged += 1;
      }
    };
    const pingers = Promise.all([0, 1, 2, 3].map(pinger));
    const { rows, pages } = await pageThrough('all', 50).finally(() => {
      paging = false;
    });
    await pingers;
    expect(pages).toBeGreaterThanOrEqual(40);
    expect(pinged).toBeGreaterThan(10);
    const ids = rows.map((row) => row.user);
    expect(new Set(ids).size).toBe(ids.length);
    const listed = new Set(ids);
    expect(existing.filter((id) => !listed.has(id))).toEqual([]);
    const sorted = (await listUsers(database.db, 'all')).map((row) => row.user);
    expect(ids).toEqual(sorted.filter((id) => listed.has(id)));
  });
});

describe('bad pages are refused with 400', () => {
  it.each(['0', '10001', '-1', '1.5', 'ten', '', ' 5', '1e3', '99999999'])(
    'limit=%j',
    async (limit) => {
      const answer = await get(`/users/list/all?limit=${encodeURIComponent(limit)}`);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_limit');
    },
  );

  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it.each([
    ['garbage', 'not a cursor!'],
    ['base64 of something else', Buffer.from('hello').toString('base64url')],
    ['a history cursor (another shape)', encode({ after: 5 })],
    ['a report cursor (another shape)', encode({ day: '2026-11-26', user: 'a' })],
    ['an empty id', encode({ after: '' })],
    ['an id too long', encode({ after: 'x'.repeat(129) })],
    ['extra fields', encode({ after: 'a', limit: 5 })],
    ['empty', ''],
  ])('cursor: %s', async (_name, cursor) => {
    const answer = await get(`/users/list/all?limit=5&cursor=${encodeURIComponent(cursor)}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_cursor');
  });

  it('refuses a tampered cursor', async () => {
    await seed(10);
    const { next } = (await get('/users/list/all?limit=3')).body;
    for (const tampered of [
      next.slice(0, -2),
      `${next.slice(0, 4)}!${next.slice(5)}`,
      `x${next}`,
    ]) {
      const answer = await get(`/users/list/all?limit=3&cursor=${encodeURIComponent(tampered)}`);
      expect(answer.status, tampered).toBe(400);
      expect(answer.body.error.code).toBe('invalid_cursor');
    }
  });

  it('refuses a cursor without a limit', async () => {
    await seed(10);
    const { next } = (await get('/users/list/all?limit=3')).body;
    const answer = await get(`/users/list/all?cursor=${next}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toEqual({
      code: 'invalid_cursor',
      message: expect.stringMatching(/limit/),
    });
  });
});

describe('GET /users/list/{status}?prefix=: a search by id prefix', () => {
  /** Everyone whose id starts with the prefix, from the whole list: what a search must find. */
  const startingWith = async (status: 'all' | 'busy', prefix: string) =>
    (await listUsers(database.db, status)).filter((row) => row.user.startsWith(prefix));

  it('pages through exactly the users whose id starts with it, by id, status filter and all', async () => {
    await seed(700);
    await sql`
      insert into presently.presence (user_id, status, last_ping)
      values ('a', 'busy', now()), ('a\u{10FFFF}x', 'busy', now()), ('b', 'busy', now()),
             ('\u{D7FF}1', 'busy', now()), ('\u{E000}1', 'busy', now())
    `.execute(database.db);
    for (const prefix of [
      '1',
      '12',
      'é1',
      '😀',
      'a',
      'a b',
      'Z9',
      '"',
      '\\',
      '\u{D7FF}',
      'nobody',
    ]) {
      const expected = await startingWith('all', prefix);
      const rows: Row[] = [];
      let next: string | null = null;
      do {
        const after: string = next === null ? '' : `&cursor=${encodeURIComponent(next)}`;
        const answer = await get(
          `/users/list/all?limit=7&prefix=${encodeURIComponent(prefix)}${after}`,
        );
        expect(answer.status, JSON.stringify(answer.body)).toBe(200);
        rows.push(...answer.body.data);
        next = answer.body.next;
      } while (next !== null);
      expect(rows, prefix).toEqual(expected);
    }
    const busy = await get(`/users/list/busy?limit=1000&prefix=${encodeURIComponent('é')}`);
    expect(busy.body.data).toEqual(await startingWith('busy', 'é'));
    expect(busy.body.data.length).toBeGreaterThan(0);
    // Without limit: the whole list, streamed, of those users.
    const whole = await get('/users/list/all?prefix=1');
    expect(whole.body.data).toEqual(await startingWith('all', '1'));
  });

  it('is a range scan of the primary key, not a pattern over the table', async () => {
    await seed(2_000);
    await sql`analyze presently.presence`.execute(database.db);
    const { rows } = await sql<{ 'QUERY PLAN': string }>`
      explain select user_id from presently.user_status
      where user_id >= 'é1' and user_id < 'é2' order by user_id limit 51
    `.execute(database.db);
    const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/Index (Only )?Scan using presence_pkey/);
    expect(plan).toContain('Index Cond');
  });

  it.each([
    ['an empty prefix', ''],
    ['a control character', 'a\u0001'],
    ['a zero-width space', 'a\u200b'],
    ['129 characters', 'x'.repeat(129)],
  ])('refuses %s with 400 invalid_prefix', async (_name, prefix) => {
    const answer = await get(`/users/list/all?limit=10&prefix=${encodeURIComponent(prefix)}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_prefix');
    expect(answer.body.error.message).toMatch(/^prefix must be 1 to 128 characters/);
  });
});
