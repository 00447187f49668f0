import fs from 'node:fs/promises';
import { afterAll } from 'vitest';
import { makeDataDir } from './data-dir.js';
import { type TestDatabase, useTestDatabase } from './database.js';
import { KEYS } from './http.js';
import { killLeftovers, type RunningService, type Spawned, startService } from './service.js';

export interface RealtimeContext extends TestDatabase {
  /** Another instance of the real service on this file's database. */
  start(env?: Record<string, string>): Promise<RunningService>;
}

/**
 * Real service processes (src/main.ts) sharing one migrated database of the file's own, which
 * the test also reaches directly. Every process still running is killed after the file.
 */
export function useRealtime(env: Record<string, string> = {}): RealtimeContext {
  const database = useTestDatabase();
  const children: Spawned[] = [];
  const dataDirs: string[] = [];
  // Registered after the database's hooks, so it runs before the database is dropped.
  afterAll(async () => {
    await killLeftovers(children);
    await Promise.all(dataDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  });

  const start = async (extra: Record<string, string> = {}) => {
    const dataDir = await makeDataDir();
    dataDirs.push(dataDir);
    return startService(
      {
        DATABASE_URL: database.url,
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
  return Object.assign(database, { start });
}

export function socketUrl(service: RunningService, key: string | null = KEYS.access): string {
  const query = key === null ? '' : `?key=${encodeURIComponent(key)}`;
  return `ws://127.0.0.1:${service.port}/ws${query}`;
}
