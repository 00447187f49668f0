import type { CheckResult, Drain } from './check.js';
import type { Sample } from './monitor.js';
import type { Descriptors } from './proc.js';

// PASS or FAIL, criterion by criterion. Memory and descriptors are judged on the samples after
// a warm-up: the median of the last third against the median of the first third, so that a
// single spike (a snapshot being sent, a GC not yet run) does not decide.

export interface Criterion {
  name: string;
  pass: boolean;
  /** Not judged (the run is too short for it): does not fail the run. */
  skipped?: boolean;
  detail: string;
}

/** Below this, the service's heap is still growing to its working size: memory is not judged. */
export const MEMORY_MIN_MINUTES = 3;

export function judge(input: {
  samples: Sample[];
  warmupS: number;
  checks: CheckResult[];
  drain: Drain | undefined;
  http: { requests: number; fiveXx: number; failures: number; otherErrors: number };
  positionViolations: number;
  rssGrowthLimit: number;
  fdMargin: number;
  requestTimeoutS: number;
  minutes: number;
  aborted: string | undefined;
}): Criterion[] {
  const criteria: Criterion[] = [];
  const add = (name: string, pass: boolean, detail: string) =>
    criteria.push({ name, pass, detail });
  if (input.aborted) add('run completed', false, input.aborted);

  const steady = input.samples.filter((s) => s.t > input.warmupS);
  const third = Math.floor(steady.length / 3);
  if (third < 1) {
    add('memory flat', false, `only ${steady.length} samples after warm-up: run longer`);
  } else {
    const first = median(steady.slice(0, third).map((s) => s.rssMiB));
    const last = median(steady.slice(-third).map((s) => s.rssMiB));
    const growth = (last - first) / first;
    add(
      'memory flat',
      growth <= input.rssGrowthLimit,
      `RSS median ${first.toFixed(1)} MiB (first third after ${input.warmupS} s warm-up) -> ` +
        `${last.toFixed(1)} MiB (last third): ${pct(growth)} (limit ${pct(input.rssGrowthLimit, 0)})`,
    );
    if (input.minutes < MEMORY_MIN_MINUTES) {
      const memory = criteria[criteria.length - 1] as Criterion;
      memory.skipped = true;
      memory.detail += `; not judged under ${MEMORY_MIN_MINUTES} minutes (still warming up)`;
    }
    // Descriptors other than accepted connections, plus connections the peer closed and the
    // service did not: what a leak of sockets, timers' handles or pool connections would grow.
    const kept = (x: Sample) => x.fds.other + x.fds.closeWait;
    const firstFds = median(steady.slice(0, third).map(kept));
    const lastFds = median(steady.slice(-third).map(kept));
    const overSockets = median(steady.map((x) => x.fds.total - (x.socketsOpen ?? x.clientSockets)));
    const drain = input.drain;
    const back = drain && drain.after.total - drain.before.total;
    add(
      'descriptors flat',
      lastFds - firstFds <= input.fdMargin && back !== undefined && back <= input.fdMargin,
      `descriptors other than accepted connections, plus connections left in CLOSE_WAIT: ` +
        `median ${firstFds} (first third) -> ${lastFds} (last third); descriptors over ` +
        `sockets_open: median ${overSockets}; after every socket closed: ` +
        `${show(drain?.after)} (before any was opened: ${show(drain?.before)}); margin ${input.fdMargin}`,
    );
  }

  const mismatched = input.checks.filter((c) => !c.socketsMatch);
  add(
    'sockets_open matches the live sockets',
    input.checks.length > 0 && mismatched.length === 0 && input.drain?.socketsOpen === 0,
    `${input.checks.length - mismatched.length}/${input.checks.length} checks matched` +
      (mismatched.length
        ? ` (${mismatched.map((c) => `${c.label}: ${c.socketsOpen} vs ${c.liveSockets}`).join(', ')})`
        : '') +
      `; after every socket closed: ${input.drain?.socketsOpen ?? '?'}`,
  );

  const checked = input.checks.reduce((sum, c) => sum + c.checked, 0);
  const stale = input.checks.reduce((sum, c) => sum + c.stale, 0);
  add(
    'no stale view',
    input.checks.length > 0 && stale === 0 && input.positionViolations === 0,
    `${stale} stale of ${checked} views compared over ${input.checks.length} checks; ` +
      `${input.positionViolations} changes with a position not above the previous one`,
  );

  const { http } = input;
  add(
    'no 5xx',
    http.fiveXx === 0,
    `${http.fiveXx} 5xx of ${http.requests} requests` +
      (http.otherErrors ? ` (and ${http.otherErrors} other answers that are not 2xx)` : ''),
  );
  add(
    'every request answered',
    http.failures === 0,
    `${http.failures} of ${http.requests} requests got no answer (refused, reset, or none ` +
      `within ${input.requestTimeoutS} s)`,
  );
  return criteria;
}

const show = (fds: Descriptors | undefined) =>
  fds ? `${fds.total} fds, ${fds.accepted} accepted connections` : '?';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const pct = (n: number, digits = 1) => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(digits)}%`;
