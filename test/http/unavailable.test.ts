import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { silentLogger } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';
import { closedPort } from '../helpers/wait.js';

// A real pool pointed at a port where no PostgreSQL listens: the connection is really refused.
let db: ReturnType<typeof createDb>;

beforeAll(async () => {
  const port = await closedPort();
  const pool = createPool(
    { connectionString: `postgres://nobody:x@127.0.0.1:${port}/none` },
    silentLogger,
  );
  db = createDb(pool);
});

afterAll(() => db.destroy());

it.each([
  ['POST', '/users/ping', { id: 1, status: 'busy' }],
  ['GET', '/users/list/all', undefined],
  ['GET', '/users/count', undefined],
])(
  '%s %s answers 503 with Retry-After while the database is unreachable',
  async (method, path, body) => {
    const app = testApp(db);
    const answer = await request(app, method, path, { body });
    expect(answer.status).toBe(503);
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(answer.body.error.code).toBe('database_unavailable');
    expect(JSON.stringify(answer.body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|stack/);
  },
);

it('still checks keys and input first', async () => {
  const app = testApp(db);
  expect((await request(app, 'GET', '/users/count', { key: null })).status).toBe(401);
  expect((await request(app, 'POST', '/users/ping', { raw: '{' })).status).toBe(400);
});
