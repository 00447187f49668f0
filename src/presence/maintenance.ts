import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { sweepAway } from './changes.js';
import { createPeriodicTask } from './periodic.js';
import { pruneAllHistory } from './retention.js';

/** Sockets learn of a timeout within about this long of it. */
const SWEEP_INTERVAL_MS = 1_000;
/** History past its retention is pruned about this often. */
const PRUNE_INTERVAL_MS = 60_000;

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
}): Maintenance {
  const { db, logger, historyRetentionDays } = options;
  let stopping = false;
  const sweeper = createPeriodicTask({
    name: 'away sweep',
    logger,
    intervalMs: SWEEP_INTERVAL_MS,
    run: async () => {
      const swept = await sweepAway(db);
      if (swept > 0) logger.debug({ swept }, 'users marked away');
    },
  });
  const pruner = createPeriodicTask({
    name: 'history pruning',
    logger,
    intervalMs: PRUNE_INTERVAL_MS,
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
