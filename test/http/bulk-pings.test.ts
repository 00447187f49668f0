import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

// POST /users/pings (CONTRACT "Bulk pings and cores"): up to 1,000 pings in one request, through
// the group commit, all or nothing.

const database = useTestDatabase();
const app = () => testApp(database.db);
const bulk = (body: unknown) => request(app(), 'POST', '/users/pings', { body });
const stored = async () =>
  (await presenceRows(database.db)).map((row) => [row.user_id, row.status]);

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
});

describe('POST /users/pings', () => {
  it('stores every ping and answers the counts that include them all', async () => {
    const answer = await bulk({
      pings: [
        { id: 'ann', status: 'available' },
        { id: 2, status: 'busy' },
        { id: 'zoe', status: 'busy' },
      ],
    });
    expect(answer).toMatchObject({
      status: 200,
      body: { data: { available: 1, busy: 2, away: 0 } },
    });
    expect(await stored()).toEqual([
      ['2', 'busy'],
      ['ann', 'available'],
      ['zoe', 'busy'],
    ]);
  });

  it('keeps the last ping of a user, in the request (1 and "1" alike) and across requests', async () => {
    const answer = await bulk({
      pings: [
        { id: 1, status: 'busy' },
        { id: 'b', status: 'available' },
        { id: '1', status: 'available' },
        { id: 'b', status: 'busy' },
      ],
    });
    expect(answer.body).toEqual({ data: { available: 1, busy: 1, away: 0 } });
    expect(await stored()).toEqual([
      ['1', 'available'],
      ['b', 'busy'],
    ]);
    await bulk({ pings: [{ id: 'b', status: 'available' }] });
    expect(await stored()).toEqual([
      ['1', 'available'],
      ['b', 'available'],
    ]);
  });

  it('takes 1,000 pings of 128-character ids, past the 16 KiB of a ping, with or without a length', async () => {
    const pings = Array.from({ length: 1_000 }, (_, i) => ({
      id: `${'😀'.repeat(128 - String(i).length)}${i}`,
      status: i % 2 ? 'busy' : 'available',
    }));
    const raw = JSON.stringify({ pings });
    expect(Buffer.byteLength(raw)).toBeGreaterThan(500_000);
    const length = { 'content-length': String(Buffer.byteLength(raw)) };
    for (const headers of [{}, length]) {
      const answer = await request(app(), 'POST', '/users/pings', { raw, headers });
      expect(answer).toMatchObject({ status: 200, body: { data: { available: 500, busy: 500 } } });
    }
    expect((await stored()).length).toBe(1_000);
  });

  it('refuses a body over 1 MiB with 413, with or without a length, and stores nothing', async () => {
    const raw = JSON.stringify({
      pings: [{ id: 'x', status: 'busy' }],
      pad: 'a'.repeat(1024 * 1024),
    });
    const length = { 'content-length': String(Buffer.byteLength(raw)) };
    for (const headers of [{}, length]) {
      const answer = await request(app(), 'POST', '/users/pings', { raw, headers });
      expect(answer.status).toBe(413);
      expect(answer.body.error.code).toBe('payload_too_large');
    }
    expect(await stored()).toEqual([]);
  });

  it.each([
    ['a bad id', { id: '', status: 'busy' }, 'invalid_id'],
    ['a bad status', { id: 'x', status: 'away' }, 'invalid_status'],
    ['not an object', 'x', 'invalid_body'],
  ])(
    'refuses the whole request for %s, naming its index, and stores nothing',
    async (_n, bad, code) => {
      const pings = [
        { id: 'a', status: 'busy' },
        { id: 'b', status: 'busy' },
        bad,
        { id: 'c', status: 'busy' },
        bad,
      ];
      const answer = await bulk({ pings });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe(code);
      expect(answer.body.error.message).toMatch(/^pings\[2\]: /);
      expect(await stored()).toEqual([]);
    },
  );

  it.each([
    ['an array', [{ id: 'a', status: 'busy' }]],
    ['no pings', { id: 'a', status: 'busy' }],
    ['pings not an array', { pings: { id: 'a', status: 'busy' } }],
    ['no ping at all', { pings: [] }],
    [
      'over 1,000 pings',
      { pings: Array.from({ length: 1_001 }, () => ({ id: 'a', status: 'busy' })) },
    ],
  ])('refuses %s whole (invalid_body)', async (_name, body) => {
    const answer = await bulk(body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_body');
    expect(await stored()).toEqual([]);
  });

  it('refuses invalid JSON, a missing key (401) and other methods (405)', async () => {
    expect((await request(app(), 'POST', '/users/pings', { raw: '{' })).status).toBe(400);
    const body = { pings: [{ id: 'a', status: 'busy' }] };
    expect((await request(app(), 'POST', '/users/pings', { body, key: null })).status).toBe(401);
    expect((await request(app(), 'POST', '/users/pings', { body, key: 'wrong' })).status).toBe(401);
    const get = await request(app(), 'GET', '/users/pings');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await stored()).toEqual([]);
  });
});
