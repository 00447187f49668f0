import fs from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { useScenario } from '../faults/helpers/scenario.js';
import type { FaultTarget } from '../faults/helpers/target.js';
import { makeDataDir } from '../helpers/data-dir.js';
import { KEYS } from '../helpers/http.js';
import { socketUrl } from '../helpers/realtime.js';
import {
  killLeftovers,
  type RunningService,
  type Spawned,
  startService,
} from '../helpers/service.js';
import { isEvent, openSocket, type TestSocket } from '../helpers/socket.js';
import { waitFor, within } from '../helpers/wait.js';
import { type HaCluster, startCluster } from './helpers/cluster.js';
import { FAILOVER_SECONDS } from './helpers/configs.js';

// presently on a Patroni cluster (three PostgreSQL 15 nodes, synchronous replication, HAProxy
// in front; helpers/cluster.ts), under HTTP and socket load (test/faults/helpers), through a
// failover (the primary's machine gone: Patroni and PostgreSQL killed) and a planned
// switchover. Each time: presently keeps running, answers 503 with Retry-After meanwhile,
// serves again within Patroni's failover time plus 10 s, loses no acknowledged HTTP ping, and
// every socket gets every change and ends with the true state. Socket pings are counted as
// stored when their change is announced (socket acknowledgements are not in this branch).

const children: Spawned[] = [];
let cluster: HaCluster | undefined;
let service: RunningService;
let dataDir: string;
const timeline: Record<string, unknown>[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  dataDir = await makeDataDir('presently-ha-service-');
  service = await startService(
    {
      DATABASE_URL: cluster.primaryUrl,
      REPORTING_DATABASE_URL: cluster.replicaUrl,
      DATA_DIR: dataDir,
      ACCESS_KEY: KEYS.access,
      ACCESS_KEY_SYSTEM: KEYS.system,
      LOG_LEVEL: 'info',
    },
    (spawned) => children.push(spawned),
  );
}, 240_000);

afterAll(async () => {
  // Everything goes, whatever happened: the service, then the cluster, then the folders.
  const running = children.filter(({ child }) => child.exitCode === null);
  for (const { child } of running) child.kill('SIGTERM');
  await within('the service to stop', Promise.all(running.map((s) => s.exited)), 20_000).catch(
    () => undefined,
  );
  await killLeftovers(children);
  await cluster?.destroy();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  console.log(`[ha] timeline: ${JSON.stringify(timeline, null, 1)}`);
}, 60_000);

const target = (): FaultTarget => ({
  kind: 'external',
  service,
  dataDir,
  url: async () => (cluster as HaCluster).primaryUrl,
  restartService: () => Promise.reject(new Error('not in this test')),
  describe: 'Patroni: PostgreSQL 15 x3, synchronous, through HAProxy',
});
const underLoad = useScenario(target);

const api = (path: string) =>
  fetch(
    `http://127.0.0.1:${service.port}${path}${path.includes('?') ? '&' : '?'}key=${KEYS.system}`,
  );

/** The socket's last list and counts are what the service says now. */
async function endsTrue(socket: TestSocket) {
  const latest = (event: string) => socket.frames.findLast((frame) => frame.event === event)?.data;
  const view = (list: { user: string; status: string }[] | undefined) =>
    (list ?? []).map(({ user, status }) => `${user}=${status}`).sort();
  let truth: unknown;
  await waitFor(
    'the socket to show the true state',
    async () => {
      // biome-ignore lint/suspicious/noExplicitAny: answers checked as a whole
      const counts = ((await (await api('/users/count')).json()) as any).data;
      // biome-ignore lint/suspicious/noExplicitAny: answers checked as a whole
      const list = ((await (await api('/users/list/all')).json()) as any).data;
      truth = { counts, list: view(list) };
      const seen = {
        counts: latest('online-users-count'),
        list: view(latest('online-users-list')),
      };
      return JSON.stringify(seen) === JSON.stringify(truth);
    },
    15_000,
  ).catch(() => undefined);
  const seen = { counts: latest('online-users-count'), list: view(latest('online-users-list')) };
  expect(seen).toEqual(truth);
}

async function failingOver(
  tag: string,
  fault: (leader: string) => Promise<void>,
  refusals: boolean,
) {
  const ha = cluster as HaCluster;
  onTestFailed(async () => console.log(`[ha] ${tag} failed; the cluster:\n${await ha.logs()}`));
  const observer = await openSocket(socketUrl(service));
  try {
    await observer.next(isEvent('online-users-list'));
    const old = (await ha.leader()) as string;
    expect(old).toBeDefined();
    let promoted = '';
    const summary = await underLoad(tag, async () => {
      const downMark = performance.now();
      await fault(old);
      await waitFor(
        'Patroni to name another running leader',
        async () => {
          promoted = (await ha.leader()) ?? old;
          return promoted !== old;
        },
        (FAILOVER_SECONDS + 30) * 1000,
      );
      return { downMark, backMark: performance.now(), refusals };
    });
    // Served again by every loop within Patroni's failover time plus 10 s of the fault.
    const servedAgainMs = summary.outageMs + summary.recoveryMs;
    timeline.push({ tag, from: old, to: promoted, servedAgainMs, ...summary });
    expect(servedAgainMs).toBeLessThan((FAILOVER_SECONDS + 10) * 1000);
    await endsTrue(observer);
  } finally {
    await observer.close();
  }
}

describe('presently on a Patroni cluster', () => {
  it('reads reports from the replica port, with its lag', async () => {
    const response = await api('/reports/activity');
    expect(response.status).toBe(200);
    await response.body?.cancel();
    expect(response.headers.get('X-Report-Source')).toBe('replica');
    expect(Number(response.headers.get('X-Replica-Lag-Seconds'))).toBeGreaterThanOrEqual(0);
    const metrics = await (await api('/metrics')).text();
    expect(metrics).toMatch(/^presently_report_replica_up 1$/m);
    expect(metrics).toMatch(/^presently_report_replica_lag_seconds \d/m);
  });

  it('the primary killed (Patroni and PostgreSQL, SIGKILL): another node takes over, nothing lost', {
    timeout: 180_000,
  }, async () => {
    // The machine is gone: some pings must have been refused (503) meanwhile.
    await failingOver(`kill-${Date.now()}`, (leader) => (cluster as HaCluster).kill(leader), true);
  });

  it('a planned switchover (patronictl switchover): nothing lost', {
    timeout: 180_000,
  }, async () => {
    const ha = cluster as HaCluster;
    await failingOver(
      `switchover-${Date.now()}`,
      async (leader) => {
        let candidate: string | undefined;
        await waitFor(
          'a synchronous standby to switch over to',
          async () => {
            const members = await ha.members();
            candidate = members.find(
              (m) => m.role === 'sync_standby' && m.state === 'running',
            )?.name;
            return candidate !== undefined;
          },
          60_000,
        );
        await ha.switchover(leader, candidate as string);
        // A planned switchover may be quick enough that no ping is refused.
      },
      false,
    );
  });
});
