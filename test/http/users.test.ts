import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';

const database = useTestDatabase();
const app = () => testApp(database.db);
const ping = (body: unknown) => request(app(), 'POST', '/users/ping', { body });

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
});

describe('POST /users/ping', () => {
  it('stores the ping and answers the counts that include it', async () => {
    expect(await ping({ id: 'ann', status: 'available' })).toMatchObject({
      status: 200,
      body: { data: { available: 1, busy: 0, away: 0 } },
    });
    expect((await ping({ id: 'bob', status: 'busy' })).body).toEqual({
      data: { available: 1, busy: 1, away: 0 },
    });
    const rows = await presenceRows(database.db);
    expect(rows.map((row) => [row.user_id, row.status])).toEqual([
      ['ann', 'available'],
      ['bob', 'busy'],
    ]);
  });

  it('answers JSON', async () => {
    const answer = await ping({ id: 1, status: 'busy' });
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('treats 1 and "1" as the same user, listed as "1"', async () => {
    await ping({ id: 1, status: 'available' });
    const answer = await ping({ id: '1', status: 'busy' });
    expect(answer.body).toEqual({ data: { available: 0, busy: 1, away: 0 } });
    const list = await request(app(), 'GET', '/users/list/all');
    expect(list.body.data).toEqual([{ user: '1', status: 'busy', time: expect.any(Number) }]);
  });

  it('updates the status and the time of a user who pings again', async () => {
    await sql`insert into presently.presence values ('ann', 'busy', now() - interval '10 seconds')`.execute(
      database.db,
    );
    const before = (await request(app(), 'GET', '/users/list/all')).body.data[0].time;
    await ping({ id: 'ann', status: 'available' });
    const [after] = (await request(app(), 'GET', '/users/list/all')).body.data;
    expect(after.status).toBe('available');
    expect(after.time).toBeGreaterThanOrEqual(before + 9);
  });

  it('takes the body as JSON whatever the content type says', async () => {
    const answer = await request(app(), 'POST', '/users/ping', {
      raw: '{"id": "form", "status": "busy"}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(answer.status).toBe(200);
  });

  it('accepts ids of exactly 1 and 128 characters, counted as characters', async () => {
    expect((await ping({ id: 'x', status: 'busy' })).status).toBe(200);
    expect((await ping({ id: 'é'.repeat(128), status: 'busy' })).status).toBe(200);
    expect((await ping({ id: '😀'.repeat(128), status: 'busy' })).status).toBe(200);
    expect((await ping({ id: Number.MAX_SAFE_INTEGER, status: 'busy' })).status).toBe(200);
    expect((await ping({ id: -5, status: 'busy' })).status).toBe(200);
  });

  it('stores SQL-looking ids as plain text', async () => {
    const id = "1'); drop table presently.presence; --";
    expect((await ping({ id, status: 'busy' })).status).toBe(200);
    expect((await presenceRows(database.db)).map((row) => row.user_id)).toEqual([id]);
  });

  it('accepts a body of exactly 16 KiB and refuses one byte more, with or without Content-Length', async () => {
    // With a Content-Length the length is judged from the header, without it as the body streams.
    const body = (bytes: number) => {
      const prefix = '{"id":"big","status":"busy","pad":"';
      return `${prefix}${'a'.repeat(bytes - prefix.length - 2)}"}`;
    };
    const cases: [number, number][] = [
      [16 * 1024, 200],
      [16 * 1024 + 1, 413],
    ];
    for (const [bytes, status] of cases) {
      const raw = body(bytes);
      expect(Buffer.byteLength(raw)).toBe(bytes);
      const withLength: Record<string, string> = { 'content-length': String(bytes) };
      for (const headers of [{}, withLength]) {
        const answer = await request(app(), 'POST', '/users/ping', { raw, headers });
        expect(answer.status, JSON.stringify(headers)).toBe(status);
      }
    }
  });
});

describe('bad pings are refused with 400 and change nothing', () => {
  const cases: [string, string, string][] = [
    ['invalid JSON', '{"id": 1,', 'invalid_json'],
    ['an empty body', '', 'invalid_json'],
    ['an array', '[{"id": 1, "status": "busy"}]', 'invalid_body'],
    ['a string', '"hello"', 'invalid_body'],
    ['null', 'null', 'invalid_body'],
    ['an empty object', '{}', 'invalid_body'],
    ['a missing id', '{"status": "busy"}', 'invalid_id'],
    ['a missing status', '{"id": 1}', 'invalid_status'],
    ['an empty id', '{"id": "", "status": "busy"}', 'invalid_id'],
    ['a 129-character id', `{"id": "${'x'.repeat(129)}", "status": "busy"}`, 'invalid_id'],
    ['a fractional id', '{"id": 1.5, "status": "busy"}', 'invalid_id'],
    ['an unsafe integer id', '{"id": 12345678901234567890, "status": "busy"}', 'invalid_id'],
    ['a boolean id', '{"id": true, "status": "busy"}', 'invalid_id'],
    ['a null id', '{"id": null, "status": "busy"}', 'invalid_id'],
    ['an object id', '{"id": {"a": 1}, "status": "busy"}', 'invalid_id'],
    ['an array id', '{"id": [1], "status": "busy"}', 'invalid_id'],
    ['a NUL in the id', '{"id": "a\\u0000b", "status": "busy"}', 'invalid_id'],
    ['a newline in the id', '{"id": "a\\nb", "status": "busy"}', 'invalid_id'],
    ['a C1 control (U+0080) in the id', '{"id": "a\\u0080b", "status": "busy"}', 'invalid_id'],
    ['a C1 control (U+0085) in the id', '{"id": "a\u0085b", "status": "busy"}', 'invalid_id'],
    ['a C1 control (U+009F) in the id', '{"id": "a\\u009fb", "status": "busy"}', 'invalid_id'],
    ['a lone surrogate in the id', '{"id": "a\\ud800", "status": "busy"}', 'invalid_id'],
    [
      'a right-to-left override in the id',
      '{"id": "ad\\u202emin", "status": "busy"}',
      'invalid_id',
    ],
    ['an id of separators', '{"id": "\\u2028\\u202e", "status": "busy"}', 'invalid_id'],
    ['an id of one space', '{"id": " ", "status": "busy"}', 'invalid_id'],
    ['an id of a soft hyphen', '{"id": "\\u00ad", "status": "busy"}', 'invalid_id'],
    ['status away', '{"id": 1, "status": "away"}', 'invalid_status'],
    ['status all', '{"id": 1, "status": "all"}', 'invalid_status'],
    ['an unknown status', '{"id": 1, "status": "sleeping"}', 'invalid_status'],
    ['a status in capitals', '{"id": 1, "status": "BUSY"}', 'invalid_status'],
    ['a numeric status', '{"id": 1, "status": 1}', 'invalid_status'],
    ['both wrong', '{"id": false, "status": 1}', 'invalid_body'],
  ];

  it.each(cases)('%s', async (_name, raw, code) => {
    await ping({ id: 'existing', status: 'busy' });
    const before = await presenceRows(database.db);
    const answer = await request(app(), 'POST', '/users/ping', { raw });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe(code);
    expect(answer.body.error.message).toEqual(expect.any(String));
    expect(await presenceRows(database.db)).toEqual(before);
  });

  it('says plainly why integer ids beyond 2^53 are refused', async () => {
    const answer = await request(app(), 'POST', '/users/ping', {
      raw: '{"id": 9007199254740992, "status": "busy"}',
    });
    expect(answer.body.error).toEqual({
      code: 'invalid_id',
      message:
        'integer ids must be between -9007199254740991 and 9007199254740991; send larger ones as strings',
    });
  });

  it('refuses a body over 16 KiB with 413, with or without Content-Length', async () => {
    const raw = JSON.stringify({ id: 'huge', status: 'busy', pad: 'a'.repeat(16 * 1024) });
    const withLength: Record<string, string> = { 'content-length': String(Buffer.byteLength(raw)) };
    for (const headers of [{}, withLength]) {
      const answer = await request(app(), 'POST', '/users/ping', { raw, headers });
      expect(answer.status).toBe(413);
      expect(answer.body.error.code).toBe('payload_too_large');
    }
    expect(await presenceRows(database.db)).toEqual([]);
  });
});

describe('GET /users/list/{status}', () => {
  beforeEach(async () => {
    await sql`
      insert into presently.presence (user_id, status, last_ping) values
        ('1', 'busy', to_timestamp(1676735121)),
        ('2', 'available', now() - interval '10 seconds'),
        ('3', 'busy', now()),
        ('4', 'available', now())
    `.execute(database.db);
  });

  it('lists every user with status and Unix time, ordered by id', async () => {
    const answer = await request(app(), 'GET', '/users/list/all');
    expect(answer.status).toBe(200);
    const now = Date.now() / 1000;
    const rows = answer.body.data as { user: string; status: string; time: number }[];
    expect(rows.map(({ user, status }) => [user, status])).toEqual([
      ['1', 'away'],
      ['2', 'available'],
      ['3', 'busy'],
      ['4', 'available'],
    ]);
    expect(rows[0]?.time).toBe(1676735121);
    // Times are whole seconds: an age reads up to a second more than it is.
    const [age2, age3, age4] = rows.slice(1).map((row) => now - row.time);
    expect(age2).toBeGreaterThanOrEqual(10);
    expect(age2).toBeLessThan(13);
    for (const age of [age3, age4]) {
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(3);
    }
  });

  it.each([
    ['available', ['2', '4']],
    ['busy', ['3']],
    ['away', ['1']],
  ])('lists the %s users only', async (status, users) => {
    const answer = await request(app(), 'GET', `/users/list/${status}`);
    expect(answer.body.data.map((row: { user: string }) => row.user)).toEqual(users);
    expect(answer.body.data.every((row: { status: string }) => row.status === status)).toBe(true);
  });

  it('answers an empty list when nobody is there', async () => {
    await sql`truncate presently.presence`.execute(database.db);
    expect((await request(app(), 'GET', '/users/list/all')).body).toEqual({ data: [] });
  });

  it.each(['online', 'ALL', 'Busy', '%20', 'available;drop'])(
    'refuses status %j with 400',
    async (status) => {
      const answer = await request(app(), 'GET', `/users/list/${status}`);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_status');
    },
  );
});

describe('GET /users/count', () => {
  it('always answers all three counts', async () => {
    expect((await request(app(), 'GET', '/users/count')).body).toEqual({
      data: { available: 0, busy: 0, away: 0 },
    });
    await sql`
      insert into presently.presence (user_id, status, last_ping) values
        ('a', 'busy', now() - interval '1 hour'),
        ('b', 'available', now() - interval '1 hour'),
        ('c', 'busy', now())
    `.execute(database.db);
    expect((await request(app(), 'GET', '/users/count')).body).toEqual({
      data: { available: 0, busy: 1, away: 2 },
    });
  });
});

describe('a ping body that is not UTF-8', () => {
  it('is refused as invalid JSON, not stored with replacement characters', async () => {
    const app = testApp(database.db);
    const bytes = Buffer.concat([
      Buffer.from('{"id":"a'),
      Buffer.from([0xff]),
      Buffer.from('b","status":"busy"}'),
    ]);
    const answer = await app.request(`/users/ping?key=${KEYS.access}`, {
      method: 'POST',
      body: bytes,
    });
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    expect(await presenceRows(database.db)).toEqual([]);
  });
});
