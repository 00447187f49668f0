import { z } from 'zod';
import { AppError } from '../errors.js';
import { userId } from '../presence/validation.js';
import type { Watch } from './watch.js';

const invalid = (message: string) => new AppError('invalid_subscription', 400, message);

/**
 * Reads a `subscribe` event's data, `{"users": [id, ...]}` or `{"users": "all"}`; throws an
 * `invalid_subscription` AppError saying what is wrong, and nothing changes.
 */
export function parseSubscription(data: unknown, maxUsers: number): Watch {
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !('users' in data)) {
    throw invalid('subscribe takes {"users": [id, ...]} or {"users": "all"}');
  }
  const { users } = data as { users: unknown };
  if (users === 'all') return 'all';
  if (!Array.isArray(users)) {
    throw invalid('users must be a list of ids or "all"');
  }
  if (users.length > maxUsers) {
    throw invalid(`a socket may follow at most ${maxUsers} users by id; follow "all" instead`);
  }
  const ids = new Set<string>();
  users.forEach((value, at) => {
    const parsed = userId.safeParse(value);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw invalid(`users[${at}] is not a valid id: ${reason}`);
    }
    ids.add(parsed.data);
  });
  return ids;
}

/** `users` in a socket's connect query: `all` (the default) or `none`. */
export function parseConnectWatch(text: string | undefined): Watch {
  if (text === undefined || text === 'all') return 'all';
  if (text === 'none') return new Set();
  throw invalid('users in the query must be "all" or "none"; follow ids with a subscribe event');
}

export const connectWatchSchema = z
  .enum(['all', 'none'])
  .meta({ description: 'all (default): every user; none: counts only until a subscribe event' });
