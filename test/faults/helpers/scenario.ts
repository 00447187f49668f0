import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, onTestFailed } from 'vitest';
import { KEYS } from '../../helpers/http.js';
import { socketUrl } from '../../helpers/realtime.js';
import { isEvent, openSocket, type TestSocket } from '../../helpers/socket.js';
import { waitFor } from '../../helpers/wait.js';
import {
  answerTimes,
  failures,
  latestPosition,
  logPositions,
  lostAcknowledged,
  query,
  replayed,
  socketGap,
} from './checks.js';
import { type Load, type LoadOptions, startLoad } from './load.js';
import type { FaultTarget } from './target.js';

// A fault under a steady ping load (HTTP and sockets), and everything that must hold around it:
// the service answers 503 / `database_unavailable` meanwhile, within a bound, never crashes,
// keeps its sockets open, recovers by itself, has lost no acknowledged ping, and every socket
// gets every change.

// The bound on an answer (src/db/connection.ts, src/presence/ping-writer.ts). A ping goes into
// a batch at once if one of the two the ping writer allows in flight is free; otherwise it
// waits for one, and is refused (503) after 4 s. A batch:
// - fails at once when connecting is refused (server down or restarting) or the connection
//   breaks (server stopping or crashing, backend terminated): RST or FIN on loopback;
// - waits at most 5 s for a connection (connectionTimeoutMillis: pool full, or a connection
//   accepted but never answered, as by a frozen server);
// - runs at most 10 s on a server that answers (statement_timeout), 15 s on a silent one
//   (query_timeout).
// The restarts and terminations here only ever break connections, so an answer takes well
// under a second; the frozen server (6 s, under the 10 s statement timeout) holds the batches
// in flight for the freeze and fails new connections at 5 s, so an answer takes about the
// freeze. 16 s is above both with room for a loaded machine, and below what a hang would take.
export const ANSWER_BOUND_MS = 16_000;
/** From the database being back to every loop having a ping answered ok again. */
export const RECOVERY_BOUND_MS = 10_000;

/** What a fault did: when the database went away (roughly) and when it was back. */
export interface Outage {
  downMark: number;
  backMark: number;
  /** The fault is a real outage: some pings must have been refused. */
  refusals: boolean;
}

async function ready(target: FaultTarget) {
  await waitFor(
    'the service to be ready',
    async () =>
      (await fetch(`http://127.0.0.1:${target.service.port}/readyz`).catch(() => undefined))
        ?.status === 200,
    15_000,
  );
}

/**
 * `underLoad(tag, fault)` for a test file: runs the load, the fault, waits for recovery, and
 * checks. Whatever a test left open is closed after it, even when it failed.
 */
export function useScenario(getTarget: () => FaultTarget) {
  const opened: { load?: Load; sockets: TestSocket[] } = { sockets: [] };
  afterEach(async () => {
    await opened.load?.stop();
    await Promise.all(opened.sockets.splice(0).map((socket) => socket.close()));
    opened.load = undefined;
  });
  return (
    tag: string,
    fault: () => Promise<Outage>,
    load: Pick<LoadOptions, 'giveUpMs' | 'httpLoops' | 'socketLoops'> = {},
  ) => underLoad(getTarget(), opened, tag, fault, load);
}

async function underLoad(
  target: FaultTarget,
  opened: { load?: Load; sockets: TestSocket[] },
  tag: string,
  fault: () => Promise<Outage>,
  loadOptions: Partial<LoadOptions>,
) {
  const started = performance.now();
  const { service } = target;
  const logFrom = service.stdout().length;
  // What the service said about it, for whoever reads a failure.
  onTestFailed(() => {
    const said = service
      .stdout()
      .slice(logFrom)
      .split('\n')
      .filter(
        (line) => /"level":(50|60)/.test(line) || line.includes('"msg":"database unavailable"'),
      );
    console.log(`[faults] ${tag} failed; the service's errors:\n${said.slice(0, 40).join('\n')}`);
  });
  await ready(target);
  const url = await target.url();
  // Connected before the log position is read: every change after it must reach it.
  const watcher = await openSocket(socketUrl(service));
  opened.sockets.push(watcher);
  await watcher.next(isEvent('online-users-count'));
  const load = await startLoad({ ...loadOptions, service, key: KEYS.access, tag });
  opened.load = load;
  opened.sockets.push(...load.sockets);
  const after = await latestPosition(url);
  await sleep(1_000);

  const outage = await fault();
  const recovery = await load.recovered(outage.backMark, RECOVERY_BOUND_MS);
  await load.settle(5);
  const records = await load.stop();

  // Never a crash; never an answer other than success or a proper 503; never a hang.
  expect(service.child.exitCode).toBeNull();
  expect(service.child.signalCode).toBeNull();
  expect(failures(records)).toEqual([]);
  const times = answerTimes(records);
  expect(times.http).toBeLessThan(ANSWER_BOUND_MS);
  expect(times.socketError).toBeLessThan(ANSWER_BOUND_MS);
  const during = records.filter(
    (r) => r.sentMark >= outage.downMark && r.sentMark < outage.backMark,
  );
  if (outage.refusals) {
    expect(records.filter((r) => r.outcome === 'unavailable').length).toBeGreaterThan(0);
  }
  expect(service.stdout()).not.toContain('"level":60');

  // Sockets stayed open through it all.
  for (const socket of [watcher, ...load.sockets]) {
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
  }

  // Every acknowledged ping is stored, as acknowledged.
  expect(await lostAcknowledged(url, records)).toEqual([]);

  // Every socket connected throughout got every change after it connected, once, in order;
  // and a socket reconnecting from that position gets them all too.
  const log = await logPositions(url, after);
  expect(log.length).toBeGreaterThan(0);
  for (const socket of [watcher, ...load.sockets]) {
    expect(await socketGap(socket, log, after)).toEqual({
      missing: [],
      unexpected: [],
      inOrder: true,
    });
  }
  expect(await replayed(socketUrl(service), after, log)).toEqual(log);

  const summary = {
    server: target.describe,
    pings: times.counts,
    pingsDuringOutage: during.length,
    outageMs: Math.round(outage.backMark - outage.downMark),
    slowestHttpAnswerMs: times.http,
    slowestSocketErrorMs: times.socketError,
    slowestSocketAnnouncementMs: times.socketAnnounced,
    recoveryMs: Math.round(recovery),
    changes: log.length,
    testMs: Math.round(performance.now() - started),
  };
  console.log(`[faults] ${tag}: ${JSON.stringify(summary)}`);
  return summary;
}

/** pg_terminate_backend on every connection to the database of `url` but its own, `rounds` times. */
export const terminateBackends = async (url: string, rounds = 3): Promise<Outage> => {
  const downMark = performance.now();
  for (let round = 0; round < rounds; round++) {
    if (round > 0) await sleep(700);
    const [row] = await query<{ n: string }>(
      url,
      `select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid()`,
    );
    // At least the change listener's connection, and the pool's.
    expect(Number(row?.n)).toBeGreaterThanOrEqual(2);
  }
  return { downMark, backMark: performance.now(), refusals: false };
};
