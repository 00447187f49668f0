import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

export interface ReadinessChecks {
  /** The database answers `select 1` in time. */
  database: boolean;
  /** The latest applied migration is the latest this version ships. */
  migrations: boolean;
  /** The change listener is connected and listening: sockets get live changes. */
  listener: boolean;
}

export interface Readiness {
  check(): Promise<{ ready: boolean; checks: ReadinessChecks }>;
}

export interface ReadinessOptions {
  db: Kysely<Database>;
  listener: { readonly listening: boolean };
  /** The id of the last migration file read at start-up. */
  latestMigration: number;
  /** A check that has not answered by then counts as failed. */
  timeoutMs?: number;
}

/**
 * Whether this instance can serve: a probe's question. Checks never throw and keep no error:
 * the answer names what failed, and the details belong in the logs, not in a public route.
 * Probes arriving while a check runs share it, so a storm of probes costs one round of queries.
 */
export function createReadiness(options: ReadinessOptions): Readiness {
  const { db, listener, latestMigration } = options;
  const timeoutMs = options.timeoutMs ?? 2_000;
  let running: Promise<{ ready: boolean; checks: ReadinessChecks }> | undefined;

  const run = async () => {
    const deadline = timer(timeoutMs);
    try {
      const database = await deadline.race(sql`select 1`.execute(db)).then(
        () => true,
        () => false,
      );
      const migrations =
        database &&
        (await deadline.race(appliedMigration(db)).then(
          (latest) => latest === latestMigration,
          () => false,
        ));
      const checks = { database, migrations, listener: listener.listening };
      return { ready: database && migrations && checks.listener, checks };
    } finally {
      deadline.clear();
    }
  };

  return {
    check() {
      running ??= run().finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}

async function appliedMigration(db: Kysely<Database>): Promise<number | null> {
  const { rows } = await sql<{ latest: number | null }>`
    select max(id) as latest from presently.migrations
  `.execute(db);
  return rows[0]?.latest ?? null;
}

/**
 * One deadline for every step of a check. A query that loses the race goes on in the
 * background, bounded by the pool's own timeouts.
 */
function timer(ms: number) {
  let handle: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    handle = setTimeout(() => reject(new Error('readiness check timed out')), ms);
  });
  expired.catch(() => {});
  return {
    race: <T>(work: Promise<T>) => Promise.race([work, expired]),
    clear: () => clearTimeout(handle),
  };
}
