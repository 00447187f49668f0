import { type Kysely, sql } from 'kysely';
import type { Logger } from '../logger.js';
import type { Database } from './schema.js';

// Reports and history may read a replica (REPORTING_DATABASE_URL): their heavy scans then cost
// the primary nothing. A replica that cannot be reached must not take reports down with it, so
// every report first asks the replica its lag, and reads the primary when it gets no answer.

/**
 * Seconds the replica's data is behind, 0 on a server that is no standby. A standby that has
 * replayed everything it received is not behind, however long ago the last write was (the
 * replay timestamp alone would make an idle primary look like a lagging replica).
 */
const LAG = sql<{ lag: number }>`
  select case
    when not pg_is_in_recovery() then 0
    when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
    else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0)
  end::float8 as lag`;

export interface ReportReplica {
  /** The replica and its lag when it answers; undefined when reports must read the primary. */
  pick(): Promise<{ db: Kysely<Database>; lagSeconds: number } | undefined>;
  /** Asks the replica now, whatever the last answer was (for /metrics). */
  probe(): Promise<number | undefined>;
}

export interface ReportReplicaOptions {
  db: Kysely<Database>;
  logger: Logger;
  /** After a failure, reports read the primary for this long before the replica is asked again. */
  retryMs?: number;
}

export function createReportReplica({
  db,
  logger,
  retryMs = 5_000,
}: ReportReplicaOptions): ReportReplica {
  let downUntil = 0;
  let up = true;

  const probe = async (): Promise<number | undefined> => {
    try {
      const { rows } = await LAG.execute(db);
      if (!up) logger.info('reports read the replica again');
      up = true;
      return Math.max(0, rows[0]?.lag ?? 0);
    } catch (error) {
      // Any failure, a wrong password as much as a dead host: reports are still answered.
      if (up) {
        logger.warn(
          { reason: (error as Error).message },
          'the reporting replica cannot be reached; reports read the primary',
        );
      }
      up = false;
      downUntil = Date.now() + retryMs;
      return undefined;
    }
  };

  return {
    async pick() {
      if (Date.now() < downUntil) return undefined;
      const lagSeconds = await probe();
      return lagSeconds === undefined ? undefined : { db, lagSeconds };
    },
    probe,
  };
}
