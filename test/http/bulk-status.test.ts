import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

// POST /users/status: the statuses of up to 1,000 named users in one request.

const database = useTestDatabase();
const app = () => testApp(database.db);
const statuses = (body: unknown) => request(app(), 'POST', '/users/status', { body });

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
  await sql`
    insert into presently.presence (user_id, status, last_ping) values
      ('1', 'busy', to_timestamp(1676735121)),
      ('2', 'available', now()),
      ('ann', 'busy', now()),
      ('zoe', 'available', now())
  `.execute(database.db);
});

describe('POST /users/status', () => {
  it('answers the known users among those asked, ordered by id as in the list', async () => {
    const answer = await statuses({ users: ['zoe', 'nobody', 1, 'ann', 'ghost'] });
    expect(answer.status).toBe(200);
    const list = (await request(app(), 'GET', '/users/list/all')).body.data;
    const byId = new Map(list.map((row: { user: string }) => [row.user, row]));
    expect(answer.body).toEqual({ data: ['1', 'ann', 'zoe'].map((id) => byId.get(id)) });
    expect(answer.body.data[0]).toEqual({ user: '1', status: 'away', time: 1676735121 });
  });

  it('answers an empty list when none of them is known', async () => {
    expect((await statuses({ users: ['nobody'] })).body).toEqual({ data: [] });
  });

  it('names each user once, however often it is asked for (1 and "1" are the same)', async () => {
    const answer = await statuses({ users: [1, '1', 'ann', 'ann'] });
    expect(answer.body.data.map((row: { user: string }) => row.user)).toEqual(['1', 'ann']);
  });

  it('takes 1,000 ids of 128 characters, past the 16 KiB of a ping, with or without a length', async () => {
    const ids = Array.from(
      { length: 1_000 },
      (_, i) => `${'😀'.repeat(128 - String(i).length)}${i}`,
    );
    ids[999] = 'ann';
    const raw = JSON.stringify({ users: ids });
    expect(Buffer.byteLength(raw)).toBeGreaterThan(500_000);
    const length = { 'content-length': String(Buffer.byteLength(raw)) };
    for (const headers of [{}, length]) {
      const answer = await request(app(), 'POST', '/users/status', { raw, headers });
      expect(answer.status).toBe(200);
      expect(answer.body.data.map((row: { user: string }) => row.user)).toEqual(['ann']);
    }
  });

  it('refuses a body over 1 MiB with 413, with or without a length', async () => {
    const raw = JSON.stringify({ users: ['ann'], pad: 'a'.repeat(1024 * 1024) });
    const length = { 'content-length': String(Buffer.byteLength(raw)) };
    for (const headers of [{}, length]) {
      const answer = await request(app(), 'POST', '/users/status', { raw, headers });
      expect(answer.status).toBe(413);
      expect(answer.body.error.code).toBe('payload_too_large');
    }
  });

  it('is only POST', async () => {
    const answer = await request(app(), 'GET', '/users/status');
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('POST');
  });
});

describe('bad bulk reads are refused with 400 and change nothing', () => {
  const many = (n: number) => JSON.stringify({ users: Array.from({ length: n }, (_, i) => i) });
  const cases: [string, string, string, RegExp?][] = [
    ['invalid JSON', '{"users": [', 'invalid_json'],
    ['an empty body', '', 'invalid_json'],
    ['no users', '{}', 'invalid_body'],
    ['users null', '{"users": null}', 'invalid_body'],
    ['users a string', '{"users": "ann"}', 'invalid_body'],
    ['users an object', '{"users": {"0": "ann"}}', 'invalid_body'],
    ['a bare array', '["ann"]', 'invalid_body'],
    ['null', 'null', 'invalid_body'],
    ['an empty list', '{"users": []}', 'invalid_body', /1 to 1000/],
    ['1,001 ids', many(1_001), 'invalid_body', /1 to 1000/],
    ['an empty id', '{"users": ["ann", ""]}', 'invalid_id', /^users\[1\]: /],
    ['a null id', '{"users": [null]}', 'invalid_id', /^users\[0\]: /],
    ['a 129-character id', `{"users": [1, 2, "${'x'.repeat(129)}"]}`, 'invalid_id', /users\[2\]/],
    ['a fractional id', '{"users": [1.5]}', 'invalid_id', /users\[0\]/],
    ['an unsafe integer', '{"users": [1, 9007199254740992]}', 'invalid_id', /users\[1\]/],
    ['a zero-width id', '{"users": ["a\\u200bb"]}', 'invalid_id', /users\[0\]/],
    ['a blank id', '{"users": ["ann", "bob", " "]}', 'invalid_id', /users\[2\]/],
    ['two bad ids: the first named', '{"users": ["ok", true, ""]}', 'invalid_id', /^users\[1\]/],
  ];

  it.each(cases)('%s', async (_name, raw, code, message) => {
    const before = await presenceRows(database.db);
    const answer = await request(app(), 'POST', '/users/status', { raw });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe(code);
    if (message) expect(answer.body.error.message).toMatch(message);
    expect(await presenceRows(database.db)).toEqual(before);
  });
});
