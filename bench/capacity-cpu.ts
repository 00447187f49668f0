import fs from 'node:fs/promises';

// PostgreSQL's CPU time over a measurement, in nanoseconds, from /proc/<pid>/schedstat (time on
// a CPU, kept by the scheduler to the nanosecond; /proc/<pid>/stat counts 10 ms ticks, too coarse
// for per-operation costs of tens of microseconds). Counted: the postmaster and its background
// processes (WAL writer, checkpointer, I/O workers, autovacuum) and the backends of the database
// under test. Not counted: backends and autovacuum workers of other databases on the same server,
// which belong to whoever else uses it (other agents' tests, on this machine). A process that
// starts and ends between two snapshots is missed; background processes live as long as the
// server, so that is at most a short autovacuum worker.

export interface PgCpuSnapshot {
  /** pid -> CPU ns so far. */
  ns: Map<number, number>;
  at: number;
}

export async function snapshotPgCpu(
  postmasterPid: number,
  database: string,
): Promise<PgCpuSnapshot> {
  const entries = await fs.readdir('/proc');
  const ns = new Map<number, number>();
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        const pid = Number(name);
        try {
          const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          if (pid !== postmasterPid && ppid !== postmasterPid) return;
          if (pid !== postmasterPid && !(await ours(pid, database))) return;
          const sched = await fs.readFile(`/proc/${pid}/schedstat`, 'utf8');
          ns.set(pid, Number(sched.split(' ')[0]));
        } catch {
          // The process ended meanwhile.
        }
      }),
  );
  return { ns, at: performance.now() };
}

/** Whether a child of the postmaster works for `database` or for the server as a whole. */
async function ours(pid: number, database: string): Promise<boolean> {
  const title = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
  // Backends: "postgres: <user> <database> <host>(<port>) <state>"; "[local]" on a socket.
  const backend = /^postgres: \S+ (\S+) \S*(\(\d+\)|\[local\])/.exec(title);
  if (backend) return backend[1] === database;
  const worker = /^postgres: autovacuum worker (\S+)/.exec(title);
  if (worker) return worker[1] === database;
  return true;
}

/** CPU ns PostgreSQL spent between two snapshots (processes born between them: all of theirs). */
export function pgCpuNs(before: PgCpuSnapshot, after: PgCpuSnapshot): number {
  let total = 0;
  for (const [pid, ns] of after.ns) total += ns - (before.ns.get(pid) ?? 0);
  return total;
}

export interface PgTarget {
  postmasterPid: number;
  database: string;
}

export interface PgCpuMeasurement<T> {
  result: T;
  /** All of PostgreSQL's CPU (as counted above) during `work`. */
  cpuNs: number;
  wallMs: number;
  /** The CPU ns of some processes alone (backends known by pg_backend_pid()). */
  of(pids: number[]): number;
}

/** Runs `work` and answers PostgreSQL's CPU ns and the wall-clock ms it took. */
export async function measurePgCpu<T>(
  target: PgTarget,
  work: () => Promise<T>,
): Promise<PgCpuMeasurement<T>> {
  const before = await snapshotPgCpu(target.postmasterPid, target.database);
  const result = await work();
  const after = await snapshotPgCpu(target.postmasterPid, target.database);
  const of = (pids: number[]) =>
    pids.reduce((sum, pid) => sum + (after.ns.get(pid) ?? 0) - (before.ns.get(pid) ?? 0), 0);
  return { result, cpuNs: pgCpuNs(before, after), wallMs: after.at - before.at, of };
}
