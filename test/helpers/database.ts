import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import type { Database } from '../../src/db/schema.js';
import { databaseUrl, dropDatabase, withAdmin } from './admin.js';

export const silentLogger = pino({ level: 'silent' });

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  db: Kysely<Database>;
}

/** A database of its own for a test file: empty, or a clone of the migrated template. */
export async function createTestDatabase(options: { migrated: boolean }): Promise<{
  url: string;
  drop(): Promise<void>;
}> {
  const { adminUrl, template } = inject('databaseServer');
  const name = `presently_test_${randomBytes(6).toString('hex')}`;
  const from = options.migrated ? ` template ${template}` : '';
  await withAdmin(adminUrl, (admin) => admin.query(`create database ${name}${from}`));
  return {
    url: databaseUrl(adminUrl, name),
    drop: () => withAdmin(adminUrl, (admin) => dropDatabase(admin, name)),
  };
}

/** A migrated database for the whole test file, with a pool and Kysely on it. */
export function useTestDatabase(): TestDatabase {
  const context = {} as TestDatabase;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const created = await createTestDatabase({ migrated: true });
    drop = created.drop;
    context.url = created.url;
    // The tests' own pool: its statements include setup of tens of thousands of rows through
    // the triggers, which a loaded CI machine once took past the service's 15 s read timeout
    // (PostgreSQL 15 pass, 30,000 users in test/http/list-stream.test.ts; not reproduced in
    // three runs of the suite since, nor in a loop beside other heavy files). The service's own
    // bound is tested with pools of its own (test/db/connection.test.ts, test/faults).
    context.pool = createPool(
      { connectionString: created.url, queryTimeoutMs: 60_000 },
      silentLogger,
    );
    context.db = createDb(context.pool);
  });
  afterAll(async () => {
    await context.db?.destroy();
    await drop?.();
  });
  return context;
}

/** Every stored row, to show that a refused request changed nothing. */
export async function presenceRows(db: Kysely<Database>) {
  return db.selectFrom('presently.presence').selectAll().orderBy('user_id').execute();
}

/** The change log's positions after `position`, in order: what a socket resuming from it is owed. */
export async function logPositionsAfter(db: Kysely<Database>, position: number): Promise<number[]> {
  const { rows } = await sql<{ position: string }>`
    select position from presently.status_changes where position > ${position} order by position
  `.execute(db);
  return rows.map((row) => Number(row.position));
}

/**
 * Connections of their own, outside the pool (for open transactions, LISTEN and races), each
 * ended after the test: ending one also rolls back a transaction a failed test left open.
 */
export function useClients(database: TestDatabase): () => Promise<pg.Client> {
  const clients: pg.Client[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.end().catch(() => {})));
  });
  return async () => {
    const client = new pg.Client({ connectionString: database.url });
    // A client whose backend is gone (a deadlock victim, a terminated one) must not crash the run.
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    return client;
  };
}

/**
 * `count` users with ids of 120 characters, available now, in one statement: a list of about
 * 150 bytes a user, for tests of large lists (15,000 users: about 2 MB, twice the bound of what
 * a socket may have unsent). Few rows with long ids: every inserted row runs the presence
 * triggers, which a loaded machine makes slow.
 */
export async function addFillerUsers(db: Kysely<Database>, count: number): Promise<void> {
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    select rpad('filler-' || g, 120, '.'), 'available', now() from generate_series(1, ${count}) g
  `.execute(db);
}
