import { WebSocketServer } from 'ws';
import { ConfigError, loadConfig } from './config.js';
import { createDb, createPool } from './db/connection.js';
import { startEmbeddedPostgres } from './db/embedded.js';
import { createListener } from './db/listener.js';
import { migrate, readMigrations } from './db/migrate.js';
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
import { createShutdown } from './shutdown.js';
import { createSocketIo, SOCKET_IO_PATH } from './socketio/server.js';
import { MAX_FRAME_BYTES } from './ws/endpoint.js';

// The one place where presently is wired together: config → logger → shutdown → database →
// migrations → change listener, sweep and pruning → app → server → sockets.

const SHUTDOWN_TIMEOUT_MS = 15_000;
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
  const logger = createLogger(config.logLevel, { pretty });
  const shutdown = createShutdown(logger);
  shutdown.handleSignals(SHUTDOWN_TIMEOUT_MS);
  try {
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
    const pool = createPool({ connectionString: databaseUrl }, logger);
    const db = createDb(pool);
    shutdown.onStop(() => db.destroy());
    const reportDb = createDb(
      createPool({ connectionString: databaseUrl, ...REPORT_POOL }, logger),
    );
    shutdown.onStop(() => reportDb.destroy());
    const reportReplica = startReportReplica(config.reportingDatabaseUrl, logger);
    if (reportReplica) shutdown.onStop(() => reportReplica.db.destroy());
    const previous = await setAwayTimeout(db, config.awayTimeoutSeconds);
    if (previous !== config.awayTimeoutSeconds) {
      logger.info({ previous, now: config.awayTimeoutSeconds }, 'away timeout changed (seconds)');
    }
    await setReportTimezone(db, config.reportTimezone);

    const metrics = createMetrics({ processMetrics: true });
    const hub = createSocketHub({ logger });
    const snapshots = createSnapshotPump({ db, hub, logger, intervalMs: SNAPSHOT_INTERVAL_MS });
    const broadcaster = createBroadcaster({ hub, snapshots });
    const { identity } = await readLogState(db);
    const feed = createChangeFeed({
      db,
      logger,
      after: await latestPosition(db),
      identity,
      onChanges: (changes) => {
        broadcaster.publish(changes);
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
    printGeneratedKeys(keys);
    shutdown.started();
  } catch (error) {
    // After a signal, start-up ends by StartupAborted (or by what stopping broke): not a failure.
    if (!shutdown.stopRequested) logger.fatal({ err: error }, 'presently could not start');
    const ok = await shutdown.stop();
    process.exitCode = shutdown.stopRequested && ok ? 0 : 1;
  }
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
