import { afterEach, describe, expect, it, vi } from 'vitest';
import { COST_FACTOR } from '../../src/pacing.js';
import { createPeriodicTask } from '../../src/presence/periodic.js';
import { silentLogger } from '../helpers/database.js';

// Periodic work paced by its cost (src/presence/periodic.ts, src/pacing.ts), on a fake clock:
// what is measured is when runs start, not how fast the machine is.

afterEach(() => {
  vi.useRealTimers();
});

/** Start times of the runs of a task whose every run takes `runMs`, over `forMs`. */
async function runStarts(options: { runMs: number; intervalMs: number; paced: boolean }) {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
  const starts: number[] = [];
  const task = createPeriodicTask({
    name: 'work',
    logger: silentLogger,
    intervalMs: options.intervalMs,
    paced: options.paced,
    run: async () => {
      starts.push(performance.now());
      await new Promise((resolve) => setTimeout(resolve, options.runMs));
    },
  });
  task.start();
  await vi.advanceTimersByTimeAsync(20_000);
  const stopped = task.stop();
  await vi.advanceTimersByTimeAsync(options.runMs);
  await stopped;
  return starts;
}

const gaps = (starts: number[]) => starts.slice(1).map((at, i) => at - (starts[i] as number));

describe('a periodic task', () => {
  it('runs its interval after each run ends, unpaced, however long runs take', async () => {
    const starts = await runStarts({ runMs: 100, intervalMs: 10, paced: false });
    expect(new Set(gaps(starts))).toEqual(new Set([110]));
  });

  it('paced, comes no sooner than ten times its typical cost after the last run', async () => {
    const starts = await runStarts({ runMs: 100, intervalMs: 10, paced: true });
    const spacing = gaps(starts);
    // The cost's average settles at the run's 100 ms: the gap grows toward the run and ten times
    // it, never past, and never shorter than the interval after a run.
    expect(spacing.length).toBeGreaterThan(10);
    for (const [i, gap] of spacing.entries()) {
      expect(gap).toBeGreaterThanOrEqual(i === 0 ? 110 : (spacing[i - 1] as number));
      expect(gap).toBeLessThanOrEqual(100 + COST_FACTOR * 100);
    }
    expect(spacing.at(-1)).toBeGreaterThan(0.99 * (100 + COST_FACTOR * 100));
  });

  it('paced, keeps its interval while runs are cheap', async () => {
    const starts = await runStarts({ runMs: 1, intervalMs: 100, paced: true });
    expect(new Set(gaps(starts))).toEqual(new Set([101]));
  });
});
