import { type ServerType, serve } from '@hono/node-server';
import { ConfigError, loadConfig } from './config.js';
import { createDb, createPool } from './db/connection.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './db/embedded.js';
import { migrate, readMigrations } from './db/migrate.js';
import { createApp } from './http/app.js';
import { type ResolvedKeys, resolveKeys } from './keys.js';
import { createLogger, type Logger } from './logger.js';
import { setAwayTimeout } from './presence/repository.js';

// The one place where presently is wired together:
// config → logger → database → migrations → app → server → shutdown.

const SHUTDOWN_TIMEOUT_MS = 15_000;

async function main(command: string): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const embedded = config.databaseUrl
      ? undefined
      : await startEmbeddedPostgres({ dataDir: config.dataDir, logger });
    if (embedded) cleanups.unshift(() => embedded.stop());
    const databaseUrl = config.databaseUrl ?? (embedded as EmbeddedPostgres).url;

    await migrate(databaseUrl, await readMigrations(), logger);
    if (command === 'migrate') {
      logger.info('migrations are up to date');
      await runCleanups(cleanups, logger);
      return;
    }

    const keys = await resolveKeys(config.dataDir, config);
    const pool = createPool({ connectionString: databaseUrl }, logger);
    const db = createDb(pool);
    cleanups.unshift(() => db.destroy());
    const previous = await setAwayTimeout(db, config.awayTimeoutSeconds);
    if (previous !== config.awayTimeoutSeconds) {
      logger.info({ previous, now: config.awayTimeoutSeconds }, 'away timeout changed (seconds)');
    }

    const app = createApp({ db, keys: keys.keys, logger });
    const server = await listen(app.fetch, config.host, config.port, logger);
    cleanups.unshift(() => closeServer(server));
    printGeneratedKeys(keys);
    handleSignals(cleanups, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'presently could not start');
    await runCleanups(cleanups, logger);
    process.exitCode = 1;
  }
}

function loadConfigOrExit() {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

function listen(
  fetch: Parameters<typeof serve>[0]['fetch'],
  hostname: string,
  port: number,
  logger: Logger,
): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, (info) => {
      logger.info({ host: info.address, port: info.port }, 'presently is listening');
      resolve(server);
    });
    server.once('error', reject);
  });
}

/** Stops accepting, lets requests in flight finish, then closes what is left. */
function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}

/**
 * Keys taken from DATA_DIR are shown once to the person starting the service, on stderr and
 * outside the structured logs, which never carry a key.
 */
function printGeneratedKeys({ generated, file }: ResolvedKeys): void {
  if (generated.length === 0) return;
  const lines = generated.map(({ name, value }) => `  ${name}=${value}`);
  process.stderr.write(`presently keys (generated once, kept in ${file}):\n${lines.join('\n')}\n`);
}

function handleSignals(cleanups: (() => Promise<void>)[], logger: Logger): void {
  let stoppingSince: number | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      // npm forwards the terminal's Ctrl-C to its child, which already got it from the terminal:
      // a repeat within a second is that echo, not a person insisting.
      if (Date.now() - stoppingSince < 1_000) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stoppingSince = Date.now();
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown timed out: exiting now');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    force.unref();
    void runCleanups(cleanups, logger).then((ok) => {
      clearTimeout(force);
      logger.info('stopped');
      process.exitCode = ok ? 0 : 1;
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Runs every cleanup in order, even after one fails; says whether all succeeded. */
async function runCleanups(cleanups: (() => Promise<void>)[], logger: Logger): Promise<boolean> {
  let ok = true;
  for (const cleanup of cleanups) {
    try {
      await cleanup();
    } catch (error) {
      ok = false;
      logger.error({ err: error }, 'shutdown step failed');
    }
  }
  return ok;
}

void main(process.argv[2] ?? 'serve');
