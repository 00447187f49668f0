import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../logger.js';

/** `migrations/` at the top of the project, from src/db or dist/db alike. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface Migration {
  id: number;
  name: string;
  sql: string;
  checksum: string;
}

const FILE_NAME = /^(\d+)_([a-z0-9_]+)\.sql$/;

/** The numbered `.sql` files of a folder, in order. */
export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await fs.readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_NAME.exec(file);
    if (!match) throw new Error(`migration file ${file} is not named like 0001_lower_case.sql`);
    // Line endings are normalised so a checkout with CRLF does not look like an edit.
    const sql = (await fs.readFile(path.join(dir, file), 'utf8')).replace(/\r\n/g, '\n');
    const id = Number(match[1]);
    if (migrations.some((m) => m.id === id)) throw new Error(`two migrations numbered ${id}`);
    const checksum = createHash('sha256').update(sql).digest('hex');
    migrations.push({ id, name: file, sql, checksum });
  }
  return migrations.sort((a, b) => a.id - b.id);
}

/**
 * Applies the migrations the database lacks, each in its own transaction, recorded in
 * presently.migrations. An advisory lock makes concurrent start-ups take turns: the second
 * waits, then finds nothing left to do. Its own connection, so no pool timeout cuts a long
 * migration short.
 */
export async function migrate(
  connectionString: string,
  migrations: Migration[],
  logger: Logger,
): Promise<string[]> {
  const client = new pg.Client({ connectionString, application_name: 'presently-migrate' });
  await client.connect();
  try {
    await client.query(`select pg_advisory_lock(hashtextextended('presently:migrate', 0))`);
    await client.query(`create schema if not exists presently`);
    await client.query(`
      create table if not exists presently.migrations (
        id integer primary key,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`);
    const applied = await client.query<{ id: number; name: string; checksum: string }>(
      'select id, name, checksum from presently.migrations order by id',
    );
    checkApplied(applied.rows, migrations);
    const done = new Set(applied.rows.map((row) => row.id));
    const pending = migrations.filter((m) => !done.has(m.id));
    for (const migration of pending) {
      await applyOne(client, migration);
      logger.info({ migration: migration.name }, 'migration applied');
    }
    return pending.map((m) => m.name);
  } finally {
    // Closing the session releases the advisory lock too, even if unlocking failed.
    await client.end().catch(() => undefined);
  }
}

async function applyOne(client: pg.Client, migration: Migration): Promise<void> {
  try {
    await client.query('begin');
    await client.query(migration.sql);
    await client.query(
      'insert into presently.migrations (id, name, checksum) values ($1, $2, $3)',
      [migration.id, migration.name, migration.checksum],
    );
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** A database migrated by another version, or from edited files, is refused, not guessed at. */
function checkApplied(
  applied: { id: number; name: string; checksum: string }[],
  migrations: Migration[],
): void {
  for (const row of applied) {
    const known = migrations.find((m) => m.id === row.id);
    if (!known) {
      throw new Error(
        `the database has migration ${row.name}, which this version of presently does not know; ` +
          'it was migrated by a newer version',
      );
    }
    if (known.name !== row.name || known.checksum !== row.checksum) {
      throw new Error(
        `migration ${known.name} differs from the one applied to the database (${row.name}); ` +
          'applied migrations must never be edited: add a new one instead',
      );
    }
  }
}
