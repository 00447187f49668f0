import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger.js';
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
}

/** A pool whose failures surface as errors on the request that met them, never as a hang. */
export function createPool(options: PoolOptions, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'presently',
    types,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 10_000,
    query_timeout: 15_000,
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
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
