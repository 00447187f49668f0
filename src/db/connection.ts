import {
  Kysely,
  type PostgresCursor,
  PostgresDialect,
  type PostgresPool,
  type PostgresQueryResult,
} from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { isOnStandby } from './errors.js';
import type { Database } from './schema.js';

// Counts and Unix times are bigint in SQL; both stay far below 2^53, so numbers are exact.
// Set per pool rather than on pg's global registry, which would be shared mutable state.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8
      ? Number
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
  /** How long a query may go unanswered before it fails (15 s; tests shorten it). */
  queryTimeoutMs?: number;
  /** How long the server may run one statement before cancelling it (10 s; 57014). */
  statementTimeoutMs?: number;
  /** How long a request may wait for a free connection (5 s). */
  connectionTimeoutMs?: number;
}

/** A pool whose failures surface as errors on the request that met them, never as a hang. */
export function createPool(options: PoolOptions, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'presently',
    types,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    query_timeout: options.queryTimeoutMs ?? 15_000,
    keepAlive: true,
  });
  // A connection lost (a database restart, a terminated backend) must never crash the process.
  // Idle clients report it to the pool, which drops them; a checked-out client reports it on
  // itself too, sometimes with no query running to take it (node-postgres #2439), so every
  // client gets a listener. The query that was running fails on its own and is answered 503.
  pool.on('error', (error) =>
    logger.warn({ reason: error.message }, 'idle database connection lost'),
  );
  pool.on('connect', (client) => {
    client.on('error', (error) =>
      logger.warn({ reason: error.message }, 'database connection lost'),
    );
  });
  return pool;
}

export function createDb(pool: pg.Pool): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: discardTimedOut(pool) }) });
}

const QUERY_TIMEOUT = 'Query read timeout';

/**
 * The pool as Kysely sees it, except that a client on which a query timed out (or a write met a
 * standby) is destroyed when released instead of going back to the pool. node-postgres answers the timeout but keeps the
 * query running on that client, and Kysely releases it without an error: the next request to
 * draw it would wait behind a query whose caller gave up, for as long as the server stays
 * silent.
 */
function discardTimedOut(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let timedOut = false;
      function query<R>(
        text: string,
        parameters: readonly unknown[],
      ): Promise<PostgresQueryResult<R>>;
      function query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
      function query(
        text: unknown,
        parameters: readonly unknown[] = [],
      ): Promise<PostgresQueryResult<unknown>> | PostgresCursor<unknown> {
        if (typeof text !== 'string') throw new Error('no cursor is configured');
        // pg says `command: string`, Kysely names the commands it reads: the same values.
        const result = client.query(text, [...parameters]) as Promise<PostgresQueryResult<unknown>>;
        return result.catch((error: unknown) => {
          if (error instanceof Error && error.message === QUERY_TIMEOUT) timedOut = true;
          // A standby stays one until the connection is closed: never hand it out again.
          if (isOnStandby(error)) timedOut = true;
          throw error;
        });
      }
      return {
        query,
        release: (destroy?: boolean) => client.release(destroy === true || timedOut),
      };
    },
    end: () => pool.end(),
  };
}
