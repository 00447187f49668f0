import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { bearerToken } from '../../src/edge/auth.js';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';

const database = useTestDatabase();
const app = () => testApp(database.db);
const goodPing = { id: 'u', status: 'busy' };

const userRoutes: [string, string, unknown?][] = [
  ['POST', '/users/ping', goodPing],
  ['GET', '/users/list/all'],
  ['GET', '/users/list/all?limit=5'],
  ['POST', '/users/status', { users: ['kept'] }],
  ['GET', '/users/count'],
];

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
  await sql`insert into presently.presence values ('kept', 'busy', now())`.execute(database.db);
});

describe('keys', () => {
  it.each(userRoutes)('%s %s takes the access key in the query', async (method, path, body) => {
    expect((await request(app(), method, path, { body })).status).toBe(200);
  });

  it.each(userRoutes)(
    '%s %s takes the access key as a bearer token',
    async (method, path, body) => {
      const headers = { Authorization: `Bearer ${KEYS.access}` };
      expect((await request(app(), method, path, { key: null, body, headers })).status).toBe(200);
    },
  );

  it.each(userRoutes)('%s %s takes the system key too', async (method, path, body) => {
    expect((await request(app(), method, path, { key: KEYS.system, body })).status).toBe(200);
  });

  it('takes the bearer scheme in any case', async () => {
    const headers = { Authorization: `bearer ${KEYS.access}` };
    expect((await request(app(), 'GET', '/users/count', { key: null, headers })).status).toBe(200);
  });

  const refusals: [string, { key?: string | null; headers?: Record<string, string> }][] = [
    ['no key', { key: null }],
    ['an empty key', { key: '' }],
    ['a wrong key', { key: 'wrong' }],
    ['a key with a different case', { key: KEYS.access.toUpperCase() }],
    ['a prefix of the key', { key: KEYS.access.slice(0, -1) }],
    ['the key with more after it', { key: `${KEYS.access}x` }],
    ['a wrong bearer token', { key: null, headers: { Authorization: 'Bearer wrong' } }],
    [
      'the key as Basic credentials',
      { key: null, headers: { Authorization: `Basic ${KEYS.access}` } },
    ],
    ['the key in another header', { key: null, headers: { 'X-Key': KEYS.access } }],
  ];

  for (const [method, path, body] of userRoutes) {
    it.each(refusals)(`${method} ${path} refuses %s with 401`, async (_name, options) => {
      const answer = await request(app(), method, path, { ...options, body });
      expect(answer.status).toBe(401);
      expect(answer.body.error.code).toBe('unauthorized');
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    });
  }

  it('reads no token from another six-letter scheme', () => {
    expect(bearerToken('Apikey  secret')).toBeUndefined();
    expect(bearerToken('Bearer  secret')).toBe('secret');
  });

  it('tells a client without a key how to give one, and one with a wrong key that it is wrong', async () => {
    const none = await request(app(), 'GET', '/users/count', { key: null });
    expect(none.body.error.message).toBe(
      'a key is required: ?key=... or Authorization: Bearer ...',
    );
    const wrong = await request(app(), 'GET', '/users/count', { key: 'wrong' });
    expect(wrong.body.error.message).toBe('the key is not valid for this route');
  });

  const conflicting: [string, string, Record<string, string>][] = [
    ['a right key then a wrong one', `?key=${KEYS.access}&key=wrong`, {}],
    ['a wrong key then a right one', `?key=wrong&key=${KEYS.access}`, {}],
    [
      'a right query key and a wrong bearer',
      `?key=${KEYS.access}`,
      { Authorization: 'Bearer wrong' },
    ],
    [
      'a wrong query key and a right bearer',
      '?key=wrong',
      { Authorization: `Bearer ${KEYS.access}` },
    ],
    ['an empty query key and a right bearer', '?key=', { Authorization: `Bearer ${KEYS.access}` }],
    ['an empty bearer and a right query key', `?key=${KEYS.access}`, { Authorization: 'Bearer ' }],
  ];

  it.each(conflicting)(
    'refuses %s: every key a request carries must be right',
    async (_n, query, headers) => {
      const answer = await request(app(), 'GET', `/users/count${query}`, { key: null, headers });
      expect(answer.status).toBe(401);
    },
  );

  it('takes the same right key twice, and a right key beside Basic credentials meant for a proxy', async () => {
    const twice = await request(
      app(),
      'GET',
      `/users/count?key=${KEYS.access}&key=${KEYS.system}`,
      {
        key: null,
        headers: { Authorization: `Bearer ${KEYS.access}` },
      },
    );
    expect(twice.status).toBe(200);
    const basic = await request(app(), 'GET', '/users/count', {
      headers: { Authorization: 'Basic dXNlcjpwdw==' },
    });
    expect(basic.status).toBe(200);
  });

  it('refuses the key before looking at the body: a bad body without a key is a 401', async () => {
    const answer = await request(app(), 'POST', '/users/ping', { key: 'wrong', raw: '{oops' });
    expect(answer.status).toBe(401);
  });

  it('refuses a valid ping with a wrong key and stores nothing', async () => {
    const before = await presenceRows(database.db);
    await request(app(), 'POST', '/users/ping', { key: 'wrong', body: goodPing });
    expect(await presenceRows(database.db)).toEqual(before);
  });

  it('never echoes the key back', async () => {
    const answer = await request(app(), 'GET', '/users/count', { key: 'secret-guess-123' });
    expect(JSON.stringify(answer.body)).not.toContain('secret-guess-123');
  });
});

describe('GET /database/clear', () => {
  it('needs the system key: the access key is refused and nothing is cleared', async () => {
    for (const key of [null, KEYS.access, 'wrong']) {
      const answer = await request(app(), 'GET', '/database/clear', { key });
      expect(answer.status).toBe(401);
    }
    expect(await presenceRows(database.db)).toHaveLength(1);
  });

  it('clears every user with the system key, in the query or as a bearer token', async () => {
    expect(await request(app(), 'GET', '/database/clear', { key: KEYS.system })).toMatchObject({
      status: 200,
      body: { data: 'success' },
    });
    expect(await presenceRows(database.db)).toEqual([]);
    expect((await request(app(), 'GET', '/users/count')).body.data).toEqual({
      available: 0,
      busy: 0,
      away: 0,
    });

    await sql`insert into presently.presence values ('again', 'busy', now())`.execute(database.db);
    const headers = { Authorization: `Bearer ${KEYS.system}` };
    expect((await request(app(), 'GET', '/database/clear', { key: null, headers })).status).toBe(
      200,
    );
    expect(await presenceRows(database.db)).toEqual([]);
  });
});

describe('DELETE /database', () => {
  it('clears like GET /database/clear, with the system key only', async () => {
    for (const key of [null, KEYS.access, 'wrong']) {
      expect((await request(app(), 'DELETE', '/database', { key })).status).toBe(401);
    }
    expect(await presenceRows(database.db)).toHaveLength(1);
    expect(await request(app(), 'DELETE', '/database', { key: KEYS.system })).toMatchObject({
      status: 200,
      body: { data: 'success' },
    });
    expect(await presenceRows(database.db)).toEqual([]);
    const history = await sql<{ n: number }>`
      select count(*)::int as n from presently.status_changes where user_id is not null`.execute(
      database.db,
    );
    expect(history.rows[0]?.n).toBe(0);
  });

  it('takes no other method, and GET /database is not a clear', async () => {
    for (const method of ['GET', 'POST', 'PUT']) {
      const answer = await request(app(), method, '/database', { key: KEYS.system });
      expect(answer.status).toBe(405);
      expect(answer.headers.get('Allow')).toBe('DELETE');
    }
    expect(await presenceRows(database.db)).toHaveLength(1);
  });
});

describe('routes', () => {
  it.each([
    ['GET', '/dashboard'],
    ['GET', '/users'],
    ['GET', '/users/list'],
    ['GET', '/users/list/all/extra'],
    ['GET', '/users/count/'],
    ['POST', '/users/pingz'],
    ['GET', '/databases'],
  ])('%s %s is 404 in JSON', async (method, path) => {
    const answer = await request(app(), method, path);
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('not_found');
  });

  const wrongMethods: [string, string, string, string][] = [
    ['GET', '/users/ping', 'POST', KEYS.access],
    ['PUT', '/users/ping', 'POST', KEYS.access],
    ['POST', '/users/count', 'GET, HEAD', KEYS.access],
    ['DELETE', '/users/list/all', 'GET, HEAD', KEYS.access],
    ['POST', '/database/clear', 'GET', KEYS.system],
    ['DELETE', '/database/clear', 'GET', KEYS.system],
    ['HEAD', '/database/clear', 'GET', KEYS.system],
    ['GET', '/database', 'DELETE', KEYS.system],
  ];

  it.each(wrongMethods)(
    '%s %s without a key is 401, the key still comes first',
    async (method, path) => {
      expect((await request(app(), method, path, { key: null })).status).toBe(401);
    },
  );

  it.each(wrongMethods)(
    '%s %s is 405 with Allow, and changes nothing',
    async (method, path, allow, key) => {
      const answer = await request(app(), method, path, { key });
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe(allow);
      if (method !== 'HEAD') expect(answer.body.error.code).toBe('method_not_allowed');
      expect(await presenceRows(database.db)).toHaveLength(1);
    },
  );
});

describe('the Authorization header', () => {
  /** Time for `rounds` requests whose header has `spaces` spaces before `a b`. */
  async function timeFor(spaces: number, rounds: number): Promise<number> {
    const headers = { Authorization: `Bearer${' '.repeat(spaces)}a b` };
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      const answer = await request(app(), 'GET', '/users/count', { key: null, headers });
      expect(answer.status).toBe(401);
    }
    return performance.now() - started;
  }

  it('costs time in proportion to its length at most: 16 times the header, a few times the time', async () => {
    // Warmed up first, then interleaved, so that neither size gets the cold start or a noisy
    // moment to itself. A quadratic parse makes the ratio about 200; a linear one, about 1.
    await timeFor(900, 3);
    let short = 0;
    let long = 0;
    for (let round = 0; round < 5; round++) {
      short += await timeFor(900, 4);
      long += await timeFor(16 * 900, 4);
    }
    expect(long / short).toBeLessThan(4);
  });

  it.each([
    ['Bearer', ''],
    ['Bearer   ', ''],
    ['bearer\t', ''],
    [`Bearer ${KEYS.access}`, KEYS.access],
    [`BEARER   ${KEYS.access} \t`, KEYS.access],
    [`Bearer \t${KEYS.access}`, undefined],
    [`Bearer ${KEYS.access} x`, undefined],
    [`Bearer\t${KEYS.access}`, undefined],
    [`Bearerx${KEYS.access}`, undefined],
    ['Basic dXNlcjpwdw==', undefined],
  ])('reads %j as the bearer token %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});
