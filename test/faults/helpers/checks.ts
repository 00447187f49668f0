import pg from 'pg';
import { openSocket, type TestSocket } from '../../helpers/socket.js';
import { waitFor } from '../../helpers/wait.js';
import { type PingRecord, positionsReceived } from './load.js';

// What must hold after a fault, checked against the database itself.

/** A query on a connection of its own, which a restarting server cannot crash. */
export async function query<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Retries `query` while the server is still coming back. */
export async function queryWhenUp<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
  timeoutMs = 15_000,
): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await query<T>(url, text, values);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export const latestPosition = async (url: string) =>
  Number(
    (
      await queryWhenUp<{ p: string }>(
        url,
        'select coalesce(max(position), 0) as p from presently.status_changes',
      )
    )[0]?.p,
  );

export interface AnswerTimes {
  /** Slowest HTTP answer (200, 503 or anything else), ms. */
  http: number;
  /** Slowest `error` frame for a socket ping, ms. */
  socketError: number;
  /** Slowest `presence-change` for a socket's own ping, ms (includes the listener's return). */
  socketAnnounced: number;
  counts: Record<string, number>;
}

export function answerTimes(records: PingRecord[]): AnswerTimes {
  const slowest = (filter: (r: PingRecord) => boolean) =>
    Math.round(Math.max(0, ...records.filter(filter).map((r) => r.answeredMark - r.sentMark)));
  const counts: Record<string, number> = {};
  for (const r of records)
    counts[`${r.via} ${r.outcome}`] = (counts[`${r.via} ${r.outcome}`] ?? 0) + 1;
  return {
    http: slowest((r) => r.via === 'http'),
    socketError: slowest((r) => r.via === 'socket' && r.outcome !== 'ok'),
    socketAnnounced: slowest((r) => r.via === 'socket' && r.outcome === 'ok'),
    counts,
  };
}

/** Pings whose answer was neither success nor a proper "database unavailable". */
export const failures = (records: PingRecord[]) =>
  records
    .filter((r) => r.outcome === 'failed')
    .map((r) => `${r.via} ${r.user} ${r.status}: ${r.detail}`);

/**
 * Every acknowledged ping is in the database. Per user (a loop's pings to one user go one at a
 * time): the row exists, its last_ping is no older than the sending of the last acknowledged
 * ping and no newer than the answer to the last ping sent, and its status is that of the last
 * acknowledged ping, unless a later ping was sent (a refused ping may still have committed:
 * the connection can die between the commit and the answer). Answers the problems found.
 */
export async function lostAcknowledged(url: string, records: PingRecord[]): Promise<string[]> {
  const byUser = new Map<string, PingRecord[]>();
  for (const record of records) {
    const list = byUser.get(record.user) ?? [];
    list.push(record);
    byUser.set(record.user, list);
  }
  const rows = await queryWhenUp<{ user_id: string; status: string; ms: number }>(
    url,
    `select user_id, status, extract(epoch from last_ping)::float8 * 1000 as ms
     from presently.presence where user_id = any($1)`,
    [[...byUser.keys()]],
  );
  const stored = new Map(rows.map((row) => [row.user_id, row]));
  const problems: string[] = [];
  for (const [user, pings] of byUser) {
    pings.sort((a, b) => a.sentMark - b.sentMark);
    const lastAck = pings.findLastIndex((p) => p.outcome === 'ok');
    if (lastAck < 0) continue;
    const ack = pings[lastAck] as PingRecord;
    const last = pings.at(-1) as PingRecord;
    const row = stored.get(user);
    if (!row) {
      problems.push(`${user}: acknowledged (${ack.via}, ${ack.status}) but not in the database`);
      continue;
    }
    // Whole milliseconds on both sides: a millisecond of rounding.
    if (row.ms < ack.sentAt - 1) {
      problems.push(
        `${user}: last_ping ${new Date(row.ms).toISOString()} is older than the acknowledged ping sent at ${new Date(ack.sentAt).toISOString()}`,
      );
    }
    const lastAnswerAt = last.sentAt + (last.answeredMark - last.sentMark);
    if (row.ms > lastAnswerAt + 1) {
      problems.push(`${user}: last_ping is later than the answer to the last ping sent`);
    }
    const allowed = new Set([ack.status, ...pings.slice(lastAck + 1).map((p) => p.status)]);
    if (!allowed.has(row.status as PingRecord['status'])) {
      problems.push(
        `${user}: stored ${row.status}, but the last acknowledged ping was ${ack.status}` +
          (lastAck === pings.length - 1 ? ' and no ping followed' : ''),
      );
    }
  }
  return problems;
}

/** The positions of the log after `after`, in order. */
export async function logPositions(url: string, after: number): Promise<number[]> {
  const rows = await queryWhenUp<{ position: string }>(
    url,
    'select position from presently.status_changes where position > $1 order by position',
    [after],
  );
  return rows.map((row) => Number(row.position));
}

/**
 * A socket connected since the log was at `after` has received every change after it, once
 * each, in order: waits (up to `timeoutMs`) until it has the log's last one, then compares.
 */
export async function socketGap(
  socket: TestSocket,
  log: number[],
  after: number,
  timeoutMs = 10_000,
): Promise<{ missing: number[]; unexpected: number[]; inOrder: boolean }> {
  const last = log.at(-1) ?? after;
  const received = () => positionsReceived(socket).filter((p) => p > after);
  await waitFor(
    `a socket to receive position ${last}`,
    () => received().some((p) => p >= last),
    timeoutMs,
  ).catch(() => undefined);
  const got = received();
  const seen = new Set(got);
  const expected = new Set(log);
  return {
    missing: log.filter((p) => !seen.has(p)),
    // Duplicates show up here too.
    unexpected: got.filter((p, i) => !expected.has(p) || got.indexOf(p) !== i),
    inOrder: got.every((p, i) => i === 0 || p > (got[i - 1] as number)),
  };
}

/** Reconnects with `?since=after` and answers the positions replayed up to the log's last. */
export async function replayed(
  baseUrl: string,
  after: number,
  log: number[],
  timeoutMs = 10_000,
): Promise<number[]> {
  const socket = await openSocket(`${baseUrl}&since=${after}`);
  try {
    const last = log.at(-1) ?? after;
    await waitFor(
      `the replay to reach position ${last}`,
      () => positionsReceived(socket).some((p) => p >= last),
      timeoutMs,
    ).catch(() => undefined);
    return positionsReceived(socket).filter((p) => p <= last);
  } finally {
    await socket.close();
  }
}
