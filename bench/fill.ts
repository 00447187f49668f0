import type pg from 'pg';
import { withClient } from './database.js';
import { round } from './stats.js';
import { heartbeatStatusSql } from './users.js';

// Users put in presently.presence with one set-based statement, through every trigger (so the
// change log and presently.status_totals stay right), each with its heartbeat status and a ping
// now. The service must not be running meanwhile: it would replay every change to its sockets
// and snapshots.

export interface FillResult {
  users: number;
  added: number;
  ms: number;
  rowsPerSecond: number;
  vacuumAnalyzeMs: number;
}

/** The fill statement ran out of time: the rows are not there (it was rolled back). */
export class FillTooSlow extends Error {
  constructor(
    readonly added: number,
    readonly seconds: number,
  ) {
    super(`adding ${added} users in one statement took over ${seconds} s`);
  }
}

/**
 * Users `from`..`to` in one INSERT ... SELECT, then VACUUM ANALYZE. Most of the work is done by
 * deferred triggers at commit, which statement_timeout does not cover: a statement still running
 * after `timeoutS` is cancelled from another connection (`url`).
 */
export async function fillUsers(
  client: pg.Client,
  from: number,
  to: number,
  options: { timeoutS: number; url: string },
): Promise<FillResult> {
  const added = Math.max(0, to - from + 1);
  // Setting up, not measuring: the commit need not wait for its WAL flush.
  await client.query('set synchronous_commit = off');
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  const cancel = setTimeout(() => {
    void withClient(options.url, (c) => c.query('select pg_cancel_backend($1)', [rows[0]?.pid]));
  }, options.timeoutS * 1000);
  const began = performance.now();
  try {
    await client.query(
      `insert into presently.presence (user_id, status, last_ping)
       select g::text, ${heartbeatStatusSql('g')}, now()
       from generate_series($1::bigint, $2::bigint) g`,
      [from, to],
    );
  } catch (error) {
    if ((error as { code?: string }).code === '57014') {
      throw new FillTooSlow(added, options.timeoutS);
    }
    throw error;
  } finally {
    clearTimeout(cancel);
    await client.query('reset synchronous_commit');
  }
  const ms = performance.now() - began;
  const vacuumBegan = performance.now();
  await client.query(
    'vacuum analyze presently.presence, presently.status_changes, presently.status_totals',
  );
  return {
    users: to,
    added,
    ms: round(ms),
    rowsPerSecond: Math.round(added / (ms / 1000)),
    vacuumAnalyzeMs: round(performance.now() - vacuumBegan),
  };
}

/** Users a mixed run flipped get their heartbeat status back (through the triggers). */
export async function restoreHeartbeatStatus(client: pg.Client, users: Iterable<number>) {
  const ids = [...users].sort((a, b) => a - b).map(String);
  await client.query(
    `update presently.presence
     set status = ${heartbeatStatusSql('user_id::bigint')}, last_ping = now()
     where user_id = any($1::text[])`,
    [ids],
  );
  return ids.length;
}
