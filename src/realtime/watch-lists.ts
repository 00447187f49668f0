import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { readUsersJson } from '../presence/snapshots.js';
import { encodeJsonFrame } from './frames.js';
import type { Watch } from './watch.js';

/** A subscriber with a watch list, and the list it had when its snapshot was asked for. */
export interface ListRequest<S> {
  subscriber: S;
  users: ReadonlySet<string>;
}

/**
 * `online-users-list` frames for subscribers that follow lists of users: one read of the union
 * of their lists, then each subscriber's list in the list's order (by id), exactly the followed
 * users the service knows. Work in proportion to the lists asked for, not to the population.
 */
export async function readWatchLists<S>(
  db: Kysely<Database>,
  requests: ListRequest<S>[],
): Promise<Map<S, Buffer>> {
  const union = new Set<string>();
  for (const { users } of requests) for (const user of users) union.add(user);
  const rows = await readUsersJson(db, [...union]);
  // Each user's place in the list's order (by id, as PostgreSQL sorts): a subscriber's list is
  // its known users in that order, in time proportional to its own list.
  const rank = new Map(rows.map((row, index) => [row.user, index]));
  const frames = new Map<S, Buffer>();
  for (const { subscriber, users } of requests) {
    const places: number[] = [];
    for (const user of users) {
      const place = rank.get(user);
      if (place !== undefined) places.push(place);
    }
    places.sort((a, b) => a - b);
    const items = places.map((place) => (rows[place] as { json: string }).json);
    frames.set(subscriber, encodeJsonFrame('online-users-list', `[${items.join(',')}]`));
  }
  return frames;
}

/** The users of a watch list, or undefined for a subscriber following everyone. */
export const listedUsers = (watch: Watch): ReadonlySet<string> | undefined =>
  watch === 'all' ? undefined : watch;
