import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** Structured JSON lines on stdout. Nothing that could hold a key is ever passed to it. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'presently' } });
}
