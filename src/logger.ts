import { type DestinationStream, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config.js';

export type { Logger };

/**
 * Fields censored wherever they appear at the top level or one level down, as a second line of
 * defence: the service never logs headers, query strings or configuration, but a future line
 * that did would still not carry a key.
 */
const REDACTED = [
  'authorization',
  'Authorization',
  'cookie',
  'key',
  'accessKey',
  'accessKeySystem',
];
export const REDACT_PATHS = REDACTED.flatMap((field) => [
  field,
  `*.${field}`,
  `headers.${field}`,
  `*.headers.${field}`,
]);

export interface LoggerOptions {
  /** Human-readable lines (pino-pretty) rather than JSON: for a person at a terminal. */
  pretty?: boolean;
  /** Where lines go (stdout by default): tests read them back. */
  destination?: DestinationStream;
  /** Fields on every line (a worker's number, with WORKERS > 1). */
  fields?: Record<string, unknown>;
}

/** Structured JSON lines on stdout, or readable ones for a terminal. */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const settings = {
    level,
    base: { service: 'presently', ...options.fields },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (options.pretty) {
    // In-process and synchronous, so the last lines before an exit are not lost.
    const stream = pretty({
      sync: true,
      destination: options.destination ?? 1,
      // Colours for the terminal (pino-pretty sees whether it is one), never for anything else.
      ...(options.destination ? { colorize: false } : {}),
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
    });
    return pino(settings, stream);
  }
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
