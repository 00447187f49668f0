import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

// The routes of sessions, overrides and messages, and the new fields of a ping.

const database = useTestDatabase();
const app = () => testApp(database.db);
const ping = (body: unknown) => request(app(), 'POST', '/users/ping', { body });
const later = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
});

describe('sessions over REST', () => {
  it("merges a user's sessions and answers them with the status", async () => {
    expect(
      (await ping({ id: 'ann', status: 'busy', session: 'phone', timeout: 30.5 })).status,
    ).toBe(200);
    await ping({ id: 'ann', status: 'available', session: 'laptop' });
    const answer = await request(app(), 'GET', '/users/ann/status');
    expect(answer.body.data).toEqual({
      user: 'ann',
      status: 'busy',
      time: expect.any(Number),
      sessions: [
        { session: 'laptop', status: 'available', time: expect.any(Number) },
        { session: 'phone', status: 'busy', time: expect.any(Number) },
      ],
    });
    const ended = await request(app(), 'DELETE', '/users/ann/sessions/phone');
    expect(ended.status).toBe(200);
    expect(ended.body.data.status).toBe('available');
    expect((await request(app(), 'DELETE', '/users/ann/sessions/laptop')).body.data.status).toBe(
      'away',
    );
    expect(await request(app(), 'DELETE', '/users/ann/sessions/laptop')).toMatchObject({
      status: 404,
      body: { error: { code: 'session_not_found' } },
    });
    expect(await request(app(), 'DELETE', '/users/nobody/sessions/default')).toMatchObject({
      status: 404,
      body: { error: { code: 'user_not_found' } },
    });
  });

  it('ends the default session by the name default', async () => {
    await ping({ id: 'bob', status: 'busy' });
    const ended = await request(app(), 'DELETE', '/users/bob/sessions/default');
    expect(ended.body.data).toMatchObject({ user: 'bob', status: 'away' });
  });

  it('sets and ends an override and a message, shown in lists only while set', async () => {
    await ping({ id: 'cat', status: 'available' });
    const override = await request(app(), 'PUT', '/users/cat/override', {
      body: { status: 'busy', expires: later(1) },
    });
    expect(override.body.data).toMatchObject({ status: 'busy', override: { status: 'busy' } });
    const message = await request(app(), 'PUT', '/users/cat/message', {
      body: { text: 'in a meeting', expires: null },
    });
    expect(message.body.data).toMatchObject({ message: 'in a meeting', message_expires: null });
    expect((await request(app(), 'GET', '/users/list/all')).body.data).toEqual([
      { user: 'cat', status: 'busy', time: expect.any(Number), message: 'in a meeting' },
    ]);
    await request(app(), 'DELETE', '/users/cat/override');
    await request(app(), 'DELETE', '/users/cat/message');
    expect((await request(app(), 'GET', '/users/list/all')).body.data).toEqual([
      { user: 'cat', status: 'available', time: expect.any(Number) },
    ]);
    for (const path of ['/users/nobody/override', '/users/nobody/message']) {
      const body = path.endsWith('override') ? { status: 'away' } : { text: 'hi' };
      expect(await request(app(), 'PUT', path, { body })).toMatchObject({
        status: 404,
        body: { error: { code: 'user_not_found' } },
      });
    }
  });
});

describe('bad input', () => {
  it.each([
    [{ id: 'u', status: 'busy', session: '' }, 'invalid_session'],
    [{ id: 'u', status: 'busy', session: 'x'.repeat(129) }, 'invalid_session'],
    [{ id: 'u', status: 'busy', session: 'a\u0007b' }, 'invalid_session'],
    [{ id: 'u', status: 'busy', session: 7 }, 'invalid_session'],
    [{ id: 'u', status: 'busy', timeout: 0.5 }, 'invalid_timeout'],
    [{ id: 'u', status: 'busy', timeout: 86_401 }, 'invalid_timeout'],
    [{ id: 'u', status: 'busy', timeout: '10' }, 'invalid_timeout'],
  ])('refuses the ping %j with %s, changing nothing', async (body, code) => {
    await ping({ id: 'kept', status: 'busy' });
    const before = await presenceRows(database.db);
    expect(await ping(body)).toMatchObject({ status: 400, body: { error: { code } } });
    expect(await presenceRows(database.db)).toEqual(before);
  });

  it.each([
    ['/users/u/override', { status: 'available' }, 'invalid_override'],
    ['/users/u/override', { status: 'busy', expires: '2020-01-01T00:00:00Z' }, 'invalid_expires'],
    ['/users/u/override', { status: 'busy', expires: later(24 * 367) }, 'invalid_expires'],
    ['/users/u/override', { status: 'busy', expires: 'tomorrow' }, 'invalid_expires'],
    ['/users/u/message', { text: '' }, 'invalid_message'],
    ['/users/u/message', { text: 'x'.repeat(101) }, 'invalid_message'],
    ['/users/u/message', { text: 'hi', expires: '2020-01-01T00:00:00Z' }, 'invalid_expires'],
  ])('refuses PUT %s %j with %s, changing nothing', async (path, body, code) => {
    await ping({ id: 'u', status: 'busy' });
    const before = await presenceRows(database.db);
    expect(await request(app(), 'PUT', path, { body })).toMatchObject({
      status: 400,
      body: { error: { code } },
    });
    expect(await presenceRows(database.db)).toEqual(before);
  });

  it('refuses a session path that is not a session name', async () => {
    await ping({ id: 'u', status: 'busy' });
    expect(await request(app(), 'DELETE', `/users/u/sessions/${'x'.repeat(129)}`)).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_session' } },
    });
  });
});
