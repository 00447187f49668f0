import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, readMigrations } from '../../src/db/migrate.js';
import { createTestDatabase, silentLogger } from '../helpers/database.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function emptyDatabase(): Promise<string> {
  const created = await createTestDatabase({ migrated: false });
  cleanups.push(created.drop);
  return created.url;
}

async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-migrations-'));
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function query(url: string, text: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

describe('migrate', () => {
  it('applies the project migrations in order, records them, and does nothing the second time', async () => {
    const url = await emptyDatabase();
    const migrations = await readMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    expect(await migrate(url, migrations, silentLogger)).toEqual(migrations.map((m) => m.name));
    expect(await migrate(url, migrations, silentLogger)).toEqual([]);
    const recorded = await query(
      url,
      'select id, name, checksum from presently.migrations order by id',
    );
    expect(recorded).toEqual(migrations.map(({ id, name, checksum }) => ({ id, name, checksum })));
  });

  it('is safe when several instances start at once: each migration is applied once', async () => {
    const url = await emptyDatabase();
    const migrations = await readMigrations();
    const results = await Promise.all([1, 2, 3].map(() => migrate(url, migrations, silentLogger)));
    expect(results.flat().sort()).toEqual(migrations.map((m) => m.name).sort());
    const recorded = await query(url, 'select count(*)::int as n from presently.migrations');
    expect(recorded).toEqual([{ n: migrations.length }]);
  });

  it('rolls a failing migration back whole and records only what succeeded', async () => {
    const url = await emptyDatabase();
    const dir = await migrationsDir({
      '0001_good.sql': 'create table presently.good (id int);',
      '0002_bad.sql': 'create table presently.half (id int);\nselect * from no_such_table;',
    });
    await expect(migrate(url, await readMigrations(dir), silentLogger)).rejects.toThrow(
      /migration 0002_bad\.sql failed: .*no_such_table/,
    );
    expect(await query(url, 'select name from presently.migrations')).toEqual([
      { name: '0001_good.sql' },
    ]);
    const tables = await query(
      url,
      `select table_name from information_schema.tables where table_schema = 'presently' order by 1`,
    );
    expect(tables.map((row) => row.table_name)).toEqual(['good', 'migrations']);
  });

  it('refuses a database whose applied migration was edited since', async () => {
    const url = await emptyDatabase();
    const before = await migrationsDir({ '0001_a.sql': 'create table presently.a (id int);' });
    await migrate(url, await readMigrations(before), silentLogger);
    const after = await migrationsDir({ '0001_a.sql': 'create table presently.a (id bigint);' });
    await expect(migrate(url, await readMigrations(after), silentLogger)).rejects.toThrow(
      /differs/,
    );
  });

  it('refuses a database migrated by a newer version', async () => {
    const url = await emptyDatabase();
    const newer = await migrationsDir({ '0001_a.sql': 'select 1;', '0002_b.sql': 'select 2;' });
    await migrate(url, await readMigrations(newer), silentLogger);
    const older = await migrationsDir({ '0001_a.sql': 'select 1;' });
    await expect(migrate(url, await readMigrations(older), silentLogger)).rejects.toThrow(
      /newer version/,
    );
  });

  it('refuses files not named like 0001_lower_case.sql, and duplicate numbers', async () => {
    await expect(readMigrations(await migrationsDir({ 'Add-Table.sql': '' }))).rejects.toThrow(
      /not named/,
    );
    await expect(
      readMigrations(await migrationsDir({ '0001_a.sql': '', '001_b.sql': '' })),
    ).rejects.toThrow(/two migrations numbered 1/);
  });
});
