/**
 * Background work that grows with the data takes at most about a tenth of the time: work whose
 * runs typically take `t` comes again no sooner than `COST_FACTOR × t` after the last. Cheap
 * work runs at its own interval; work that costs seconds at a million users (a whole list, the
 * away sweep) comes every tens of seconds instead of taking a core.
 */
export const COST_FACTOR = 10;

/**
 * The cost a kind of work is judged by: a moving average, each run's cost taken at most at four
 * times the average (plus an interval), so that one run slowed by a database that stalled for
 * seconds does not hold the work back for a minute, while work that really grew is followed
 * within a few runs.
 */
export function typicalCost(previous: number, sample: number, intervalMs: number): number {
  if (previous === 0) return Math.min(sample, intervalMs);
  return 0.7 * previous + 0.3 * Math.min(sample, 4 * previous + intervalMs);
}

/** The wait before the next run of work of typical cost `costMs` and interval `intervalMs`. */
export const pacedInterval = (intervalMs: number, costMs: number): number =>
  Math.max(intervalMs, COST_FACTOR * costMs);
