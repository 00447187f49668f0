import type {
  Counts,
  OnlineUser,
  PresenceChange,
  PresenceCleared,
  Status,
  StatusFilter,
} from './protocol.js';
import type { PresenceSocket } from './socket-client.js';

export interface UserPresence {
  status: Status;
  /** Unix time in whole seconds of the user's last ping, as far as this client knows. */
  time: number;
  /** The user's status message, only while one is set. */
  message?: string;
}

export interface PresenceState {
  readonly users: ReadonlyMap<string, UserPresence>;
  readonly counts: Readonly<Counts>;
  /** False from a resync (or before the first snapshot) until the next snapshot. */
  readonly complete: boolean;
  applyList(users: OnlineUser[]): void;
  applyCounts(counts: Counts): void;
  applyChange(change: PresenceChange): void;
  applyCleared(cleared?: PresenceCleared): void;
  /** Drops everything held: what a `resync` asks for. */
  reset(): void;
  /** Users with this status (or all), ordered by id, numbers in numeric order. */
  list(filter?: StatusFilter): OnlineUser[];
  /** Keeps this state up to date from a socket's events; returns a function that stops it. */
  follow(socket: PresenceSocket): () => void;
  /** Called after every change to the state. */
  onUpdate(listener: () => void): () => void;
}

const zeroCounts = (): Counts => ({ available: 0, busy: 0, away: 0 });

/** A user as held: `message` only while one is set, as the service sends it. */
const entry = (status: Status, time: number, message: string | undefined): UserPresence =>
  message === undefined ? { status, time } : { status, time, message };
const byId = new Intl.Collator('en', { numeric: true });

/**
 * A client's view of presence: users by id with status and time, and the counts. Snapshots
 * replace it whole; changes between snapshots are applied one by one, so that a client that
 * follows changes is as current as one that waits for the next snapshot.
 */
export function createPresenceState(): PresenceState {
  const users = new Map<string, UserPresence>();
  let counts = zeroCounts();
  let complete = false;
  const listeners = new Set<() => void>();
  const updated = () => {
    for (const listener of listeners) listener();
  };

  const state: PresenceState = {
    users,
    get counts() {
      return counts;
    },
    get complete() {
      return complete;
    },
    applyList(list) {
      users.clear();
      for (const { user, status, time, message } of list)
        users.set(user, entry(status, time, message));
      complete = true;
      updated();
    },
    applyCounts(next) {
      counts = { ...next };
      updated();
    },
    applyChange({ user, status, previous, time, message }) {
      const known = users.get(user);
      if (known) counts[known.status] -= 1;
      else if (previous) counts[previous] = Math.max(0, counts[previous] - 1);
      if (status === null) {
        users.delete(user);
      } else {
        // Going away is dated by the timeout; "last seen" stays the last ping.
        const lastPing = status === 'away' && known ? known.time : time;
        // A change carries the message as of the change: none there means none set.
        users.set(user, entry(status, lastPing, message));
        counts[status] += 1;
      }
      updated();
    },
    applyCleared() {
      users.clear();
      counts = zeroCounts();
      updated();
    },
    reset() {
      users.clear();
      counts = zeroCounts();
      complete = false;
      updated();
    },
    list(filter = 'all') {
      const shown: OnlineUser[] = [];
      for (const [user, presence] of users) {
        if (filter === 'all' || presence.status === filter) shown.push({ user, ...presence });
      }
      return shown.sort((a, b) => byId.compare(a.user, b.user));
    },
    follow(socket) {
      const stops = [
        socket.on('list', state.applyList),
        socket.on('counts', state.applyCounts),
        socket.on('change', state.applyChange),
        socket.on('cleared', state.applyCleared),
        socket.on('resync', state.reset),
      ];
      return () => {
        for (const stop of stops) stop();
      };
    },
    onUpdate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return state;
}
