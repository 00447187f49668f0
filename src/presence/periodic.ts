import type { Logger } from '../logger.js';
import { pacedInterval, typicalCost } from '../pacing.js';

export interface PeriodicTask {
  start(): void;
  /** Stops scheduling and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `run` every `intervalMs`, one run at a time, the first one `firstAfterMs` after start;
 * with `paced`, no sooner than ten times a run's typical cost after the last (src/pacing.ts), so
 * that work growing with the data (the away sweep at a million users) never takes a core.
 * Every instance runs such tasks (the away sweep, history pruning): their SQL makes concurrent
 * runs safe, so no instance has to be elected. A failure is logged once per outage, since the
 * database being away is reported elsewhere too.
 */
export function createPeriodicTask(options: {
  name: string;
  logger: Logger;
  intervalMs: number;
  /** When the first run comes after start (default: `intervalMs`). */
  firstAfterMs?: number;
  paced?: boolean;
  run: () => Promise<void>;
}): PeriodicTask {
  const { name, logger, intervalMs, run } = options;
  let costMs = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  let failing = false;

  const runOnce = async () => {
    const started = performance.now();
    try {
      await run();
      // A failed run's time says how long the database took to fail, not what the work costs.
      costMs = typicalCost(costMs, performance.now() - started, intervalMs);
      if (failing) logger.info(`${name} running again`);
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ reason: (error as Error).message }, `${name} failed`);
      failing = true;
    }
  };

  const schedule = (delay = options.paced ? pacedInterval(intervalMs, costMs) : intervalMs) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce().finally(() => schedule());
    }, delay);
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(options.firstAfterMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
