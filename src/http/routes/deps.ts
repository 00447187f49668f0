import type { Kysely } from 'kysely';
import type { ReportReplica } from '../../db/report-replica.js';
import type { Database } from '../../db/schema.js';
import type { Keys } from '../../keys.js';
import type { Logger } from '../../logger.js';
import type { PingWriter } from '../../presence/ping-writer.js';
import type { ReportGate } from '../report-gate.js';

export interface RouteDeps {
  /** The ping path's pool: pings, lists, counts, readiness. */
  db: Kysely<Database>;
  /**
   * Reports and long history: a small pool of their own with a shorter statement timeout, so
   * that however heavy they are, they cannot take the ping path's connections.
   */
  reportDb: Kysely<Database>;
  /** REPORTING_DATABASE_URL: reports read it when it answers, reportDb when it does not. */
  reportReplica?: ReportReplica;
  /** The bound on reports running at once, in front of reportDb. */
  reportGate: ReportGate;
  keys: Keys;
  pings: PingWriter;
  logger: Logger;
  /** Users per statement of the streamed whole list (LIST_CHUNK_ROWS; tests make it small). */
  listChunkRows?: number;
}
