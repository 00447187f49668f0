import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { type LogState, readChangesAfter, readLogState, type StatusChange } from './changes.js';

export interface ChangeFeedOptions {
  db: Kysely<Database>;
  logger: Logger;
  /** The position already seen: reading starts after it. */
  after: number;
  /** The identity of the database `after` was read from (migrations/0008). */
  identity: string;
  /**
   * Hands a batch on; the next batch waits for the promise, if any (changes go out in order,
   * and a feed that falls behind reads larger batches rather than piling up work).
   */
  onChanges: (changes: StatusChange[]) => unknown;
  /**
   * The log moved: it ends before the position read (an older copy restored, an asynchronous
   * replica promoted) or belongs to another database. Reading goes on from `position`, its
   * real end; whatever was delivered before may not be in it, so sockets must start over.
   */
  onMoved?: (position: number) => void;
  /** How often, at most, a read that found nothing checks that the log is still the same. */
  checkMs?: number;
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
  const checkMs = options.checkMs ?? 1_000;
  const { onMoved = () => {} } = options;
  let position = options.after;
  let identity = options.identity;
  let checkedAt = Date.now();
  let reading = false;
  let again = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  /** A failure to hand changes on is not a failure to read: the position still moves on. */
  const publish = async (batch: StatusChange[]) => {
    try {
      await onChanges(batch);
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
        // Nothing new: the usual answer, and also that of a log that moved back. Checking the
        // log's identity and end costs a round trip, so it is done at most every checkMs.
        if (batch.length === 0 && Date.now() - checkedAt >= checkMs) {
          checkedAt = Date.now();
          moved(await readLogState(db));
          if (stopped) return;
        }
        const last = batch.at(-1);
        if (last) {
          position = last.position;
          await publish(batch);
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

  /**
   * A log that ends before the position read, or of another database: positions up to its end
   * will never come (or were other changes), so reading starts over from there. A database
   * swapped under the service cuts its connections first, and the listener's reconnection wakes
   * the feed, so a read that finds nothing, and checks, follows every swap.
   */
  const moved = (state: LogState) => {
    if (state.identity === identity && state.end >= position) return;
    logger.warn(
      { from: position, to: state.end, sameDatabase: state.identity === identity },
      'the change log moved; sockets are told to resync',
    );
    position = state.end;
    identity = state.identity;
    try {
      onMoved(position);
    } catch (error) {
      logger.error({ err: error }, 'could not announce that the log moved');
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
