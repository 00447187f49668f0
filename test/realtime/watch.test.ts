import { describe, expect, it } from 'vitest';
import { createWatchIndex } from '../../src/realtime/watch.js';

// Who follows whom (src/realtime/watch.ts): a change finds its followers through the index.

const followers = (index: ReturnType<typeof createWatchIndex<string>>, user: string) => {
  const seen: string[] = [];
  index.eachFollower(user, (subscriber) => seen.push(subscriber));
  return seen;
};

describe('the watch index', () => {
  it('finds those following everyone, then those naming the user, each once', () => {
    const index = createWatchIndex<string>();
    index.set('all-1', 'all');
    index.set('ana-and-bo', new Set(['ana', 'bo']));
    index.set('bo-only', new Set(['bo']));
    index.set('nobody', new Set());
    expect(followers(index, 'ana')).toEqual(['all-1', 'ana-and-bo']);
    expect(followers(index, 'bo')).toEqual(['all-1', 'ana-and-bo', 'bo-only']);
    expect(followers(index, 'cy')).toEqual(['all-1']);
  });

  it('replaces what a subscriber follows, and forgets one removed', () => {
    const index = createWatchIndex<string>();
    index.set('s', new Set(['ana']));
    index.set('s', new Set(['bo']));
    expect(followers(index, 'ana')).toEqual([]);
    expect(followers(index, 'bo')).toEqual(['s']);
    index.set('s', 'all');
    expect(followers(index, 'bo')).toEqual(['s']);
    expect(index.watchOf('s')).toBe('all');
    index.remove('s');
    expect(followers(index, 'bo')).toEqual([]);
    expect(index.has('s')).toBe(false);
    // Never set: follows everyone (the seed's behaviour), though not registered.
    expect(index.watchOf('t')).toBe('all');
  });
});
