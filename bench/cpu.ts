import fs from 'node:fs/promises';
import os from 'node:os';

// Where the CPU went during a measurement, from /proc: the service, the PostgreSQL server it uses,
// the load generator (this process and its children: pgbench, socket clients, the ceiling
// server) and everything else (other users of the machine, the kernel's own work such as
// loopback networking in softirq). Processes are sampled every `intervalMs`, so one that lives
// shorter than that (a pgbench backend ends with pgbench) is counted up to its last sample.

/** Percent of one core, averaged over the measurement (the machine has os.cpus().length). */
export interface CpuShare {
  service: number;
  postgres: number;
  loadGenerator: number;
  other: number;
  idle: number;
}

export interface CpuTargets {
  servicePid?: number | undefined;
  /** The postmaster of the database server under test (its children are its processes). */
  postmasterPid?: number | undefined;
  /** The database under test: backends of other databases on the same server are `other`. */
  database?: string | undefined;
}

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux build in practice

interface Seen {
  first: number;
  last: number;
  bornInside: boolean;
  group: keyof Omit<CpuShare, 'idle' | 'other'> | 'other';
}

export function startCpuSampler(targets: CpuTargets, intervalMs = 1_000) {
  const seen = new Map<number, Seen>();
  let startTicks = 0;
  let first: SystemTimes | undefined;
  let sampling: Promise<void> = Promise.resolve();

  const sample = async () => {
    const procs = await readProcesses();
    for (const p of procs) {
      const known = seen.get(p.pid);
      if (known) known.last = p.ticks;
      else {
        seen.set(p.pid, {
          first: p.ticks,
          last: p.ticks,
          bornInside: first !== undefined && p.startTicks > startTicks,
          group: await classify(p, targets),
        });
      }
    }
  };

  const started = (async () => {
    first = await readSystemTimes();
    startTicks = first.uptimeTicks;
    await sample();
  })();
  const timer = setInterval(() => {
    sampling = sampling.then(sample, sample);
  }, intervalMs);

  return {
    async stop(): Promise<CpuShare> {
      clearInterval(timer);
      await started;
      await sampling;
      await sample();
      const last = await readSystemTimes();
      const start = first ?? last;
      const seconds = Math.max(0.001, (last.uptimeTicks - start.uptimeTicks) / TICKS_PER_SECOND);
      const share: CpuShare = { service: 0, postgres: 0, loadGenerator: 0, other: 0, idle: 0 };
      for (const s of seen.values()) {
        if (s.group === 'other') continue;
        share[s.group] += s.last - (s.bornInside ? 0 : s.first);
      }
      const percent = (ticks: number) => round1((ticks / TICKS_PER_SECOND / seconds) * 100);
      const busy = last.busy - start.busy;
      const counted = share.service + share.postgres + share.loadGenerator;
      return {
        service: percent(share.service),
        postgres: percent(share.postgres),
        loadGenerator: percent(share.loadGenerator),
        other: percent(Math.max(0, busy - counted)),
        idle: percent(last.idle - start.idle),
      };
    },
  };
}

interface ProcessTimes {
  pid: number;
  ppid: number;
  ticks: number;
  startTicks: number;
}

async function classify(p: ProcessTimes, targets: CpuTargets): Promise<Seen['group']> {
  // With WORKERS > 1 the service is its primary and the workers, its children.
  if (p.pid === targets.servicePid || p.ppid === targets.servicePid) return 'service';
  if (p.pid === targets.postmasterPid) return 'postgres';
  if (p.ppid === targets.postmasterPid) {
    // A backend's title is "postgres: <user> <database> <host>(<port>) <state>".
    const title = await fs.readFile(`/proc/${p.pid}/cmdline`, 'utf8').catch(() => '');
    const backend = /^postgres: \S+ (\S+) [^ ]*\(\d+\)/.exec(title);
    return !backend || !targets.database || backend[1] === targets.database ? 'postgres' : 'other';
  }
  if (p.pid === process.pid || p.ppid === process.pid) return 'loadGenerator';
  return 'other';
}

async function readProcesses(): Promise<ProcessTimes[]> {
  const entries = await fs.readdir('/proc');
  const found: ProcessTimes[] = [];
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        try {
          const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8');
          // Fields after the command name (which may hold spaces), from field 3 (state) on.
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          found.push({
            pid: Number(name),
            ppid: Number(fields[1]),
            ticks: Number(fields[11]) + Number(fields[12]),
            startTicks: Number(fields[19]),
          });
        } catch {
          // The process ended meanwhile.
        }
      }),
  );
  return found;
}

interface SystemTimes {
  busy: number;
  idle: number;
  uptimeTicks: number;
}

async function readSystemTimes(): Promise<SystemTimes> {
  const [stat, uptime] = await Promise.all([
    fs.readFile('/proc/stat', 'utf8'),
    fs.readFile('/proc/uptime', 'utf8'),
  ]);
  const cpu = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    cpu;
  return {
    busy: user + nice + system + irq + softirq + steal,
    idle: idle + iowait,
    uptimeTicks: Number.parseFloat(uptime) * TICKS_PER_SECOND,
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

export const CORES = os.cpus().length;

export function formatCpu(share: CpuShare | undefined): string {
  if (!share) return '';
  return (
    `CPU % of a core: service ${share.service.toFixed(0)}, postgres ${share.postgres.toFixed(0)}, ` +
    `load generator ${share.loadGenerator.toFixed(0)}, other ${share.other.toFixed(0)}, ` +
    `idle ${share.idle.toFixed(0)} (of ${CORES * 100})`
  );
}
