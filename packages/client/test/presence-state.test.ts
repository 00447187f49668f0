import { backoffDelay, createPresenceState, type PresenceChange } from 'presently-client';
import { describe, expect, it } from 'vitest';

// The client-side state and the reconnection delays: plain functions, no service needed.

const change = (fields: Partial<PresenceChange> & { user: string }): PresenceChange => ({
  status: 'available',
  previous: null,
  time: 100,
  position: 1,
  ...fields,
});

describe('the presence state', () => {
  it('takes a snapshot whole, then applies changes and keeps the counts', () => {
    const state = createPresenceState();
    expect(state.complete).toBe(false);
    state.applyList([
      { user: 'a', status: 'available', time: 10 },
      { user: 'b', status: 'busy', time: 20 },
    ]);
    state.applyCounts({ available: 1, busy: 1, away: 0 });
    expect(state.complete).toBe(true);

    state.applyChange(change({ user: 'c', status: 'busy', time: 30 }));
    state.applyChange(change({ user: 'a', status: 'busy', previous: 'available', time: 40 }));
    expect(state.counts).toEqual({ available: 0, busy: 3, away: 0 });
    expect(state.users.get('a')).toEqual({ status: 'busy', time: 40 });

    // Away by timeout is dated by the timeout; the last ping stays what "last seen" shows.
    state.applyChange(change({ user: 'b', status: 'away', previous: 'busy', time: 80 }));
    expect(state.users.get('b')).toEqual({ status: 'away', time: 20 });
    // A row deleted with SQL.
    state.applyChange(change({ user: 'c', status: null, previous: 'busy' }));
    expect(state.users.has('c')).toBe(false);
    expect(state.counts).toEqual({ available: 0, busy: 1, away: 1 });
  });

  it("keeps each user's status message from snapshots and changes, only while one is set", () => {
    const state = createPresenceState();
    state.applyList([
      { user: 'a', status: 'busy', time: 10, message: 'in a meeting' },
      { user: 'b', status: 'available', time: 20 },
    ]);
    expect(state.users.get('a')).toEqual({ status: 'busy', time: 10, message: 'in a meeting' });
    expect(state.list('busy')).toEqual([
      { user: 'a', status: 'busy', time: 10, message: 'in a meeting' },
    ]);
    // A message set without a change of status is announced as a change of the same status.
    state.applyChange(
      change({ user: 'b', status: 'available', previous: 'available', time: 30, message: 'lunch' }),
    );
    expect(state.users.get('b')).toEqual({ status: 'available', time: 30, message: 'lunch' });
    expect(state.counts).toEqual({ available: 0, busy: 0, away: 0 });
    // Going away keeps the message the change carries; a change without one clears it.
    state.applyChange(
      change({ user: 'a', status: 'away', previous: 'busy', time: 90, message: 'in a meeting' }),
    );
    expect(state.users.get('a')).toEqual({ status: 'away', time: 10, message: 'in a meeting' });
    state.applyChange(change({ user: 'a', status: 'available', previous: 'away', time: 95 }));
    expect(state.users.get('a')).toEqual({ status: 'available', time: 95 });
    expect(Object.keys(state.list()[0] ?? {})).toEqual(['user', 'status', 'time']);
  });

  it('lists by status, ids in numeric order', () => {
    const state = createPresenceState();
    state.applyList(
      ['10', '9', 'b', 'a'].map((user, i) => ({
        user,
        status: i % 2 ? 'busy' : 'available',
        time: 1,
      })),
    );
    expect(state.list().map((u) => u.user)).toEqual(['9', '10', 'a', 'b']);
    expect(state.list('busy').map((u) => u.user)).toEqual(['9', 'a']);
    expect(state.list('away')).toEqual([]);
  });

  it('empties on a clear, and on a resync until the next snapshot', () => {
    const state = createPresenceState();
    let updates = 0;
    state.onUpdate(() => updates++);
    state.applyList([{ user: 'a', status: 'available', time: 1 }]);
    state.applyCleared();
    expect(state.users.size).toBe(0);
    expect(state.complete).toBe(true);
    state.applyList([{ user: 'a', status: 'available', time: 1 }]);
    state.reset();
    expect(state.users.size).toBe(0);
    expect(state.counts).toEqual({ available: 0, busy: 0, away: 0 });
    expect(state.complete).toBe(false);
    expect(updates).toBe(4);
  });
});

describe('the reconnection delay', () => {
  it('doubles from the first, is capped, and half of it is random', () => {
    const options = { initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, { ...options, random: () => 0 })).toBe(50);
    expect(backoffDelay(0, { ...options, random: () => 0.999_999 })).toBe(100);
    expect(backoffDelay(3, { ...options, random: () => 0 })).toBe(400);
    expect(backoffDelay(4, { ...options, random: () => 0.999_999 })).toBe(1000);
    expect(backoffDelay(5000, { ...options, random: () => 0.5 })).toBe(750);
    for (let attempt = 0; attempt < 50; attempt++) {
      const delay = backoffDelay(attempt);
      expect(delay).toBeGreaterThanOrEqual(250);
      expect(delay).toBeLessThanOrEqual(30_000);
    }
  });
});
