// The capacity model: from the measured costs, what N users pinging every T seconds, with a
// share c of pings changing a status, ask of one primary. Linear in what it counts, nothing
// fitted: each term is a measured cost times a rate.
//
//   pings/s        P = N / T
//   statements/s   S = P / b          (b: pings per statement, from group commit)
//   changes/s      X = c P
//   notifying commits/s  K = S (1 - (1 - c)^b)   (a batch notifies if any of its pings changes)
//   CPU µs/s       P hb(b) + X dch(X/K) + K I inst + I sweep(N)
//
// hb(b): PostgreSQL CPU per heartbeat in batches of b; dch(k): the extra CPU of a change when a
// commit carries k of them (log row, log lock, totals, NOTIFY); inst: one instance's CPU per
// notifying commit (its LISTEN backend waking, its read of the log); sweep(N): one scan of N
// users, which every instance runs each second.
//
// The commit order: a notifying commit holds the log lock from its first deferred append through
// its commit (the appends, the totals, the WAL flush, the NOTIFY queue), so those sections run one
// at a time. Measured with many writers at once, a section takes t(k) = 1 / (commits per second)
// with k changes per commit; a line through k = 1 and k = 100 gives t0 per commit and t1 per
// change, and the lock is busy a share K t0 + X t1 of every second, which must stay under 1.
// More cores do not shorten the flush; they do shorten the CPU part, which this model ignores.

export interface MeasuredCosts {
  /** rows per statement -> µs per heartbeat row. */
  heartbeat: Map<number, number>;
  /** changes per commit -> extra µs per change over a heartbeat in the same batch size. */
  changeExtra: Map<number, number>;
  /** changes per commit -> µs per notifying commit, per listening instance. */
  instancePerCommit: Map<number, number>;
  /** µs of one idle sweep per user in the table (at the largest size measured). */
  sweepPerUser: number;
  /** Seconds the commit order is held per notifying commit, and per change in it. */
  serial: { perCommitS: number; perChangeS: number };
  /**
   * The same without others on the machine: the WAL flush plus the CPU of the commit's work,
   * without waiting for a core (see capacity-report.ts). The 16-core carry-over uses it.
   */
  quietSerial?: { flushS: number; perCommitS: number; perChangeS: number };
}

export interface Scenario {
  users: number;
  intervalS: number;
  changeShare: number;
}

/** Pings one instance takes per second (docs/performance.md: 4,900-6,400 over HTTP, ~1 core). */
export const PINGS_PER_INSTANCE = 5_000;

export interface Load {
  pings: number;
  changes: number;
  instances: number;
  statements: (b: number) => number;
  notifying: (b: number) => number;
  cores: (b: number) => number;
  /** Share of each second the commit order is taken (over 1: cannot be carried). */
  commitOrder: (b: number) => number;
}

export function load(s: Scenario, m: MeasuredCosts): Load {
  const pings = s.users / s.intervalS;
  const changes = pings * s.changeShare;
  const instances = Math.max(2, Math.ceil(pings / PINGS_PER_INSTANCE));
  const statements = (b: number) => pings / b;
  const notifying = (b: number) =>
    Math.min(changes, statements(b) * (1 - (1 - s.changeShare) ** b));
  const cores = (b: number) => {
    const k = notifying(b);
    const perCommit = k > 0 ? changes / k : 1;
    const us =
      pings * nearest(m.heartbeat, b) +
      changes * nearest(m.changeExtra, perCommit) +
      k * instances * nearest(m.instancePerCommit, perCommit) +
      instances * m.sweepPerUser * s.users;
    return us / 1e6;
  };
  const commitOrder = (b: number) =>
    notifying(b) * m.serial.perCommitS + changes * m.serial.perChangeS;
  return { pings, changes, instances, statements, notifying, cores, commitOrder };
}

/** The serial section per commit and per change, from the commit rates at 1 and k changes. */
export function serialSection(one: number, many: { k: number; commitsPerSecond: number }) {
  const perChangeS = Math.max(0, (1 / many.commitsPerSecond - 1 / one) / (many.k - 1));
  return { perCommitS: Math.max(0, 1 / one - perChangeS), perChangeS };
}

/** The measured value at the size nearest to `size` on a log scale. */
export function nearest(values: Map<number, number>, size: number): number {
  let best: [number, number] | undefined;
  for (const [at, value] of values) {
    const distance = Math.abs(Math.log(at) - Math.log(Math.max(1, size)));
    if (!best || distance < best[0]) best = [distance, value];
  }
  return best?.[1] ?? Number.NaN;
}

/** Users one primary of `cores` carries at interval T and share c, and what stops it. */
export function maxUsers(
  s: Omit<Scenario, 'users'>,
  m: MeasuredCosts,
  cores: number,
  b: number,
): { users: number; limit: 'CPU' | 'commit order' } {
  // Cores are not linear in N (instances step up), so search: the largest N that fits.
  const stops = (users: number) => {
    const l = load({ ...s, users }, m);
    if (l.cores(b) > cores) return 'CPU' as const;
    if (l.commitOrder(b) > 1) return 'commit order' as const;
    return undefined;
  };
  let low = 1_000;
  let high = 1_000_000_000;
  while (high / low > 1.01) {
    const mid = Math.sqrt(low * high);
    if (stops(mid)) high = mid;
    else low = mid;
  }
  return { users: low, limit: stops(high) ?? 'CPU' };
}
