/**
 * What one subscriber follows: everyone (the seed's behaviour), or a set of user ids (empty:
 * nobody, counts only).
 */
export type Watch = 'all' | ReadonlySet<string>;

/**
 * Who follows whom, for any transport: a change is matched to the subscribers that follow its
 * user through an index from user to subscribers, in time proportional to those subscribers,
 * never by scanning every subscriber's list. A subscriber that follows everyone is one entry,
 * not one per user.
 */
export interface WatchIndex<S> {
  /** Replaces what `subscriber` follows. */
  set(subscriber: S, watch: Watch): void;
  /** Forgets `subscriber` (it closed). */
  remove(subscriber: S): void;
  /** What `subscriber` follows; everyone for one never set. */
  watchOf(subscriber: S): Watch;
  /** Whether `subscriber` was set (and not removed since). */
  has(subscriber: S): boolean;
  /**
   * Visits the subscribers a change of `user` concerns: those following everyone, then those
   * naming it (a callback, not a generator: this runs for every follower of every change).
   */
  eachFollower(user: string, visit: (subscriber: S) => void): void;
  /** Subscribers following everyone. */
  readonly everyone: ReadonlySet<S>;
}

export function createWatchIndex<S>(): WatchIndex<S> {
  const everyone = new Set<S>();
  const lists = new Map<S, ReadonlySet<string>>();
  const byUser = new Map<string, Set<S>>();

  const unlist = (subscriber: S) => {
    const users = lists.get(subscriber);
    if (!users) return;
    lists.delete(subscriber);
    for (const user of users) {
      const followers = byUser.get(user);
      followers?.delete(subscriber);
      if (followers?.size === 0) byUser.delete(user);
    }
  };

  const index: WatchIndex<S> = {
    set(subscriber, watch) {
      index.remove(subscriber);
      if (watch === 'all') {
        everyone.add(subscriber);
        return;
      }
      lists.set(subscriber, watch);
      for (const user of watch) {
        const followers = byUser.get(user);
        if (followers) followers.add(subscriber);
        else byUser.set(user, new Set([subscriber]));
      }
    },
    remove(subscriber) {
      everyone.delete(subscriber);
      unlist(subscriber);
    },
    watchOf(subscriber) {
      return lists.get(subscriber) ?? 'all';
    },
    has: (subscriber) => everyone.has(subscriber) || lists.has(subscriber),
    eachFollower(user, visit) {
      for (const subscriber of everyone) visit(subscriber);
      const followers = byUser.get(user);
      if (followers) for (const subscriber of followers) visit(subscriber);
    },
    everyone,
  };
  return index;
}
