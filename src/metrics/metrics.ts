import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** `socket`: the plain WebSocket (/ws); `socketio`: Socket.IO. */
export type PingTransport = 'http' | 'socket' | 'socketio';
/** stored: committed; refused: the client's fault (4xx); failed: ours or the database's (5xx). */
export type PingOutcome = 'stored' | 'refused' | 'failed';

/** What the socket session needs: one call per frame it handles. */
export interface PingMetrics {
  pingHandled(transport: PingTransport, outcome: PingOutcome): void;
}

export interface Metrics extends PingMetrics {
  /** This app's own registry, never prom-client's global one. */
  readonly registry: Registry;
  batchWritten(size: number): void;
  /**
   * Changes handed to the sockets, given by their ages: how long ago each happened, by the
   * database's clock, when this instance read it (see StatusChange.age).
   */
  changesPublished(ages: number[]): void;
  requestServed(method: string, route: string, status: number, seconds: number): void;
}

const TRANSPORTS: PingTransport[] = ['http', 'socket', 'socketio'];
const OUTCOMES: PingOutcome[] = ['stored', 'refused', 'failed'];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * The service's counters and histograms, in a registry of its own. Gauges that read live state
 * at scrape time are added by watchState (state.ts), once that state exists.
 * `processMetrics` adds prom-client's standard Node.js process metrics, under their usual names.
 */
export function createMetrics(
  options: {
    processMetrics?: boolean;
    /** Labels on every series: `worker` with WORKERS > 1, since each worker counts its own. */
    labels?: Record<string, string>;
  } = {},
): Metrics {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const pings = new Counter({
    name: 'presently_pings_total',
    help: 'Pings handled, by transport (http|socket|socketio) and outcome (stored|refused|failed)',
    labelNames: ['transport', 'outcome'] as const,
    registers,
  });
  // Every series exists from the start, so rate() and alerts see zeros rather than nothing.
  for (const transport of TRANSPORTS) {
    for (const outcome of OUTCOMES) pings.labels(transport, outcome).inc(0);
  }
  const batches = new Histogram({
    name: 'presently_ping_batch_size',
    help: 'Pings written per group-commit statement',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers,
  });
  const published = new Counter({
    name: 'presently_changes_published_total',
    help: 'Status changes (and clears) read from the change log and published to sockets',
    registers,
  });
  const lag = new Histogram({
    name: 'presently_change_publish_lag_seconds',
    help:
      'From a change happening (its changed_at) to this instance reading it for the sockets, ' +
      'both by the database clock; for a timeout, counted from the moment the user went away',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers,
  });
  const requests = new Histogram({
    name: 'presently_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });

  return {
    registry,
    pingHandled: (transport, outcome) => pings.labels(transport, outcome).inc(),
    batchWritten: (size) => batches.observe(size),
    changesPublished(ages) {
      published.inc(ages.length);
      for (const age of ages) lag.observe(Math.max(0, age));
    },
    requestServed(method, route, status, seconds) {
      // Labels stay a small, fixed set: any method a client invents counts as one.
      const knownMethod = METHODS.has(method) ? method : 'OTHER';
      requests.labels(knownMethod, route, String(status)).observe(seconds);
    },
  };
}
