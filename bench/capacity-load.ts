import pg from 'pg';
import { measurePgCpu, type PgTarget } from './capacity-cpu.js';
import { STRIDE } from './users.js';

// The write workloads of the capacity model, run by a few connections of this process straight
// against presently.ping_many (the statement the service's group commit sends): heartbeats, or
// pings that each change their user's status, in batches of a given size, one transaction per
// batch. What is kept is PostgreSQL's CPU per row, from /proc (see capacity-cpu.ts), so that the
// numbers hold however busy the machine is; wall-clock rates are kept too, and are what the
// commit-order ceiling is (there the rate is the measurement).

export interface Users {
  count: number;
  /** 1 for a user whose status is flipped from its heartbeat status (see users.ts). */
  flipped: Uint8Array;
}

export const newUsers = (count: number): Users => ({
  count,
  flipped: new Uint8Array(count + 1),
});

/** Connections of their own, each with its backend's pid (to tell its CPU from the others'). */
export async function connectMany(url: string, n: number, settings: string[] = []) {
  const clients = await Promise.all(
    Array.from({ length: n }, async () => {
      const client = new pg.Client({
        connectionString: url,
        application_name: 'presently-capacity',
      });
      client.on('error', () => {});
      await client.connect();
      for (const setting of settings) await client.query(setting);
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      return { client, pid: rows[0]?.pid ?? 0 };
    }),
  );
  return {
    clients,
    pids: clients.map((c) => c.pid),
    end: () => Promise.all(clients.map((c) => c.client.end().catch(() => {}))),
  };
}

export interface WriteRun {
  rowsPerStatement: number;
  changes: boolean;
  clients: number;
  statements: number;
  rows: number;
  wallMs: number;
  /** PostgreSQL CPU per row, µs: the writers' backends and the server's background work. */
  cpuUsPerRow: number;
  /** The same per statement (per commit). */
  cpuUsPerStatement: number;
  /** Per notifying commit, of one listening instance (its LISTEN backend and its log reads). */
  instanceUsPerCommit?: number;
  commitsPerSecond: number;
  rowsPerSecond: number;
}

/**
 * `clients` connections write batches of `rows` distinct users for `durationS`. Client i takes
 * the users at walk positions i, i + clients, ... of the benchmark's permutation, so no two
 * clients ever lock the same user (no waits but the log lock) and batches are spread over the
 * whole table, as real pings are. With `changes`, every ping flips its user's status and one
 * listening "instance" reads the log on each notification, as the service's feed does.
 */
export async function runWrites(options: {
  url: string;
  target: PgTarget;
  users: Users;
  rows: number;
  clients: number;
  durationS: number;
  changes: boolean;
  settings?: string[];
}): Promise<WriteRun> {
  const { users, rows, clients, changes } = options;
  const writers = await connectMany(options.url, clients, options.settings);
  const instance = changes ? await startInstance(options.url) : undefined;
  let statements = 0;
  try {
    const m = await measurePgCpu(options.target, async () => {
      const until = performance.now() + options.durationS * 1000;
      await Promise.all(
        writers.clients.map(async ({ client }, i) => {
          let k = i;
          while (performance.now() < until) {
            const batch: number[] = [];
            for (let j = 0; j < rows; j += 1, k += clients) batch.push(walk(k, users.count));
            const ids = batch.map(String).sort();
            const statuses = ids.map((id) => status(users, Number(id), changes));
            await client.query('select * from presently.ping_many($1::text[], $2::text[])', [
              ids,
              statuses,
            ]);
            statements += 1;
          }
        }),
      );
      await instance?.settle();
    });
    const instanceNs = instance ? m.of(instance.pids) : 0;
    const writeNs = m.cpuNs - instanceNs;
    const seconds = m.wallMs / 1000;
    return {
      rowsPerStatement: rows,
      changes,
      clients,
      statements,
      rows: statements * rows,
      wallMs: Math.round(m.wallMs),
      cpuUsPerRow: writeNs / 1000 / (statements * rows),
      cpuUsPerStatement: writeNs / 1000 / statements,
      ...(instance ? { instanceUsPerCommit: instanceNs / 1000 / statements } : {}),
      commitsPerSecond: statements / seconds,
      rowsPerSecond: (statements * rows) / seconds,
    };
  } finally {
    await instance?.stop();
    await writers.end();
  }
}

/** The k-th user of the walk: a permutation of 1..n (STRIDE is a prime coprime with n). */
const walk = (k: number, n: number) => (((k % n) * STRIDE) % n) + 1;

/** The user's heartbeat status, or with `change` the other one (which it keeps from then on). */
function status(users: Users, user: number, change: boolean): string {
  if (change) users.flipped[user] = users.flipped[user] ? 0 : 1;
  const even = user % 2 === 0;
  return even !== Boolean(users.flipped[user]) ? 'available' : 'busy';
}

/**
 * One instance's share of a change: a LISTEN connection, and a reader that, on each
 * notification, reads the log after its position as src/presence/change-feed.ts does
 * (coalescing wake-ups that arrive during a read, batches of 1,000).
 */
async function startInstance(url: string) {
  const conns = await connectMany(url, 2);
  const [listener, reader] = conns.clients as [
    (typeof conns.clients)[0],
    (typeof conns.clients)[0],
  ];
  const { rows } = await reader.client.query<{ p: string }>(
    'select coalesce(max(position), 0)::text as p from presently.status_changes',
  );
  let position = rows[0]?.p ?? '0';
  let reading: Promise<void> | undefined;
  let again = false;
  const read = async () => {
    do {
      again = false;
      const { rows: batch } = await reader.client.query<{ position: string }>(
        `select position::text, user_id, status, previous,
                floor(extract(epoch from changed_at))::bigint as time,
                extract(epoch from clock_timestamp() - changed_at)::float8 as age
         from presently.status_changes where position > $1 order by position limit 1000`,
        [position],
      );
      position = batch.at(-1)?.position ?? position;
      if (batch.length === 1000) again = true;
    } while (again);
  };
  const wake = () => {
    if (reading) {
      again = true;
      return;
    }
    reading = read().finally(() => {
      reading = undefined;
    });
  };
  listener.client.on('notification', wake);
  await listener.client.query('listen presently_status_changes');
  return {
    pids: conns.pids,
    /** Waits for the reads that the last notifications started. */
    async settle() {
      await new Promise((resolve) => setTimeout(resolve, 100));
      while (reading) await reading;
    },
    stop: conns.end,
  };
}
