import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { terminateBackends, useScenario } from './helpers/scenario.js';
import {
  type FaultTarget,
  freeze,
  occurrences,
  postmasterOf,
  postmasterPid,
  runKind,
  useFaultTarget,
} from './helpers/target.js';

// The database goes away under a steady ping load (HTTP and sockets) and comes back: the
// service answers 503 / `database_unavailable` meanwhile, within a bound, never crashes, keeps
// its sockets open, recovers by itself, has lost no acknowledged ping, and every socket gets
// every change (see helpers/scenario.ts for the load and the checks).

const setUp = useFaultTarget();
let target: FaultTarget;
beforeAll(async () => {
  target = await setUp();
}, 180_000);
const underLoad = useScenario(() => target);

/** Long enough for the pool's 5 s connection timeout to fire, short of the 10 s statement timeout. */
const FREEZE_MS = 6_000;
/**
 * What one database call may take by the pool's own settings (src/db/connection.ts): 5 s to get
 * a connection (connectionTimeoutMillis) and 15 s for the answer (query_timeout), however silent
 * the server. A ping is one call; answered later than this (and a second of slack), it waited
 * for something else first.
 */
const ONE_CALL_MS = 5_000 + 15_000;
/** Longer than ONE_CALL_MS and its slack, so that only the service's own timeouts can answer. */
const LONG_FREEZE_MS = 23_000;

describe(`the database going away under load (${runKind()})`, () => {
  it.runIf(runKind() === 'embedded')(
    'the embedded server killed (SIGKILL): presently starts it again, and nothing is lost',
    async () => {
      await underLoad(`kill9-${Date.now()}`, async () => {
        const { service, dataDir } = target;
        const before = occurrences(service.stdout(), 'embedded PostgreSQL started again');
        const pid = (await postmasterPid(dataDir)) as number;
        expect(pid).toBeGreaterThan(0);
        const downMark = performance.now();
        process.kill(pid, 'SIGKILL');
        await waitFor(
          'presently to start its server again',
          () => occurrences(service.stdout(), 'embedded PostgreSQL started again') > before,
          20_000,
        );
        return { downMark, backMark: performance.now(), refusals: true };
      });
    },
  );

  it.runIf(runKind() === 'external')(
    'pg_ctl restart -m fast: the service recovers by itself, and nothing is lost',
    async () => {
      await underLoad(`fast-${Date.now()}`, async () => {
        const downMark = performance.now();
        await target.server?.restart('fast');
        return { downMark, backMark: performance.now(), refusals: true };
      });
    },
  );

  it.runIf(runKind() === 'external')(
    'pg_ctl stop -m immediate, 1.5 s down, then start (crash recovery): the service recovers, and nothing is lost',
    async () => {
      await underLoad(`immediate-${Date.now()}`, async () => {
        const downMark = performance.now();
        await target.server?.stop('immediate');
        await sleep(1_500);
        await target.server?.start();
        return { downMark, backMark: performance.now(), refusals: true };
      });
    },
  );

  it("pg_terminate_backend on every connection of the service's database, three times", async () => {
    const before = occurrences(target.service.stdout(), 'listening again');
    await underLoad(`terminate-${Date.now()}`, async () => terminateBackends(await target.url()));
    // The change listener was among them, and came back by itself.
    expect(occurrences(target.service.stdout(), 'listening again')).toBeGreaterThan(before);
  });

  it(`the server frozen (SIGSTOP) for ${FREEZE_MS / 1000} s, silent but connected: answers stay bounded, and nothing is lost`, async () => {
    await underLoad(`freeze-${Date.now()}`, async () => {
      const pgdata = target.server?.pgdata ?? `${target.dataDir}/postgres`;
      const postmaster = await postmasterOf(pgdata);
      const downMark = performance.now();
      await freeze(postmaster, FREEZE_MS);
      return { downMark, backMark: performance.now(), refusals: false };
    });
  });

  // Guards e283b22 (a ping refused after 4 s in the ping writer's queue). Before it, pings
  // queued behind the two batches stuck on the silent server waited for one of them to fail
  // (15 s), then ran their own batch on a pooled connection whose timed-out query was still
  // outstanding (node-postgres keeps such a client, Kysely releases it without an error, so
  // pg-pool keeps it), and timed out 15 s later again: this test failed on every run, with
  // HTTP pings unanswered after 21 s; longer freezes gave 503s after 30 s and 200s after 25 s.
  it(`the server silent for ${LONG_FREEZE_MS / 1000} s: every ping is answered within one database call's timeouts (${ONE_CALL_MS / 1000} s)`, {
    timeout: 45_000,
  }, async () => {
    await underLoad(
      `silent-${Date.now()}`,
      async () => {
        const pgdata = target.server?.pgdata ?? `${target.dataDir}/postgres`;
        const postmaster = await postmasterOf(pgdata);
        const downMark = performance.now();
        await freeze(postmaster, LONG_FREEZE_MS);
        return { downMark, backMark: performance.now(), refusals: true };
      },
      // HTTP only: an HTTP ping always has an answer to wait for, while a socket ping's only
      // answer on success is its announcement, which a silent database delays as well. Six
      // loops, so that some pings always wait behind the writer's two batches in flight.
      { giveUpMs: ONE_CALL_MS + 1_000, httpLoops: 6, socketLoops: 0 },
    );
  });
});
