import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import type { Database } from '../../src/db/schema.js';
import { makeDataDir } from './data-dir.js';
import { createTestDatabase, silentLogger } from './database.js';
import { KEYS } from './http.js';
import { type RunningService, startService } from './service.js';

export interface RealtimeContext {
  url: string;
  pool: pg.Pool;
  db: Kysely<Database>;
  /** Another instance of the real service on this file's database. */
  start(env?: Record<string, string>): Promise<RunningService>;
}

/**
 * Real service processes (src/main.ts) sharing one migrated database of the file's own, which
 * the test also reaches directly. Every process still running is killed after the file.
 */
export function useRealtime(env: Record<string, string> = {}): RealtimeContext {
  const context = {} as RealtimeContext;
  const children: { child: ChildProcess; exited: Promise<number | null> }[] = [];
  const dataDirs: string[] = [];
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const database = await createTestDatabase({ migrated: true });
    drop = database.drop;
    context.url = database.url;
    context.pool = createPool({ connectionString: database.url }, silentLogger);
    context.db = createDb(context.pool);
  });
  afterAll(async () => {
    for (const { child, exited } of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    await context.db?.destroy();
    await drop?.();
    await Promise.all(dataDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  });

  context.start = async (extra = {}) => {
    const dataDir = await makeDataDir();
    dataDirs.push(dataDir);
    return startService(
      {
        DATABASE_URL: context.url,
        DATA_DIR: dataDir,
        ACCESS_KEY: KEYS.access,
        ACCESS_KEY_SYSTEM: KEYS.system,
        LOG_LEVEL: 'debug',
        ...env,
        ...extra,
      },
      (spawned) => children.push(spawned),
    );
  };
  return context;
}

export function socketUrl(service: RunningService, key: string | null = KEYS.access): string {
  const query = key === null ? '' : `?key=${encodeURIComponent(key)}`;
  return `ws://127.0.0.1:${service.port}/ws${query}`;
}
