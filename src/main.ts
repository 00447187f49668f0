import { type ServerType, serve } from '@hono/node-server';
import { ConfigError, loadConfig } from './config.js';
import { createDb, createPool } from './db/connection.js';
import { startEmbeddedPostgres } from './db/embedded.js';
import { migrate, readMigrations } from './db/migrate.js';
import { createApp } from './http/app.js';
import { type ResolvedKeys, resolveKeys } from './keys.js';
import { createLogger, type Logger } from './logger.js';
import { setAwayTimeout } from './presence/repository.js';
import { createShutdown } from './shutdown.js';

// The one place where presently is wired together:
// config → logger → shutdown → database → migrations → app → server.

const SHUTDOWN_TIMEOUT_MS = 15_000;
const REQUEST_GRACE_MS = 250;

async function main(command: string): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  const shutdown = createShutdown(logger);
  shutdown.handleSignals(SHUTDOWN_TIMEOUT_MS);
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, logger });
      shutdown.onStop(() => embedded.stop());
      databaseUrl = embedded.url;
    }

    await migrate(databaseUrl, await readMigrations(), logger);
    if (command === 'migrate') {
      logger.info('migrations are up to date');
      await shutdown.stop();
      return;
    }

    const keys = await resolveKeys(config.dataDir, config);
    const pool = createPool({ connectionString: databaseUrl }, logger);
    const db = createDb(pool);
    shutdown.onStop(() => db.destroy());
    const previous = await setAwayTimeout(db, config.awayTimeoutSeconds);
    if (previous !== config.awayTimeoutSeconds) {
      logger.info({ previous, now: config.awayTimeoutSeconds }, 'away timeout changed (seconds)');
    }

    const app = createApp({ db, keys: keys.keys, logger });
    const server = await listen(app.fetch, config.host, config.port, logger);
    shutdown.onStop(() => closeServer(server));
    printGeneratedKeys(keys);
    shutdown.started();
  } catch (error) {
    // After a signal, start-up ends by StartupAborted (or by what stopping broke): not a failure.
    if (!shutdown.stopRequested) logger.fatal({ err: error }, 'presently could not start');
    const ok = await shutdown.stop();
    process.exitCode = shutdown.stopRequested && ok ? 0 : 1;
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

/**
 * Serves a moment longer, then stops accepting, lets requests in flight finish and closes idle
 * connections. The moment is for requests already on their way when the signal came
 * (connections waiting to be accepted): they are answered rather than reset.
 */
async function closeServer(server: ServerType): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, REQUEST_GRACE_MS));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections become idle as their last response goes out; close them then
  // rather than after the keep-alive timeout.
  const sweep = setInterval(() => {
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  }, 50);
  await closed;
  clearInterval(sweep);
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

void main(process.argv[2] ?? 'serve');
