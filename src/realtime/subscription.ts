import { z } from 'zod';
import { AppError } from '../errors.js';
import { userId, userIdText } from '../presence/validation.js';
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

/**
 * `users` in a socket's connect query: absent or `all`, everyone (the seed's behaviour); `none`,
 * nobody (counts only); otherwise one `users=<id>` parameter per followed user, as a subscribe
 * would give them, so that a socket resuming with `since` hears only its users' missed changes.
 */
export function parseConnectWatch(values: string[] | undefined, maxUsers: number): Watch {
  if (values === undefined || values.length === 0) return 'all';
  if (values.length === 1 && values[0] === 'all') return 'all';
  if (values.length === 1 && values[0] === 'none') return new Set();
  if (values.length > maxUsers) {
    throw invalid(`a socket may follow at most ${maxUsers} users by id; follow "all" instead`);
  }
  const ids = new Set<string>();
  values.forEach((value, at) => {
    const parsed = userIdText.safeParse(value);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw invalid(`users (parameter ${at + 1}) is not a valid id: ${reason}`);
    }
    ids.add(parsed.data);
  });
  return ids;
}

export const connectWatchSchema = z.string().meta({
  description:
    'all (default): every user; none: nobody, counts only; or one users=<id> parameter per user to follow',
});
