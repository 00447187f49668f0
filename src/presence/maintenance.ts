import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { sweepAway } from './changes.js';
import { createPeriodicTask } from './periodic.js';
import { pruneAllHistory } from './retention.js';

/**
 * Sockets learn of a timeout within about this long of it (or ten times a sweep's cost, when
 * that is longer: about 5 s at a million users of two sessions).
 */
const SWEEP_INTERVAL_MS = 1_000;
/** History past its retention is pruned about this often. */
const PRUNE_INTERVAL_MS = 60_000;
/**
 * And soon after start-up: a restart with a shorter retention, or after a long stop, prunes
 * without waiting a minute.
 */
const FIRST_PRUNE_AFTER_MS = 1_000;

export interface MaintenanceIntervals {
  sweepMs: number;
  pruneMs: number;
  firstPruneMs: number;
}

export interface Maintenance {
  start(): void;
  stop(): Promise<void>;
}

/**
 * What every instance does in the background: the away sweep (nothing writes when a user goes
 * away by time) and history pruning. Both are safe from several instances at once.
 */
export function createMaintenance(options: {
  db: Kysely<Database>;
  logger: Logger;
  historyRetentionDays: number;
  /** The constants above unless given (tests). */
  intervals?: Partial<MaintenanceIntervals>;
}): Maintenance {
  const { db, logger, historyRetentionDays } = options;
  const intervals: MaintenanceIntervals = {
    sweepMs: SWEEP_INTERVAL_MS,
    pruneMs: PRUNE_INTERVAL_MS,
    firstPruneMs: FIRST_PRUNE_AFTER_MS,
    ...options.intervals,
  };
  let stopping = false;
  const sweeper = createPeriodicTask({
    name: 'away sweep',
    logger,
    intervalMs: intervals.sweepMs,
    // A sweep reads every user and session: at a million users of two sessions it takes about
    // half a second of PostgreSQL's time, which every second would be half a core.
    paced: true,
    run: async () => {
      const swept = await sweepAway(db);
      if (swept > 0) logger.debug({ swept }, 'users marked away');
    },
  });
  const pruner = createPeriodicTask({
    name: 'history pruning',
    logger,
    intervalMs: intervals.pruneMs,
    firstAfterMs: intervals.firstPruneMs,
    run: async () => {
      const shouldStop = () => stopping;
      const pruned = await pruneAllHistory(db, historyRetentionDays, { shouldStop });
      if (pruned > 0) logger.info({ pruned }, 'history past its retention pruned');
    },
  });
  return {
    start() {
      stopping = false;
      sweeper.start();
      pruner.start();
    },
    async stop() {
      stopping = true;
      await Promise.all([sweeper.stop(), pruner.stop()]);
    },
  };
}
