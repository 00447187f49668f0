import type { Api, UserState } from './api.js';

// A user's sessions, override and message expiry come from `GET /users/{id}/status` only: list
// pages and socket frames carry the effective status and the message, nothing more, so that a
// page of a million users stays small. The dashboard reads that answer for the few users it
// shows (the page's rows and the user opened), and reads it again when the socket announces a
// change of one of them.

/**
 * Reads in flight at once: a page's fifty rows queue here, not in the browser, whose few
 * connections to the service stay free for the list, the charts and the opened user's day.
 */
const CONCURRENT_READS = 4;
/** An expiry is read again this long after it passes: the sweep ends it within about a second. */
const EXPIRY_SLACK_MS = 1_500;
/** Expiries further off than this are left to a later read (timers past ~24 days misfire). */
const LONGEST_WAIT_MS = 86_400_000;

export interface Devices {
  /** The users to know about; the others are forgotten, and those not yet known are read. */
  track(users: Iterable<string>): void;
  /** Reads a tracked user again (they changed); a read in flight is followed by another. */
  refresh(user: string): void;
  /** The user as last read, if tracked and read. */
  get(user: string): UserState | undefined;
  /** Forgets everything and stops reading. */
  stop(): void;
}

export function createDevices(
  api: Api,
  onUpdate: () => void,
  onError: (error: unknown) => void,
): Devices {
  const known = new Map<string, UserState>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  let tracked = new Set<string>();
  const queue = new Set<string>();
  const reading = new Set<string>();
  const again = new Set<string>();
  let stopped = false;

  const forget = (user: string) => {
    known.delete(user);
    clearTimeout(timers.get(user));
    timers.delete(user);
  };

  /** An override that ends while its status equals the merged one is announced by nobody. */
  const watchExpiry = (user: string, state: UserState) => {
    clearTimeout(timers.get(user));
    timers.delete(user);
    const ends = [state.override?.expires, state.message_expires]
      .filter((at): at is string => typeof at === 'string')
      .map((at) => Date.parse(at) - Date.now() + EXPIRY_SLACK_MS);
    const wait = Math.max(0, Math.min(...ends));
    if (ends.length > 0 && wait <= LONGEST_WAIT_MS) {
      timers.set(
        user,
        setTimeout(() => devices.refresh(user), wait),
      );
    }
  };

  const read = async (user: string) => {
    reading.add(user);
    try {
      const state = await api.userState(user);
      if (stopped || !tracked.has(user)) return;
      if (state) {
        known.set(user, state);
        watchExpiry(user, state);
      } else forget(user);
      onUpdate();
    } catch (error) {
      if (!stopped) onError(error);
    } finally {
      reading.delete(user);
      if (again.delete(user)) queue.add(user);
      pump();
    }
  };

  const pump = () => {
    for (const user of queue) {
      if (stopped || reading.size >= CONCURRENT_READS) return;
      queue.delete(user);
      if (tracked.has(user)) void read(user);
    }
  };

  const devices: Devices = {
    track(users) {
      tracked = new Set(users);
      for (const user of [...known.keys()]) if (!tracked.has(user)) forget(user);
      for (const user of queue) if (!tracked.has(user)) queue.delete(user);
      for (const user of tracked) {
        if (!known.has(user) && !reading.has(user)) queue.add(user);
      }
      pump();
    },
    refresh(user) {
      if (stopped || !tracked.has(user)) return;
      if (reading.has(user)) again.add(user);
      else queue.add(user);
      pump();
    },
    get: (user) => known.get(user),
    stop() {
      stopped = true;
      for (const user of [...known.keys()]) forget(user);
      for (const timer of timers.values()) clearTimeout(timer);
      queue.clear();
      again.clear();
    },
  };
  return devices;
}
