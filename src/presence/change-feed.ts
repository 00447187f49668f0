import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { readChangesAfter, type StatusChange } from './changes.js';

export interface ChangeFeedOptions {
  db: Kysely<Database>;
  logger: Logger;
  /** The position already seen: reading starts after it. */
  after: number;
  onChanges: (changes: StatusChange[]) => void;
  batchSize?: number;
  /** After a failed read, when to try again without waiting for a wake-up. */
  retryMs?: number;
}

export interface ChangeFeed {
  /** Something may have been appended: read the log from the last position seen. */
  wake(): void;
  /** The last position delivered. */
  readonly position: number;
  stop(): void;
}

/**
 * Reads the change log in order from the last position seen, and hands each batch on. Wake-ups
 * arriving during a read are merged into one more read, so a storm of notifications costs a few
 * queries. Positions are handed out in commit order (see migrations/0002), so reading everything
 * after the last position can never skip a change that committed late.
 */
export function createChangeFeed(options: ChangeFeedOptions): ChangeFeed {
  const { db, logger, onChanges } = options;
  const batchSize = options.batchSize ?? 1_000;
  const retryMs = options.retryMs ?? 1_000;
  let position = options.after;
  let reading = false;
  let again = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  /** A failure to hand changes on is not a failure to read: the position still moves on. */
  const publish = (batch: StatusChange[]) => {
    try {
      onChanges(batch);
    } catch (error) {
      logger.error({ err: error }, 'could not publish changes');
    }
  };

  const read = async () => {
    reading = true;
    try {
      do {
        // A wake-up during the read sets this again; so does a full batch (there may be more).
        again = false;
        const batch = await readChangesAfter(db, position, batchSize);
        if (stopped) return;
        const last = batch.at(-1);
        if (last) {
          position = last.position;
          publish(batch);
        }
        if (batch.length === batchSize) again = true;
      } while (again && !stopped);
    } catch (error) {
      logger.warn({ reason: (error as Error).message }, 'could not read the change log');
      clearTimeout(retryTimer);
      if (!stopped) retryTimer = setTimeout(wake, retryMs);
    } finally {
      reading = false;
    }
  };

  const wake = () => {
    if (stopped) return;
    if (reading) {
      again = true;
      return;
    }
    void read();
  };

  return {
    wake,
    get position() {
      return position;
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
    },
  };
}
