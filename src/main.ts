import { WebSocketServer } from 'ws';
import { isWorker, startWorkers, stopWithPrimary, workerId } from './cluster.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { createDb, createPool } from './db/connection.js';
import { startEmbeddedPostgres } from './db/embedded.js';
import { createListener } from './db/listener.js';
import { type Migration, migrate, readMigrations } from './db/migrate.js';
import { createReadiness } from './db/readiness.js';
import { createReportReplica } from './db/report-replica.js';
import { createRateLimiter } from './edge/rate-limit.js';
import { createSocketCounter } from './edge/socket-limits.js';
import { createApp } from './http/app.js';
import { createReportGate } from './http/report-gate.js';
import { closeServer, startServer } from './http/server.js';
import { type ResolvedKeys, resolveKeys } from './keys.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './metrics/metrics.js';
import { watchReportReplica } from './metrics/replica.js';
import { watchState } from './metrics/state.js';
import { createChangeFeed } from './presence/change-feed.js';
import { CHANGES_CHANNEL, latestPosition, readLogState } from './presence/changes.js';
import { createMaintenance } from './presence/maintenance.js';
import { createPingWriter } from './presence/ping-writer.js';
import { setAwayTimeout, setReportTimezone } from './presence/repository.js';
import { createBroadcaster } from './realtime/broadcaster.js';
import { createSocketHub } from './realtime/hub.js';
import { resyncAll } from './realtime/resync.js';
import { createSnapshotPump } from './realtime/snapshots.js';
import { createShutdown, type Shutdown } from './shutdown.js';
import { createSocketIo, SOCKET_IO_PATH } from './socketio/server.js';
import { MAX_FRAME_BYTES } from './ws/endpoint.js';

// The one place where presently is wired together: config → logger → shutdown → database →
// migrations → change listener, sweep and pruning → app → server → sockets. With WORKERS > 1
// the primary process stops after the migrations and starts the workers (src/cluster.ts), each
// of which runs the rest (`serve`) over the same database.

const SHUTDOWN_TIMEOUT_MS = 15_000;
/** What a primary of workers adds to it: their drain comes first, then the database stops. */
const WORKERS_STOP_EXTRA_MS = 10_000;
/** At most four snapshots a second reach the sockets, however many changes arrive. */
const SNAPSHOT_INTERVAL_MS = 250;
/**
 * Reports and long history get a pool of their own, so that they can never take the ping
 * path's connections: two at once (the report gate lets no more run), each cut off after 5 s
 * rather than the ping pool's 10, and answered 503 report_too_expensive then.
 */
const REPORT_POOL = { max: 2, statementTimeoutMs: 5_000, applicationName: 'presently-reports' };

async function main(command: string): Promise<void> {
  const config = loadConfigOrExit();
  // Readable lines for a person at a terminal, JSON for everything else, unless LOG_FORMAT says.
  const pretty = config.logFormat ? config.logFormat === 'pretty' : process.stdout.isTTY === true;
  const worker = workerId();
  const logger = createLogger(config.logLevel, {
    pretty,
    fields: worker === undefined ? undefined : { worker },
  });
  const shutdown = createShutdown(logger);
  const primaryOfWorkers = config.workers > 1 && !isWorker() && command !== 'migrate';
  // A primary waits for its workers' drain (each bounded by SHUTDOWN_TIMEOUT_MS), then stops
  // the embedded database: it gets longer.
  shutdown.handleSignals(SHUTDOWN_TIMEOUT_MS + (primaryOfWorkers ? WORKERS_STOP_EXTRA_MS : 0));
  try {
    if (isWorker()) {
      // The primary has started the database and migrated it, and hands its URL down.
      stopWithPrimary();
      if (!config.databaseUrl) throw new Error('a worker needs DATABASE_URL from its primary');
      const migrations = await readMigrations();
      const keys = await resolveKeys(config.dataDir, config);
      await serve({ config, logger, shutdown, databaseUrl: config.databaseUrl, migrations, keys });
      shutdown.started();
      return;
    }
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, logger });
      shutdown.onStop(() => embedded.stop());
      databaseUrl = embedded.url;
    }

    const migrations = await readMigrations();
    await migrate(databaseUrl, migrations, logger);
    if (command === 'migrate') {
      logger.info('migrations are up to date');
      await shutdown.stop();
      return;
    }

    const keys = await resolveKeys(config.dataDir, config);
    // Before the service says it listens: whoever watches for that line has the keys by then.
    printGeneratedKeys(keys);
    if (primaryOfWorkers) {
      // Keys are resolved (generated, if need be) once, before any worker reads them.
      const workers = startWorkers({
        count: config.workers,
        env: { DATABASE_URL: databaseUrl },
        logger,
      });
      // Newest first: the workers stop (and drain) before the embedded database.
      shutdown.onStop(() => workers.stop());
      await workers.ready;
      logger.info({ workers: config.workers }, 'workers are serving');
    } else {
      await serve({ config, logger, shutdown, databaseUrl, migrations, keys });
    }
    shutdown.started();
  } catch (error) {
    // After a signal, start-up ends by StartupAborted (or by what stopping broke): not a failure.
    if (!shutdown.stopRequested) logger.fatal({ err: error }, 'presently could not start');
    const ok = await shutdown.stop();
    process.exitCode = shutdown.stopRequested && ok ? 0 : 1;
  }
}

/**
 * One whole instance over a migrated database: pools, listener, sweep, app, server, sockets,
 * each with its shutdown step. With WORKERS > 1, every worker runs this.
 */
async function serve(options: {
  config: Config;
  logger: Logger;
  shutdown: Shutdown;
  databaseUrl: string;
  migrations: Migration[];
  keys: ResolvedKeys;
}): Promise<void> {
  const { config, logger, shutdown, databaseUrl, migrations, keys } = options;
  const worker = workerId();
  const pool = createPool({ connectionString: databaseUrl }, logger);
  const db = createDb(pool);
  shutdown.onStop(() => db.destroy());
  const reportDb = createDb(createPool({ connectionString: databaseUrl, ...REPORT_POOL }, logger));
  shutdown.onStop(() => reportDb.destroy());
  const reportReplica = startReportReplica(config.reportingDatabaseUrl, logger);
  if (reportReplica) shutdown.onStop(() => reportReplica.db.destroy());
  const previous = await setAwayTimeout(db, config.awayTimeoutSeconds);
  if (previous !== config.awayTimeoutSeconds) {
    logger.info({ previous, now: config.awayTimeoutSeconds }, 'away timeout changed (seconds)');
  }
  await setReportTimezone(db, config.reportTimezone);

  const metrics = createMetrics({
    processMetrics: true,
    // Each worker counts its own: a scrape reaches one worker, its series labelled with it.
    labels: worker === undefined ? undefined : { worker: String(worker) },
  });
  const hub = createSocketHub({ logger });
  const snapshots = createSnapshotPump({ db, hub, logger, intervalMs: SNAPSHOT_INTERVAL_MS });
  const broadcaster = createBroadcaster({ hub, snapshots });
  const { identity } = await readLogState(db);
  const feed = createChangeFeed({
    db,
    logger,
    after: await latestPosition(db),
    identity,
    onChanges: async (changes) => {
      await broadcaster.publish(changes);
      metrics.changesPublished(changes.map((change) => change.age));
    },
    onMoved: (position) => {
      resyncAll(hub, broadcaster, position);
      snapshots.changed();
    },
  });
  const listener = createListener({
    connectionString: databaseUrl,
    channel: CHANGES_CHANNEL,
    logger,
    onWake: feed.wake,
  });
  listener.start();
  watchState(metrics.registry, { pool, hub, listener });
  if (reportReplica) watchReportReplica(metrics.registry, reportReplica.replica);
  shutdown.onStop(async () => {
    snapshots.stop();
    feed.stop();
    await listener.stop();
  });
  const maintenance = createMaintenance({
    db,
    logger,
    historyRetentionDays: config.historyRetentionDays,
  });
  maintenance.start();
  shutdown.onStop(() => maintenance.stop());

  const pings = createPingWriter({ db, onBatch: metrics.batchWritten });
  // Runs once the server has stopped accepting and sockets are closed: pings already taken
  // are written before the listener and the pool go.
  shutdown.onStop(() => pings.drain());
  const readiness = createReadiness({
    db,
    listener,
    latestMigration: migrations.at(-1)?.id ?? 0,
  });
  const { requestsPerSecond } = config.limits;
  const requestLimiter =
    requestsPerSecond > 0
      ? createRateLimiter({ perSecond: requestsPerSecond, burst: 2 * requestsPerSecond })
      : undefined;
  shutdown.onStop(async () => requestLimiter?.stop());
  // What both socket transports share: the realtime core, the limits, and one count of open
  // sockets per address.
  const socketDeps = {
    db,
    keys: keys.keys,
    pings,
    logger,
    hub,
    broadcaster,
    metrics,
    corsOrigins: config.corsOrigins,
    socketLimits: {
      perAddress: config.limits.socketsPerAddress,
      framesPerSecond: config.limits.framesPerSecond,
      watchUsers: config.limits.watchUsers,
    },
    socketCounter: createSocketCounter(config.limits.socketsPerAddress),
  };
  const app = createApp({
    ...socketDeps,
    reportDb,
    reportReplica: reportReplica?.replica,
    reportGate: createReportGate({ concurrency: REPORT_POOL.max }),
    readiness,
    metricsPublic: config.metricsPublic,
    requestLimiter,
  });
  const socketIo = createSocketIo(socketDeps);
  // The hub tracks the sockets: the server's own set (and a listener on every socket) is not
  // needed.
  const sockets = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    clientTracking: false,
  });
  const server = await startServer({
    fetch: app.fetch,
    sockets,
    hostname: config.host,
    port: config.port,
    logger,
    socketIo: { path: SOCKET_IO_PATH, engine: socketIo.engine },
    requestLimiter,
  });
  shutdown.onStop(() => closeServer(server));
  // Steps run newest first: sockets are closed (1001) before the server stops, and Socket.IO's
  // connections, long polls included, before it waits for its connections to end.
  shutdown.onStop(() => socketIo.close());
  shutdown.onStop(() => hub.close());
}

/**
 * REPORTING_DATABASE_URL: a pool like the report pool, on the replica. Its connection timeout is
 * short: while it does not answer, reports wait that long once, then read the primary.
 */
function startReportReplica(url: string | undefined, logger: Logger) {
  if (!url) return undefined;
  const db = createDb(
    createPool({ connectionString: url, ...REPORT_POOL, connectionTimeoutMs: 2_000 }, logger),
  );
  return { db, replica: createReportReplica({ db, logger }) };
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
