import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Config {
  port: number;
  host: string;
  /** Unset: an embedded PostgreSQL server is started under `dataDir`. */
  databaseUrl: string | undefined;
  /**
   * A replica (or any copy) for reports and history; unset, or unreachable, they read the
   * primary (DATABASE_URL).
   */
  reportingDatabaseUrl: string | undefined;
  dataDir: string;
  /** Unset keys are generated and kept in `dataDir` (see keys.ts). */
  accessKey: string | undefined;
  accessKeySystem: string | undefined;
  awayTimeoutSeconds: number;
  /** Reports split days at midnight in this IANA zone. */
  reportTimezone: string;
  /** Finished history older than this is pruned. */
  historyRetentionDays: number;
  logLevel: LogLevel;
  /** Unset: readable lines when stdout is a terminal, JSON otherwise. */
  logFormat: LogFormat | undefined;
  /** /metrics without a key (for a scraper on a private network). */
  metricsPublic: boolean;
  /**
   * Browser origins allowed to call the API and open sockets besides the service's own: a
   * list, or '*' for any. Empty: same origin only.
   */
  corsOrigins: string[] | '*';
  /**
   * Processes serving HTTP and sockets on the one port (WORKERS; `auto`: one per core). 1: the
   * service runs in one process, as before.
   */
  workers: number;
  /** Flood limits; 0 turns one off. */
  limits: {
    requestsPerSecond: number;
    socketsPerAddress: number;
    framesPerSecond: number;
    /** Users one socket may follow by id (LIMIT_WATCH_USERS). */
    watchUsers: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

// Deployment tools often pass unset variables as empty strings; treat both alike.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

// Characters that travel unencoded in `?key=`: a `+`, `&` or `%` would arrive as something else.
const key = z
  .string()
  .regex(
    /^[A-Za-z0-9._~-]+$/,
    'must use only letters, digits and - . _ ~ (to be sent as ?key= as is)',
  )
  .max(256, 'must be at most 256 characters');

const databaseUrl = z.string().refine((value) => {
  try {
    return ['postgres:', 'postgresql:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, 'must be a postgres:// or postgresql:// URL');

const timeZone = z.string().refine((zone) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as UTC or Europe/Paris');

const ORIGINS_RULE =
  'must be * or a comma-separated list of origins such as https://app.example.com';
const origins = z.string().transform((text, ctx) => {
  if (text.trim() === '*') return '*' as const;
  const list = text.split(',').map((origin) => origin.trim());
  for (const origin of list) {
    try {
      const url = new URL(origin);
      if (!['http:', 'https:'].includes(url.protocol) || url.origin !== origin) throw new Error();
    } catch {
      ctx.addIssue({ code: 'custom', message: ORIGINS_RULE });
      return z.NEVER;
    }
  }
  return list;
});

const LIMIT_RULE = 'must be a whole number, 0 for no limit';
const limit = z
  .string()
  .regex(/^\d{1,9}$/, LIMIT_RULE)
  .transform(Number);

const WATCH_RULE = 'must be a whole number from 1 to 100000';
const PORT_RULE = 'must be a whole number from 0 to 65535';
const AWAY_RULE = 'must be a number of seconds greater than 0 and at most 31536000 (a year)';
const WORKERS_RULE = 'must be a whole number from 1 to 1024, or auto (one per core)';
const RETENTION_RULE = 'must be a whole number of days from 1 to 36500';

const envSchema = z.object({
  PORT: optional(
    z
      .string()
      .regex(/^\d{1,5}$/, PORT_RULE)
      .transform(Number)
      .refine((port) => port <= 65535, PORT_RULE),
  ),
  HOST: optional(z.string().regex(/^\S+$/, 'must be a host name or address')),
  DATABASE_URL: optional(databaseUrl),
  REPORTING_DATABASE_URL: optional(databaseUrl),
  DATA_DIR: optional(z.string()),
  ACCESS_KEY: optional(key),
  ACCESS_KEY_SYSTEM: optional(key),
  AWAY_TIMEOUT_SECONDS: optional(
    z
      .string()
      .regex(/^(\d+(\.\d*)?|\.\d+)$/, AWAY_RULE)
      .transform(Number)
      .refine((seconds) => seconds > 0 && seconds <= 31_536_000, AWAY_RULE),
  ),
  REPORT_TIMEZONE: optional(timeZone),
  HISTORY_RETENTION_DAYS: optional(
    z
      .string()
      .regex(/^\d{1,5}$/, RETENTION_RULE)
      .transform(Number)
      .refine((days) => days >= 1 && days <= 36_500, RETENTION_RULE),
  ),
  LOG_LEVEL: optional(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` })),
  CORS_ORIGINS: optional(origins),
  LIMIT_REQUESTS_PER_SECOND: optional(limit),
  LIMIT_SOCKETS_PER_ADDRESS: optional(limit),
  LIMIT_FRAMES_PER_SECOND: optional(limit),
  LIMIT_WATCH_USERS: optional(
    z
      .string()
      .regex(/^\d{1,6}$/, WATCH_RULE)
      .transform(Number)
      .refine((users) => users >= 1 && users <= 100_000, WATCH_RULE),
  ),
  WORKERS: optional(
    z.union(
      [
        z.literal('auto').transform(() => os.availableParallelism()),
        z
          .string()
          .regex(/^\d{1,4}$/)
          .transform(Number)
          .refine((workers) => workers >= 1 && workers <= 1024),
      ],
      { error: WORKERS_RULE },
    ),
  ),
  LOG_FORMAT: optional(z.enum(LOG_FORMATS, { error: 'must be json or pretty' })),
  METRICS_PUBLIC: optional(
    z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
  ),
});

/** Reads the configuration from the environment, naming every invalid variable at once. */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    // Values are not echoed back: some of them are secrets.
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new ConfigError(problems);
  }
  const vars = parsed.data;
  return {
    port: vars.PORT ?? 3000,
    host: vars.HOST ?? '0.0.0.0',
    databaseUrl: vars.DATABASE_URL,
    reportingDatabaseUrl: vars.REPORTING_DATABASE_URL,
    dataDir: path.resolve(cwd, vars.DATA_DIR ?? './.data'),
    accessKey: vars.ACCESS_KEY,
    accessKeySystem: vars.ACCESS_KEY_SYSTEM,
    awayTimeoutSeconds: vars.AWAY_TIMEOUT_SECONDS ?? 60,
    reportTimezone: vars.REPORT_TIMEZONE ?? 'UTC',
    historyRetentionDays: vars.HISTORY_RETENTION_DAYS ?? 90,
    logLevel: vars.LOG_LEVEL ?? 'info',
    logFormat: vars.LOG_FORMAT,
    metricsPublic: vars.METRICS_PUBLIC ?? false,
    corsOrigins: vars.CORS_ORIGINS ?? [],
    workers: vars.WORKERS ?? 1,
    // Generous: many clients may share an address behind a proxy, and a client pings every few
    // seconds. These stop one client from taking an instance for itself, nothing more.
    limits: {
      requestsPerSecond: vars.LIMIT_REQUESTS_PER_SECOND ?? 20_000,
      socketsPerAddress: vars.LIMIT_SOCKETS_PER_ADDRESS ?? 20_000,
      framesPerSecond: vars.LIMIT_FRAMES_PER_SECOND ?? 1_000,
      watchUsers: vars.LIMIT_WATCH_USERS ?? 1_000,
    },
  };
}
