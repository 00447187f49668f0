import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { createReportReplica } from '../../src/db/report-replica.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { watchReportReplica } from '../../src/metrics/replica.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';
import { closedPort } from '../helpers/wait.js';

// REPORTING_DATABASE_URL: reports read a replica when it answers, and the primary when it does
// not, saying which (and the replica's lag) in headers and /metrics. The replica in the
// failover test (test/ha) is a real standby; here the "replica" is either unreachable (a closed
// port) or the test's own database, a primary, whose lag is 0 by definition.

const database = useTestDatabase();
const pools: { destroy(): Promise<void> }[] = [];
afterAll(() => Promise.all(pools.map((p) => p.destroy())));

function replicaAt(url: string) {
  const db = createDb(createPool({ connectionString: url, max: 2 }, silentLogger));
  pools.push(db);
  return createReportReplica({ db, logger: silentLogger });
}

let unreachable: string;
beforeAll(async () => {
  unreachable = `postgres://presently:secret@127.0.0.1:${await closedPort()}/presently`;
});

const ROUTES = ['/reports/activity', '/users/nobody/history'];

describe('reports with REPORTING_DATABASE_URL', () => {
  it('fall back to the primary when the replica cannot be reached, and say so', async () => {
    const app = testApp(database.db, { reportReplica: replicaAt(unreachable) });
    for (const route of ROUTES) {
      const answer = await request(app, 'GET', route);
      expect([200, 404]).toContain(answer.status);
      expect(answer.headers.get('X-Report-Source')).toBe('primary');
      expect(answer.headers.get('X-Replica-Lag-Seconds')).toBe('0');
    }
  });

  it('read the replica when it answers, with its lag (0 on a server that is no standby)', async () => {
    const app = testApp(database.db, { reportReplica: replicaAt(database.url) });
    const answer = await request(app, 'GET', '/reports/activity');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('X-Report-Source')).toBe('replica');
    expect(answer.headers.get('X-Replica-Lag-Seconds')).toBe('0');
  });

  it('without one, read the primary and say so', async () => {
    const answer = await request(testApp(database.db), 'GET', '/reports/activity');
    expect(answer.headers.get('X-Report-Source')).toBe('primary');
    expect(answer.headers.get('X-Replica-Lag-Seconds')).toBe('0');
  });

  it('/metrics says whether the replica answers, and its lag', async () => {
    const metrics = createMetrics();
    watchReportReplica(metrics.registry, replicaAt(unreachable));
    const down = await metrics.registry.metrics();
    expect(down).toMatch(/^presently_report_replica_up 0$/m);
    const other = createMetrics();
    watchReportReplica(other.registry, replicaAt(database.url));
    const up = await other.registry.metrics();
    expect(up).toMatch(/^presently_report_replica_up 1$/m);
    expect(up).toMatch(/^presently_report_replica_lag_seconds 0$/m);
  });
});

it('the service starts with an unreachable REPORTING_DATABASE_URL and answers reports', async () => {
  // Through the real entry point: the setting is read, and reports fall back.
  const { startService } = await import('../helpers/service.js');
  const { makeDataDir } = await import('../helpers/data-dir.js');
  const service = await startService({
    DATABASE_URL: database.url,
    REPORTING_DATABASE_URL: unreachable,
    DATA_DIR: await makeDataDir('presently-replica-'),
    ACCESS_KEY: KEYS.access,
    ACCESS_KEY_SYSTEM: KEYS.system,
  });
  try {
    const response = await fetch(
      `http://127.0.0.1:${service.port}/reports/activity?key=${KEYS.access}`,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('X-Report-Source')).toBe('primary');
    await response.body?.cancel();
  } finally {
    expect(await service.stop()).toBe(0);
  }
});
