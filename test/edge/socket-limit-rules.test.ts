import type { Context } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFrameRate, createSocketCounter } from '../../src/edge/socket-limits.js';
import { AppError } from '../../src/errors.js';

// The socket limits (src/ws/limits.ts) in process. test/ws/limits.test.ts checks them through
// the real service; these are the rules themselves, where mutation testing can reach them.

/** What the upgrade check sees of a request from `address`. */
const from = (address: string) =>
  ({ env: { incoming: { socket: { remoteAddress: address } } } }) as unknown as Context;

/** Whether the check lets a socket from `address` through (a 429 AppError when not). */
async function admits(check: ReturnType<typeof createSocketCounter>['check'], address: string) {
  let passed = false;
  try {
    await check(from(address), async () => {
      passed = true;
    });
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'too_many_sockets', status: 429 });
    expect((error as Error).message).toBe('at most 2 sockets may be open from one address');
    return false;
  }
  expect(passed).toBe(true);
  return true;
}

describe('sockets per address', () => {
  it('admits up to the limit from one address, and other addresses on their own count', async () => {
    const counter = createSocketCounter(2);
    expect(await admits(counter.check, '10.0.0.1')).toBe(true);
    counter.opened('10.0.0.1');
    expect(await admits(counter.check, '10.0.0.1')).toBe(true);
    counter.opened('10.0.0.1');
    expect(await admits(counter.check, '10.0.0.1')).toBe(false);
    expect(await admits(counter.check, '10.0.0.2')).toBe(true);
  });

  it('admits again once a socket closes, and a close never counts below zero', async () => {
    const counter = createSocketCounter(2);
    counter.opened('a');
    counter.opened('a');
    counter.closed('a');
    expect(await admits(counter.check, 'a')).toBe(true);
    // One of two closed leaves room for one more, and no more than that.
    counter.opened('a');
    expect(await admits(counter.check, 'a')).toBe(false);
    counter.closed('a');
    counter.closed('a');
    // A close with nothing open (never counted) must not leave room for a third socket.
    counter.closed('a');
    counter.closed('b');
    expect(counter.addresses).toBe(0);
    for (const address of ['a', 'b']) {
      counter.opened(address);
      counter.opened(address);
      expect(await admits(counter.check, address)).toBe(false);
    }
  });

  it('has no limit at 0', async () => {
    const counter = createSocketCounter(0);
    for (let i = 0; i < 5; i++) counter.opened('a');
    let passed = false;
    await counter.check(from('a'), async () => {
      passed = true;
    });
    expect(passed).toBe(true);
  });
});

describe('frames per second', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes up to the rate, refuses up to twice it, then closes; a new second starts afresh', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const frame = createFrameRate(2);
    expect([frame(), frame(), frame(), frame(), frame()]).toEqual([
      'take',
      'take',
      'refuse',
      'refuse',
      'close',
    ]);
    vi.advanceTimersByTime(999);
    expect(frame()).toBe('close');
    vi.advanceTimersByTime(1);
    expect([frame(), frame(), frame()]).toEqual(['take', 'take', 'refuse']);
  });

  it('takes everything at 0', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const frame = createFrameRate(0);
    expect(Array.from({ length: 10 }, frame).every((verdict) => verdict === 'take')).toBe(true);
  });
});
