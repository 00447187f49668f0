// The benchmark's users: ids 1..N (sent as JSON integers, stored as text), each with a heartbeat
// status of its own, so that a user who pings again with it changes nothing. Pings walk the
// users in a fixed permutation: N pings in a row name N different users (no batch ever holds
// a user twice, which the group commit would merge), spread over the whole table.

/** A prime: coprime with every table size the benchmark uses. */
export const STRIDE = 999_983;

export type Status = 'available' | 'busy';

export const heartbeatStatus = (user: number): Status => (user % 2 === 0 ? 'available' : 'busy');

export const otherStatus = (status: Status): Status =>
  status === 'available' ? 'busy' : 'available';

/** The SQL of heartbeatStatus, for an integer expression. */
export const heartbeatStatusSql = (user: string) =>
  `case when ${user} % 2 = 0 then 'available' else 'busy' end`;

/** Users 1..users in the benchmark's order, round and round. */
export function userWalk(users: number, start = 0): () => number {
  let i = start;
  return () => {
    const user = (((i % users) * STRIDE) % users) + 1;
    i += 1;
    return user;
  };
}

/**
 * The status each ping carries. Heartbeats: each user's own status, always. Mixed: a share of
 * pings flips its user's status (which the user keeps from then on), so about that share of
 * pings are changes. `changed()` says how many were sent; `flipped` which users no longer have
 * their heartbeat status. With `session`, every ping names that session of its user.
 */
export function pingBodies(users: number, changeShare = 0, start = 0, session?: string) {
  const next = userWalk(users, start);
  const named = session === undefined ? '' : `,"session":${JSON.stringify(session)}`;
  const flipped = new Set<number>();
  let changes = 0;
  return {
    next(): string {
      const user = next();
      if (changeShare > 0 && Math.random() < changeShare) {
        changes += 1;
        if (flipped.has(user)) flipped.delete(user);
        else flipped.add(user);
      }
      const status = flipped.has(user) ? otherStatus(heartbeatStatus(user)) : heartbeatStatus(user);
      return `{"id":${user},"status":"${status}"${named}}`;
    },
    changed: () => changes,
    flipped,
  };
}
