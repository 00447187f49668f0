import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { rssKiB } from '../../bench/process.js';
import { type Api, countErrors, metricValue } from './api.js';
import { cpuMs, type Descriptors, descriptors } from './proc.js';
import type { SocketStats } from './sockets.js';

// The service as seen from outside, every few seconds: its resident memory and open
// descriptors (from /proc: its accepted connections apart from the rest), what its /metrics says about sockets and the pool, and the load's
// HTTP answers since the previous sample. Also this process's own event-loop delay, so that a
// soak client too busy to keep up shows.

export interface Sample {
  /** Seconds since the load began. */
  t: number;
  /** 'load', or 'check' while the load is held for a check. */
  phase: 'load' | 'check';
  rssMiB: number;
  /** The service's open descriptors. */
  fds: Descriptors;
  socketsOpen: number | undefined;
  clientSockets: number;
  pool: { total?: number; idle?: number; waiting?: number };
  heapUsedMiB: number | undefined;
  http: { requests: number; errors: number; errorRate: number };
  /** Frames received per second by all clients, and megabytes a second. */
  received: { changesPerS: number; snapshotsPerS: number; mbPerS: number };
  /** CPU used over the sample, in % of one core: the service's, and the soak's own processes'. */
  cpu: { service: number; client: number };
  /** GET /healthz round trip (no database): how responsive the service is, ms. */
  healthzMs: number | undefined;
  /** The service's own longest event-loop delay since the previous scrape, ms. */
  serviceLagMs: number | undefined;
  /** The machine's 1-minute load average: the soak shares the machine with whatever else runs. */
  loadAverage: number;
  /** This process's event-loop delay over the sample (the HTTP load's), ms. */
  clientLagMs: { p99: number; max: number };
}

export async function startMonitor(options: {
  pid: number;
  /** The service's port: its accepted connections are told apart from its other descriptors. */
  port: number;
  api: Api;
  /** The socket clients' counters, and their processes. */
  clients: () => Promise<SocketStats>;
  clientPids: number[];
  phase: () => Sample['phase'];
  intervalS: number;
  log: (line: string) => void;
  /** The service is gone: the run cannot go on. */
  onGone: (error: Error) => void;
}) {
  const samples: Sample[] = [];
  const began = performance.now();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const { api } = options;
  /** CPU of this process and of the socket client processes, ms. */
  const clientCpuMs = async () => {
    const children = await Promise.all(options.clientPids.map((pid) => cpuMs(pid).catch(() => 0)));
    const own = process.cpuUsage();
    return (own.user + own.system) / 1000 + children.reduce((sum, ms) => sum + ms, 0);
  };
  let last = {
    at: began,
    requests: 0,
    errors: 0,
    changes: 0,
    snapshots: 0,
    bytes: 0,
    serviceCpu: await cpuMs(options.pid),
    clientCpu: await clientCpuMs(),
  };

  const take = async (): Promise<Sample> => {
    const now = performance.now();
    const healthz = async () => {
      const started = performance.now();
      const ok = await api.healthz();
      return ok ? Math.round(performance.now() - started) : undefined;
    };
    const [healthzMs, rss, fds, serviceCpu, text, clients, clientCpu] = await Promise.all([
      healthz(),
      rssKiB(options.pid),
      descriptors(options.pid, options.port),
      cpuMs(options.pid),
      api.metrics().catch(() => ''),
      options.clients(),
      clientCpuMs(),
    ]);
    const { frames } = clients;
    const seconds = (now - last.at) / 1000;
    const errors = countErrors(api.counters);
    const requests = api.counters.requests - last.requests;
    const heap = metricValue(text, 'nodejs_heap_size_used_bytes');
    const sample: Sample = {
      t: Math.round((now - began) / 1000),
      phase: options.phase(),
      rssMiB: round(rss / 1024, 1),
      fds,
      socketsOpen: metricValue(text, 'presently_sockets_open'),
      clientSockets: clients.live,
      pool: {
        total: metricValue(text, 'presently_db_pool_connections'),
        idle: metricValue(text, 'presently_db_pool_idle_connections'),
        waiting: metricValue(text, 'presently_db_pool_waiting_requests'),
      },
      heapUsedMiB: heap === undefined ? undefined : round(heap / 2 ** 20, 1),
      http: {
        requests,
        errors: errors - last.errors,
        errorRate: requests === 0 ? 0 : round((errors - last.errors) / requests, 4),
      },
      received: {
        changesPerS: Math.round((frames.changes - last.changes) / seconds),
        snapshotsPerS: Math.round((frames.snapshots - last.snapshots) / seconds),
        mbPerS: round((frames.bytes - last.bytes) / 2 ** 20 / seconds, 1),
      },
      cpu: {
        service: Math.round(((serviceCpu - last.serviceCpu) / (now - last.at)) * 100),
        client: Math.round(((clientCpu - last.clientCpu) / (now - last.at)) * 100),
      },
      healthzMs,
      serviceLagMs: ms(metricValue(text, 'nodejs_eventloop_lag_max_seconds')),
      loadAverage: round(os.loadavg()[0] ?? 0, 1),
      clientLagMs: { p99: round(lag.percentile(99) / 1e6, 1), max: round(lag.max / 1e6, 1) },
    };
    lag.reset();
    last = {
      at: now,
      requests: api.counters.requests,
      errors,
      changes: frames.changes,
      snapshots: frames.snapshots,
      bytes: frames.bytes,
      serviceCpu,
      clientCpu,
    };
    return sample;
  };

  // One sample at a time: a slow one (a service that answers late) delays the next.
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    const due = began + (samples.length + 1) * options.intervalS * 1000;
    timer = setTimeout(
      () => {
        take().then(
          (sample) => {
            if (stopped) return;
            samples.push(sample);
            options.log(formatSample(sample));
            next();
          },
          (error: Error) => {
            if (!stopped) options.onGone(new Error(`the service is gone: ${error.message}`));
          },
        );
      },
      Math.max(0, due - performance.now()),
    );
  };
  next();

  return {
    samples,
    stop() {
      stopped = true;
      clearTimeout(timer);
      lag.disable();
    },
  };
}

export function formatSample(s: Sample): string {
  const pad = (value: unknown, width: number) => String(value ?? '?').padStart(width);
  return [
    `${pad(s.t, 4)}s ${s.phase === 'check' ? 'chk ' : 'load'}`,
    `rss ${pad(s.rssMiB.toFixed(1), 6)}`,
    `fds ${pad(s.fds.total, 4)} (${pad(s.fds.other, 2)} + ${pad(s.fds.accepted, 4)} conns, ${s.fds.closeWait} close-wait)`,
    `sockets ${pad(s.socketsOpen, 4)}/${pad(s.clientSockets, 4)}`,
    `pool ${s.pool.total ?? '?'}/${s.pool.idle ?? '?'}/${s.pool.waiting ?? '?'}`,
    `heap ${pad(s.heapUsedMiB?.toFixed(1), 5)}`,
    `http ${pad(s.http.requests, 5)} err ${(s.http.errorRate * 100).toFixed(2)}%`,
    `recv ${pad(s.received.changesPerS, 5)} chg/s ${pad(s.received.snapshotsPerS, 4)} snap/s ${pad(s.received.mbPerS.toFixed(0), 3)} MB/s`,
    `cpu ${pad(s.cpu.service, 3)}%/${pad(s.cpu.client, 3)}%`,
    `healthz ${pad(s.healthzMs, 4)} ms`,
    `lag ${pad(s.serviceLagMs, 4)}/${s.clientLagMs.max} ms`,
    `load ${s.loadAverage}`,
  ].join('  ');
}

const ms = (seconds: number | undefined) =>
  seconds === undefined ? undefined : Math.round(seconds * 1000);

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
