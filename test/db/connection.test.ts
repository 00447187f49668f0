import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { createTestDatabase, silentLogger } from '../helpers/database.js';

let created: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  created = await createTestDatabase({ migrated: false });
});
afterAll(() => created.drop());

const backendPid = async (db: ReturnType<typeof createDb>) =>
  (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]?.pid;

describe('the connection pool', () => {
  it('never hands out again a connection whose query timed out', async () => {
    // One connection, so a reused one would be seen: its query is still running when the
    // caller has given up on it.
    const pool = createPool(
      { connectionString: created.url, max: 1, queryTimeoutMs: 300 },
      silentLogger,
    );
    const db = createDb(pool);
    try {
      const before = await backendPid(db);
      await expect(sql`select pg_sleep(5)`.execute(db)).rejects.toThrow('Query read timeout');
      const after = await backendPid(db);
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      // Healthy connections are reused as ever.
      expect(await backendPid(db)).toBe(after);
    } finally {
      await db.destroy();
    }
  });
});
