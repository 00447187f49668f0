import fs from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';
import {
  failures,
  latestPosition,
  logPositions,
  lostAcknowledged,
  query,
  replayed,
} from './helpers/checks.js';
import { httpPing, type Load, positionsReceived, startLoad } from './helpers/load.js';
import {
  type FaultTarget,
  isAlive,
  postmasterPid,
  runKind,
  useFaultTarget,
} from './helpers/target.js';

// The service killed outright (SIGKILL: no shutdown, no draining) under a steady ping load, then
// started again on the same DATA_DIR or DATABASE_URL: nothing it acknowledged is lost, the
// database comes back (after crash recovery, for the embedded server killed along with it),
// and migrations are not applied again.
//
// test/db/embedded.test.ts already kills an idle service once (one ping, embedded only); this
// one does it under load, with sockets, for both kinds of server.

const setUp = useFaultTarget({ external: 'shared' });
let target: FaultTarget;
beforeAll(async () => {
  target = await setUp();
}, 180_000);

const opened: { load?: Load } = {};
afterEach(async () => {
  await opened.load?.stop();
  opened.load = undefined;
});

const migrations = async (url: string) =>
  query<{ id: number; name: string; checksum: string; applied_at: Date }>(
    url,
    'select id, name, checksum, applied_at from presently.migrations order by id',
  );

describe(`the service killed under load (${runKind()})`, () => {
  it(
    runKind() === 'embedded'
      ? 'SIGKILL to presently and its embedded server at once: the next start recovers the database and finds every acknowledged ping'
      : 'SIGKILL to presently: the next start on the same DATABASE_URL finds every acknowledged ping',
    async () => {
      const started = performance.now();
      const first = target.service;
      const url = await target.url();
      const tag = `sigkill-${Date.now()}`;
      // A fresh DATA_DIR or database: the first start applied every migration.
      expect(first.stdout()).toContain('"msg":"migration applied"');
      const applied = await migrations(url);
      expect(applied.length).toBeGreaterThan(0);
      const after = await latestPosition(url);

      const load = await startLoad({ service: first, key: KEYS.access, tag });
      opened.load = load;
      await sleep(1_500);
      await load.settle(3);

      // Everything dies at once, as when a machine or container goes: the embedded server is
      // killed too (its wrapper would otherwise stop it cleanly), so it needs crash recovery.
      // Right when a burst of pings starts being answered, so that some are acknowledged just
      // before the kill and others are still being written.
      const postmaster =
        target.kind === 'embedded' ? await postmasterPid(target.dataDir) : undefined;
      const burst = Array.from({ length: 60 }, (_, i) =>
        httpPing(first, KEYS.access, 99, `${tag}-b${i}`, i % 2 ? 'busy' : 'available'),
      );
      await Promise.race(burst);
      const killMark = performance.now();
      // The server first: presently, killed a moment before it, would have its wrapper stop
      // the server cleanly (SIGINT) in the meantime.
      if (postmaster) process.kill(postmaster, 'SIGKILL');
      first.child.kill('SIGKILL');
      const records = [...(await load.stop()), ...(await Promise.all(burst))];
      expect(await first.stop()).toBeNull();
      const lastSeen = Math.max(after, ...load.sockets.flatMap(positionsReceived));
      // Up to the kill, the service answered every ping.
      const beforeKill = records.filter((r) => r.answeredMark < killMark);
      expect(failures(beforeKill)).toEqual([]);
      expect(beforeKill.filter((r) => r.outcome === 'ok').length).toBeGreaterThan(10);
      if (postmaster) {
        await waitFor('the killed server to be gone', () => !isAlive(postmaster), 10_000);
      }

      const restartMark = performance.now();
      const second: RunningService = await target.restartService();
      const restartMs = performance.now() - restartMark;
      const url2 = await target.url();

      // No migration applied again, none lost, none changed.
      expect(second.stdout()).not.toContain('migration applied');
      expect(await migrations(url2)).toEqual(applied);
      if (target.kind === 'embedded') {
        expect(second.stdout()).not.toContain('initialising the embedded PostgreSQL cluster');
        expect(second.stdout()).toContain('embedded PostgreSQL started');
        const log = await fs.readFile(target.serverLog as string, 'utf8');
        expect(log).toMatch(/database system was (interrupted|not properly shut down)/);
      }

      // Nothing acknowledged is lost.
      expect(await lostAcknowledged(url2, records)).toEqual([]);

      // It serves again, and a socket resuming from where the killed one stood gets every
      // change after it, including those written but never announced before the kill.
      expect(
        (
          await call(second, 'POST', '/users/ping', KEYS.access, {
            id: `${tag}-after`,
            status: 'busy',
          })
        ).status,
      ).toBe(200);
      const log = await logPositions(url2, lastSeen);
      expect(log.length).toBeGreaterThan(0);
      expect(await replayed(socketUrl(second), lastSeen, log)).toEqual(log);

      expect(await second.stop('SIGTERM')).toBe(0);
      const acknowledged = records.filter((r) => r.outcome === 'ok').length;
      console.log(
        `[faults] ${tag}: ${JSON.stringify({
          server: target.describe,
          acknowledged,
          notAnswered: records.length - acknowledged,
          restartMs: Math.round(restartMs),
          replayedAfterRestart: log.length,
          testMs: Math.round(performance.now() - started),
        })}`,
      );
    },
  );
});
