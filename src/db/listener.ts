import pg from 'pg';
import type { Logger } from '../logger.js';

export interface ListenerOptions {
  connectionString: string;
  channel: string;
  logger: Logger;
  /**
   * Called on every notification, after every (re)connection and after every successful check:
   * whatever happened while not listening must be read again by the caller.
   */
  onWake: () => void;
  /** How often to check that the connection still listens. */
  checkIntervalMs?: number;
  /** Reconnection delays: doubling from the first, capped, each with jitter. */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

export interface Listener {
  /** Starts listening in the background; retries until it connects or is stopped. */
  start(): void;
  readonly listening: boolean;
  /** Connections made so far, the first included. */
  readonly connections: number;
  stop(): Promise<void>;
}

export const LISTENER_APPLICATION_NAME = 'presently-listener';

/**
 * One dedicated connection per instance, outside the pool (a pooled connection would be handed
 * to queries and lose its LISTEN). It is kept alive, checked periodically, and replaced with
 * capped, jittered backoff when it fails.
 */
export function createListener(options: ListenerOptions): Listener {
  const { channel, logger, onWake } = options;
  const checkIntervalMs = options.checkIntervalMs ?? 5_000;
  const retryInitialMs = options.retryInitialMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 5_000;

  let client: pg.Client | undefined;
  let listening = false;
  let stopped = false;
  let failures = 0;
  let connections = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let checkTimer: NodeJS.Timeout | undefined;

  const connect = async () => {
    retryTimer = undefined;
    const candidate = new pg.Client({
      connectionString: options.connectionString,
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
      query_timeout: 5_000,
    });
    client = candidate;
    candidate.on('notification', (message) => {
      if (message.channel === channel) onWake();
    });
    candidate.on('error', (error) => lost(candidate, error));
    candidate.on('end', () => lost(candidate, new Error('connection ended')));
    try {
      await candidate.connect();
      await candidate.query(`listen ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      lost(candidate, error as Error);
      return;
    }
    if (candidate !== client) {
      // Stopped meanwhile.
      await candidate.end().catch(() => {});
      return;
    }
    listening = true;
    connections += 1;
    if (failures > 0) logger.info({ channel }, 'listening again');
    failures = 0;
    onWake();
  };

  /** Drops a failed connection, once, and schedules the next attempt. */
  const lost = (candidate: pg.Client, error: Error) => {
    if (candidate !== client) return;
    client = undefined;
    listening = false;
    candidate.end().catch(() => {});
    if (stopped) return;
    const delay = Math.min(retryMaxMs, retryInitialMs * 2 ** failures) * (0.5 + Math.random() / 2);
    failures += 1;
    logger.warn(
      { channel, reason: error.message, retryInMs: Math.round(delay) },
      'change listener lost its connection',
    );
    retryTimer = setTimeout(connect, delay);
  };

  /** A connection can look open and listen to nothing (a proxy restarted, a RESET): ask. */
  const check = async () => {
    const current = client;
    if (!current || !listening) return;
    try {
      const { rowCount } = await current.query(
        'select 1 from pg_listening_channels() as c where c = $1',
        [channel],
      );
      if (rowCount !== 1) throw new Error('the connection no longer listens');
      onWake();
    } catch (error) {
      lost(current, error as Error);
    }
  };

  return {
    start() {
      stopped = false;
      checkTimer ??= setInterval(check, checkIntervalMs);
      if (!client && !retryTimer) void connect();
    },
    get listening() {
      return listening;
    },
    get connections() {
      return connections;
    },
    async stop() {
      stopped = true;
      clearInterval(checkTimer);
      clearTimeout(retryTimer);
      checkTimer = undefined;
      retryTimer = undefined;
      const current = client;
      client = undefined;
      listening = false;
      await current?.end().catch(() => {});
    },
  };
}
