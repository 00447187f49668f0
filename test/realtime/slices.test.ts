import { describe, expect, it } from 'vitest';
import { inSlices } from '../../src/realtime/slices.js';

// Large snapshots are handed out in slices (src/realtime/slices.ts), so that work arriving
// meanwhile (the changes read from the log) runs between them.

describe('inSlices', () => {
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
