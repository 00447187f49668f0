import { Gauge, type Registry } from 'prom-client';
import type { ReportReplica } from '../db/report-replica.js';

/** The reporting replica, asked at scrape time: whether it answers, and how far behind it is. */
export function watchReportReplica(registry: Registry, replica: ReportReplica): void {
  const registers = [registry];
  const lag = new Gauge({
    name: 'presently_report_replica_lag_seconds',
    help: 'How far the reporting replica is behind the primary (0: caught up, or no standby); absent while it does not answer',
    registers,
  });
  new Gauge({
    name: 'presently_report_replica_up',
    help: 'Whether the reporting replica answers (0: reports read the primary)',
    registers,
    async collect() {
      const seconds = await replica.probe();
      this.set(seconds === undefined ? 0 : 1);
      if (seconds === undefined) lag.reset();
      else lag.set(seconds);
    },
  });
}
