import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { PingRun } from './http-load.js';
import { heartbeatStatusSql } from './users.js';

// Sessions at scale (migrations/0007): users of two named sessions each (a phone and a laptop),
// and what the away sweep costs over them. The heartbeats themselves go through the service
// (sessions-run.ts).

export interface SessionsPoint {
  users: number;
  sessions: number;
  fillS: number;
  heartbeats: PingRun;
  /** Share of the session updates during the heartbeats that were HOT, percent. */
  hotPercent: number;
  sweeps: SessionSweeps;
}

export interface SessionSweeps {
  /** The sweep with nobody due, median of five. */
  idleMs: number;
  /** The sweep with 1% of the users' phone sessions due. */
  dueMs: number;
  /** Sessions that sweep ended. */
  ended: number;
}

/**
 * Users from..to (the benchmark's ids, each with its heartbeat status) and their two sessions,
 * written directly with triggers off (a superuser: the embedded server's): a consistent state
 * set by hand (every user logged with the status of its sessions, the totals matching) rather
 * than millions of changes through the log, which is not what is measured here.
 */
export async function fillSessions(
  client: pg.Client,
  from: number,
  to: number,
  timeoutS: number,
): Promise<number> {
  const started = performance.now();
  const status = heartbeatStatusSql('i');
  await client.query('begin');
  await client.query('set local session_replication_role = replica');
  await client.query(
    `insert into presently.presence (user_id, status, last_ping, logged_status, logged_at)
     select i::text, null, now(), ${status}, now() from generate_series($1::int, $2::int) i`,
    [from, to],
  );
  await client.query(
    `insert into presently.sessions (user_id, session, status, last_ping, timeout)
     select i::text, s, ${status}, now(), make_interval(secs => $3)
     from generate_series($1::int, $2::int) i cross join unnest(array['phone', 'laptop']) s`,
    [from, to, timeoutS],
  );
  await client.query(
    `update presently.status_totals t set available = c.available, busy = c.busy, away = 0
     from (select count(*) filter (where logged_status = 'available') as available,
                  count(*) filter (where logged_status = 'busy') as busy
           from presently.presence) c`,
  );
  await client.query('commit');
  await client.query('vacuum analyze presently.presence, presently.sessions');
  return (performance.now() - started) / 1000;
}

/**
 * The sweep with nobody due, then with 1% of the phone sessions due (their last ping pushed
 * back past the timeout by hand); the ended sessions are put back afterwards, as they were.
 */
export async function measureSweeps(client: pg.Client, timeoutS: number): Promise<SessionSweeps> {
  const idle: number[] = [];
  for (let run = 0; run < 5; run++) idle.push(await timed(client, 'select presently.sweep_away()'));
  const due = `session = 'phone' and hashtext(user_id) % 100 = 0`;
  await client.query('set session_replication_role = replica');
  await client.query(
    `update presently.sessions set last_ping = now() - make_interval(secs => $1 + 60)
     where ${due}`,
    [timeoutS],
  );
  await client.query('set session_replication_role = origin');
  const { rows } = await client.query<{ n: number }>(
    `select count(*)::int as n from presently.sessions where ${due}`,
  );
  const dueMs = await timed(client, 'select presently.sweep_away()');
  await client.query('set session_replication_role = replica');
  await client.query(
    `insert into presently.sessions (user_id, session, status, last_ping, timeout)
     select user_id, 'phone', status, last_ping, timeout from presently.sessions
     where session = 'laptop' and hashtext(user_id) % 100 = 0
     on conflict do nothing`,
  );
  await client.query('set session_replication_role = origin');
  return { idleMs: median(idle), dueMs, ended: rows[0]?.n ?? 0 };
}

/** Share of the session updates since the last call that were HOT (no index touched). */
export function hotUpdates(client: pg.Client) {
  let seen = { updates: 0, hot: 0 };
  return async (): Promise<number> => {
    const { rows } = await client.query<{ updates: number; hot: number }>(
      `select n_tup_upd::int as updates, n_tup_hot_upd::int as hot
       from pg_stat_user_tables where relid = 'presently.sessions'::regclass`,
    );
    const now = rows[0] ?? seen;
    const updates = now.updates - seen.updates;
    const share = updates > 0 ? (now.hot - seen.hot) / updates : 0;
    seen = now;
    return Math.round(share * 100);
  };
}

async function timed(client: pg.Client, statement: string): Promise<number> {
  const started = performance.now();
  await client.query(statement);
  return Math.round((performance.now() - started) * 10) / 10;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}
