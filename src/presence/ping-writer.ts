import { type Kysely, sql } from 'kysely';
import type { Database, StatusCountsView } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { Ping } from './validation.js';

const QUEUE_TIMEOUT_MESSAGE = 'the database is not answering in time; retry shortly';

export interface PingWriter {
  /** Stores a ping; resolves with the counts that include it, once it has committed. */
  record(ping: Ping): Promise<StatusCountsView>;
  /**
   * Stores a group of pings (a bulk request) in one batch, never split, in their order: the
   * last ping of a user wins. Resolves with the counts that include them all, once committed.
   */
  recordMany(pings: readonly Ping[]): Promise<StatusCountsView>;
  /** Resolves once nothing is queued or being written (at once if idle): for shutdown. */
  drain(): Promise<void>;
}

interface Waiting {
  /** One ping, or a bulk request's group, which goes into one batch whole. */
  pings: readonly Ping[];
  resolve(counts: StatusCountsView): void;
  reject(error: unknown): void;
  /** Refuses the ping if it is still queued when it fires. */
  timer?: NodeJS.Timeout;
}

/**
 * Group commit. A ping is written at once when no write is in flight; pings arriving while
 * writes are in flight wait and go together in the next one, a multi-row upsert
 * (presently.ping_many) that costs about what one row does. So a quiet service answers a ping
 * in one round trip, and a busy one writes hundreds per statement instead of queueing them one
 * by one on the pool. Every ping is answered only after its batch has committed.
 */
export function createPingWriter(options: {
  db: Kysely<Database>;
  /** Batches written at the same time (each holds a pool connection). */
  maxInFlight?: number;
  maxBatch?: number;
  /** Told the size of every batch written (for metrics and tests). */
  onBatch?: (size: number) => void;
  /**
   * How long a ping may wait for its batch to start. While the database hangs, batches in
   * flight take up to their query timeout each; a ping queued behind them is refused (503)
   * rather than kept waiting for several of them in turn.
   */
  maxQueueMs?: number;
}): PingWriter {
  const { db, onBatch } = options;
  const maxInFlight = options.maxInFlight ?? 2;
  const maxBatch = options.maxBatch ?? 1_000;
  const maxQueueMs = options.maxQueueMs ?? 4_000;
  let queue: Waiting[] = [];
  let inFlight = 0;
  const drained: (() => void)[] = [];

  const write = async (batch: Waiting[]) => {
    const written = batch.flatMap((waiting) => waiting.pings);
    onBatch?.(written.length);
    for (const waiting of batch) clearTimeout(waiting.timer);
    try {
      const counts = await writePings(db, written);
      for (const waiting of batch) waiting.resolve(counts);
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
    }
  };

  const settleDrainIfIdle = () => {
    if (inFlight === 0 && queue.length === 0) {
      for (const resolve of drained.splice(0)) resolve();
    }
  };

  /**
   * Entries from the head of the queue up to maxBatch pings, at least one: a group of 1,000 goes
   * alone rather than split, so that it commits (or fails) as one.
   */
  const takeBatch = (): Waiting[] => {
    let end = 0;
    let size = 0;
    while (end < queue.length) {
      const next = queue[end]?.pings.length ?? 0;
      if (end > 0 && size + next > maxBatch) break;
      size += next;
      end += 1;
    }
    const batch = end === queue.length ? queue : queue.slice(0, end);
    queue = batch === queue ? [] : queue.slice(end);
    return batch;
  };

  const flush = () => {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      void write(batch).finally(() => {
        inFlight -= 1;
        flush();
        settleDrainIfIdle();
      });
    }
  };

  const enqueue = (group: readonly Ping[]) =>
    new Promise<StatusCountsView>((resolve, reject) => {
      const waiting: Waiting = { pings: group, resolve, reject };
      queue.push(waiting);
      flush();
      // Batches are taken from the head of the queue: still last means still waiting.
      if (queue.at(-1) !== waiting) return;
      waiting.timer = setTimeout(() => {
        const index = queue.indexOf(waiting);
        if (index < 0) return;
        queue.splice(index, 1);
        reject(new AppError('database_unavailable', 503, QUEUE_TIMEOUT_MESSAGE));
        settleDrainIfIdle();
      }, maxQueueMs);
    });

  return {
    record: (ping) => enqueue([ping]),
    recordMany: (group) => enqueue(group),
    drain() {
      if (inFlight === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => drained.push(resolve));
    },
  };
}

/**
 * One statement for many pings. A user's session pinging twice in a batch is written once, with
 * the later ping: the two arrived together, and the later one is the status that stays. Pings
 * are sorted by user then session (the default session first), so that concurrent batches lock
 * shared rows in one order and cannot deadlock (presently.ping_many, migrations/0007).
 */
export async function writePings(
  db: Kysely<Database>,
  pings: readonly Ping[],
): Promise<StatusCountsView> {
  const latest = new Map<string, Ping>();
  for (const ping of pings) latest.set(JSON.stringify([ping.id, ping.session ?? null]), ping);
  const sorted = [...latest.values()].sort(
    (a, b) => compare(a.id, b.id) || compare(a.session ?? '', b.session ?? ''),
  );
  const ids = sorted.map((ping) => ping.id);
  const statuses = sorted.map((ping) => ping.status);
  const named = sorted.some((ping) => ping.session !== undefined || ping.timeout !== undefined);
  const { rows } = named
    ? await sql<StatusCountsView>`
        select available, busy, away from presently.ping_many(
          ${ids}::text[], ${statuses}::text[],
          ${sorted.map((ping) => ping.session ?? null)}::text[],
          ${sorted.map((ping) => ping.timeout ?? null)}::float8[])
      `.execute(db)
    : await sql<StatusCountsView>`
        select available, busy, away from presently.ping_many(${ids}::text[], ${statuses}::text[])
      `.execute(db);
  const counts = rows[0];
  if (!counts) throw new Error('presently.ping_many returned no counts');
  return counts;
}

/** Byte order of UTF-16 code units matches the "C" collation for all but surrogates; as before. */
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
