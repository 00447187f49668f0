import { afterEach, describe, expect, it, vi } from 'vitest';
import { inSlices } from '../../src/realtime/slices.js';

// Large snapshots are handed out in slices (src/realtime/slices.ts), so that work arriving
// meanwhile (the changes read from the log) runs between them.

afterEach(() => {
  vi.useRealTimers();
});

describe('inSlices', () => {
  it('answers the time spent on the items, the turns between slices left out', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    // Each item takes 10 ms, and queues other work that takes a second, in the next turn.
    const spent = await inSlices(
      [1, 2, 3, 4, 5],
      () => {
        vi.setSystemTime(Date.now() + 10);
        setImmediate(() => vi.setSystemTime(Date.now() + 1_000));
      },
      2,
    );
    expect(spent).toBe(50);
  });

  it('visits every item once, in order', async () => {
    const seen: number[] = [];
    await inSlices([1, 2, 3, 4, 5, 6, 7], (n) => seen.push(n), 3);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('lets work queued meanwhile run between slices, not before the first', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('other work'));
    await inSlices(['a', 'b', 'c', 'd', 'e'], (item) => order.push(item), 2);
    expect(order).toEqual(['a', 'b', 'other work', 'c', 'd', 'e']);
  });

  it('runs a set that fits one slice without a turn of the event loop', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('other work'));
    await inSlices(new Set(['a', 'b']), (item) => order.push(item), 2);
    order.push('done');
    expect(order).toEqual(['a', 'b', 'done']);
  });
});
