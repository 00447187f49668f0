import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** This request reads reports or long history (set by the report gate). */
    report: boolean;
  }
}

export interface ReportGateOptions {
  /** Reports running at once: the report pool's size, so none waits there (2). */
  concurrency?: number;
  /** Reports that may wait for a place; beyond, refused at once (16). */
  queue?: number;
  /** How long one may wait for a place before it is refused (5 s). */
  waitMs?: number;
}

export interface ReportGate {
  /** Middleware for a report route: it runs only when a place is free. */
  guard: MiddlewareHandler;
  readonly running: number;
  readonly waiting: number;
}

/** Seconds a refused report should wait: a place frees when a report ends. */
const BUSY_RETRY_AFTER_SECONDS = 1;

/**
 * A bound on the reports this instance runs at once. Reports are the expensive requests: past
 * the bound they wait here, briefly and in order, rather than on the report pool, whose queue
 * has no bound; when too many wait, or one waits too long, it is refused with 503 and
 * Retry-After. Pings never pass here: they have a pool of their own.
 */
export function createReportGate(options: ReportGateOptions = {}): ReportGate {
  const concurrency = options.concurrency ?? 2;
  const queue = options.queue ?? 16;
  const waitMs = options.waitMs ?? 5_000;
  let running = 0;
  const waiting: (() => void)[] = [];

  const busy = () =>
    new AppError(
      'reports_busy',
      503,
      'too many reports are running; retry shortly',
      BUSY_RETRY_AFTER_SECONDS,
    );

  function acquire(): Promise<void> {
    if (running < concurrency) {
      running += 1;
      return Promise.resolve();
    }
    if (waiting.length >= queue) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(grant), 1);
        reject(busy());
      }, waitMs);
      waiting.push(grant);
    });
  }

  // A place that frees goes straight to the first waiting report: `running` stays as it is.
  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  }

  return {
    guard: async (c, next) => {
      c.set('report', true);
      await acquire();
      try {
        await next();
      } finally {
        release();
      }
    },
    get running() {
      return running;
    },
    get waiting() {
      return waiting.length;
    },
  };
}
