import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

const database = useTestDatabase();

it('answers 500 without internals when a query fails for a reason of its own', async () => {
  // Break this file's own database so the next query fails inside PostgreSQL.
  await sql`drop view presently.status_counts cascade`.execute(database.db);
  const answer = await request(testApp(database.db), 'GET', '/users/count');
  expect(answer.status).toBe(500);
  expect(answer.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
});
