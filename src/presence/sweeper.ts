import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { sweepAway } from './changes.js';

export interface Sweeper {
  start(): void;
  stop(): Promise<void>;
}

/**
 * Runs the away sweep (presently.sweep_away) every `intervalMs`, one run at a time. Every instance
 * runs it; the SQL makes concurrent runs safe, so no instance has to be elected to do it.
 */
export function createSweeper(options: {
  db: Kysely<Database>;
  logger: Logger;
  intervalMs: number;
}): Sweeper {
  const { db, logger, intervalMs } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  let failing = false;

  const run = async () => {
    try {
      const swept = await sweepAway(db);
      if (swept > 0) logger.debug({ swept }, 'users marked away');
      if (failing) logger.info('away sweep running again');
      failing = false;
    } catch (error) {
      // Logged once per outage: the database being away is reported elsewhere too.
      if (!failing) logger.warn({ reason: (error as Error).message }, 'away sweep failed');
      failing = true;
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run().finally(schedule);
    }, intervalMs);
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
