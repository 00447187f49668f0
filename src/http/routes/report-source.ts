import type { Context } from 'hono';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { RouteDeps } from './deps.js';

/**
 * The database a report reads: the replica when one is configured and answers, else the
 * primary's report pool. The answer says which, and how far behind its data may be, so that a
 * client can tell a report from a lagging replica.
 */
export async function reportDbFor(
  c: Context,
  { reportDb, reportReplica }: Pick<RouteDeps, 'reportDb' | 'reportReplica'>,
): Promise<Kysely<Database>> {
  const replica = await reportReplica?.pick();
  c.header('X-Report-Source', replica ? 'replica' : 'primary');
  c.header('X-Replica-Lag-Seconds', String(Math.round((replica?.lagSeconds ?? 0) * 1000) / 1000));
  return replica?.db ?? reportDb;
}
