import type { Kysely } from 'kysely';
import { readMigrations } from '../../src/db/migrate.js';
import { createReadiness } from '../../src/db/readiness.js';
import type { Database } from '../../src/db/schema.js';
import { type App, type AppDeps, createApp } from '../../src/http/app.js';
import { createReportGate } from '../../src/http/report-gate.js';
import type { Keys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createPingWriter } from '../../src/presence/ping-writer.js';
import { createBroadcaster } from '../../src/realtime/broadcaster.js';
import { createSocketHub } from '../../src/realtime/hub.js';
import { createSnapshotPump } from '../../src/realtime/snapshots.js';
import { silentLogger } from './database.js';

export const KEYS: Keys = { access: 'test-access-key', system: 'test-system-key' };

export const LATEST_MIGRATION = (await readMigrations()).at(-1)?.id ?? 0;

/**
 * The app as main.ts builds it, with a socket hub of its own (no server, so no sockets) and no
 * change listener (so /readyz says so), unless `overrides` give other parts. Reports share `db`
 * unless `overrides` give them a pool of their own (`reportDb`), as main.ts does.
 */
export function testApp(db: Kysely<Database>, overrides: Partial<AppDeps> = {}): App {
  const hub = createSocketHub({ logger: silentLogger });
  const snapshots = createSnapshotPump({ db, hub, logger: silentLogger, intervalMs: 250 });
  const broadcaster = createBroadcaster({ hub, snapshots });
  return createApp({
    db,
    reportDb: db,
    reportGate: createReportGate(),
    keys: KEYS,
    pings: createPingWriter({ db }),
    logger: silentLogger,
    hub,
    broadcaster,
    readiness: createReadiness({
      db,
      listener: { listening: false },
      latestMigration: LATEST_MIGRATION,
    }),
    metrics: createMetrics(),
    metricsPublic: false,
    ...overrides,
  });
}

export interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field in tests
  body: any;
}

/** A request through the app, the key given as `?key=` unless `key` is null. */
export async function request(
  app: App,
  method: string,
  path: string,
  options: {
    key?: string | null;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const key = options.key === undefined ? KEYS.access : options.key;
  const url = new URL(path, 'http://presently.test');
  if (key !== null) url.searchParams.set('key', key);
  const body =
    options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await app.request(url.toString(), {
    method,
    body,
    headers: options.headers,
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : text,
  };
}
