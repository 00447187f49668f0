import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createShutdown, StartupAborted } from '../src/shutdown.js';

// Shutdown's rules (src/shutdown.ts) in process: the order of the steps, failures, signals during
// start-up, the second signal and the timeout. test/shutdown.test.ts and test/main.test.ts stop
// the real service; mutation testing cannot reach a child process, so the rules are checked here.

/** A logger whose lines the test reads back. */
function recordingLogger() {
  const lines: { level: number; msg: string; [field: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return {
    logger: pino({ level: 'debug' }, stream),
    messages: () => lines.map((l) => l.msg),
    /** The fields of the line with this message. */
    line: (msg: string) => lines.find((l) => l.msg === msg),
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

let exit: ReturnType<typeof vi.spyOn>;
let listeners: { SIGTERM: unknown[]; SIGINT: unknown[] };
beforeEach(() => {
  listeners = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') };
  // The process must not really exit: the test reads the code it would have exited with.
  exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const listener of process.listeners(signal)) {
      if (!listeners[signal].includes(listener)) process.off(signal, listener as () => void);
    }
  }
  process.exitCode = undefined;
});

describe('shutdown steps', () => {
  it('run newest first, once, and exit 0 when all succeed', async () => {
    const { logger, messages } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('pool'));
    shutdown.onStop(async () => void ran.push('server'));
    const first = shutdown.stop();
    expect(shutdown.stop()).toBe(first);
    expect(await first).toBe(true);
    expect(await shutdown.stop()).toBe(true);
    expect(ran).toEqual(['server', 'pool']);
    expect(process.exitCode).toBe(0);
    expect(messages()).toContain('stopped');
  });

  it('all run even after one fails, and the exit code is 1', async () => {
    const { logger, line } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('last'));
    shutdown.onStop(async () => {
      throw new Error('no');
    });
    shutdown.onStop(async () => void ran.push('first'));
    expect(await shutdown.stop()).toBe(false);
    expect(ran).toEqual(['first', 'last']);
    expect(process.exitCode).toBe(1);
    expect(line('shutdown step failed')?.err).toMatchObject({ message: 'no' });
  });
});

describe('signals', () => {
  it('stop at once once started, and log it', async () => {
    const { logger, messages, line } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('step'));
    shutdown.handleSignals(60_000);
    shutdown.started();
    expect(shutdown.stopRequested).toBe(false);
    process.emit('SIGTERM', 'SIGTERM');
    expect(shutdown.stopRequested).toBe(true);
    await settle();
    expect(ran).toEqual(['step']);
    expect(messages()).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
    expect(line('shutting down')?.signal).toBe('SIGTERM');
    expect(exit).not.toHaveBeenCalled();
  });

  it('SIGINT stops as SIGTERM does', async () => {
    const { logger } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('step'));
    shutdown.handleSignals(60_000);
    shutdown.started();
    process.emit('SIGINT', 'SIGINT');
    await settle();
    expect(ran).toEqual(['step']);
  });

  it('during start-up stop it at the next step, which is kept, and stop once started', async () => {
    const { logger } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('database'));
    shutdown.handleSignals(60_000);
    process.emit('SIGTERM', 'SIGTERM');
    await settle();
    // Not started: nothing stops yet (a migration is never cut short).
    expect(ran).toEqual([]);
    expect(() => shutdown.onStop(async () => void ran.push('listener'))).toThrow(StartupAborted);
    expect(await shutdown.stop()).toBe(true);
    expect(ran).toEqual(['listener', 'database']);
  });

  it('a signal before started() stops at started()', async () => {
    const { logger } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('step'));
    shutdown.handleSignals(60_000);
    process.emit('SIGTERM', 'SIGTERM');
    shutdown.started();
    await settle();
    expect(ran).toEqual(['step']);
  });

  it('started() without a signal stops nothing, and onStop keeps working', async () => {
    const { logger } = recordingLogger();
    const shutdown = createShutdown(logger);
    const ran: string[] = [];
    shutdown.onStop(async () => void ran.push('step'));
    shutdown.started();
    expect(() => shutdown.onStop(async () => void ran.push('late'))).not.toThrow();
    await settle();
    expect(ran).toEqual([]);
  });

  it('a second signal within a second is an echo; a later one exits 1 at once', async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const { logger, line } = recordingLogger();
    const shutdown = createShutdown(logger);
    shutdown.onStop(() => new Promise(() => {}));
    shutdown.handleSignals(60_000);
    shutdown.started();
    process.emit('SIGTERM', 'SIGTERM');
    vi.setSystemTime(1_000_999);
    process.emit('SIGTERM', 'SIGTERM');
    expect(exit).not.toHaveBeenCalled();
    vi.setSystemTime(1_001_000);
    process.emit('SIGINT', 'SIGINT');
    expect(exit).toHaveBeenCalledWith(1);
    expect(line('second signal: exiting now')?.signal).toBe('SIGINT');
  });

  it('exit 1 when the steps outlast the timeout, and not when they finish in time', async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const slow = recordingLogger();
    const hung = createShutdown(slow.logger);
    hung.onStop(() => new Promise(() => {}));
    hung.handleSignals(5_000);
    hung.started();
    process.emit('SIGTERM', 'SIGTERM');
    vi.advanceTimersByTime(4_999);
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(exit).toHaveBeenCalledWith(1);
    expect(slow.messages()).toContain('shutdown timed out: exiting now');

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      for (const listener of process.listeners(signal)) {
        if (!listeners[signal].includes(listener)) process.off(signal, listener as () => void);
      }
    }
    exit.mockClear();
    const quick = createShutdown(recordingLogger().logger);
    quick.onStop(async () => {});
    quick.handleSignals(5_000);
    quick.started();
    process.emit('SIGTERM', 'SIGTERM');
    await vi.advanceTimersByTimeAsync(0);
    expect(process.exitCode).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(exit).not.toHaveBeenCalled();
  });
});

describe('StartupAborted', () => {
  it('says what it is', () => {
    const error = new StartupAborted();
    expect(error.name).toBe('StartupAborted');
    expect(error.message).toBe('start-up aborted by a signal');
  });
});
