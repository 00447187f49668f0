import { setTimeout as sleep } from 'node:timers/promises';
import { type Api, metricValue } from './api.js';
import type { HttpLoad } from './http-load.js';
import { type Descriptors, descriptors } from './proc.js';
import type { SocketClients } from './sockets.js';
import { compareStatuses } from './view.js';

// A check: the load is held (heartbeats only, no new users, no status changes, no socket
// churn), the sockets that were connecting or closing finish, the users that had stopped go
// away, and once no change has reached any socket for a while, a sample of live sockets have
// their view compared with GET /users/list/all, and the open-socket gauge with the number of
// sockets the client processes hold open. A view that differs is looked at again (twice, each
// time once the list is quiet again) against a fresh list, and is stale only if it still differs.

export interface Drain {
  /** presently_sockets_open once every client socket closed. */
  socketsOpen: number | undefined;
  /** The service's descriptors before any socket was opened, and after every one closed. */
  before: Descriptors;
  after: Descriptors;
}

export interface CheckResult {
  label: string;
  /** Seconds from holding the load to comparing. */
  settleS: number;
  /** Users in the list, by status. */
  users: Record<string, number>;
  liveSockets: number;
  socketsOpen: number | undefined;
  socketsMatch: boolean;
  checked: number;
  stale: number;
  staleExamples: string[];
  /** The list changed while the views were compared (a late heartbeat): should be false. */
  listMoved: boolean;
}

const QUIET_AFTER_CHANGE_MS = 2_000;

export async function runCheck(
  label: string,
  deps: {
    api: Api;
    sockets: SocketClients;
    http: HttpLoad;
    awayTimeoutSeconds: number;
    sample: number;
    log: (line: string) => void;
  },
): Promise<CheckResult> {
  const { api, sockets, http } = deps;
  const heldAt = Date.now();
  http.setMode('hold');
  await sockets.pause();
  try {
    await until(async () => (await sockets.stats()).quiet, 15_000);
    // Held long enough for the users that had stopped to go away, and no change for a while.
    const settled = async () => {
      const { frames } = await sockets.stats();
      const now = Date.now();
      return (
        now - heldAt >= deps.awayTimeoutSeconds * 1000 + 1_500 &&
        now - frames.lastChangeAt >= QUIET_AFTER_CHANGE_MS
      );
    };
    await until(settled, 30_000);
    const settleS = Math.round((Date.now() - heldAt) / 100) / 10;
    const truth = await api.statuses();

    let socketsOpen: number | undefined;
    let liveSockets = 0;
    for (let attempt = 0; attempt < 10; attempt++) {
      socketsOpen = metricValue(await api.metrics(), 'presently_sockets_open');
      liveSockets = (await sockets.stats()).live;
      if (socketsOpen === liveSockets) break;
      await sleep(500);
    }

    const compared = await sockets.compare(truth, deps.sample);
    const after = await api.statuses();
    const listMoved = compareStatuses(after, truth).differing > 0;

    // A view that differs is given its chance again, once the list is quiet once more.
    let differing = compared.differing;
    for (let round = 0; round < 2 && differing.some((part) => part.length > 0); round++) {
      await sleep(2_000);
      await until(settled, 15_000);
      differing = await sockets.recheck(await api.statuses(), differing);
    }
    const stale = differing.flat();
    const staleExamples = stale
      .slice(0, 5)
      .map(
        (view) =>
          `${view.differing} users differ (${view.examples.join('; ')}), position ` +
          `${view.position ?? 'none'}${view.resynced ? ', resynced' : ''}`,
      );
    const users: Record<string, number> = { available: 0, busy: 0, away: 0 };
    for (const status of truth.values()) users[status] = (users[status] ?? 0) + 1;
    const result: CheckResult = {
      label,
      settleS,
      users,
      liveSockets,
      socketsOpen,
      socketsMatch: socketsOpen === liveSockets,
      checked: compared.checked,
      stale: stale.length,
      staleExamples,
      listMoved,
    };
    deps.log(formatCheck(result));
    return result;
  } finally {
    http.setMode('mixed');
    await sockets.resume();
  }
}

export function formatCheck(c: CheckResult): string {
  const users = Object.entries(c.users)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  return (
    `check ${c.label}: settled in ${c.settleS} s; users ${users}; sockets_open ` +
    `${c.socketsOpen ?? '?'} vs ${c.liveSockets} live (${c.socketsMatch ? 'match' : 'MISMATCH'}); ` +
    `views ${c.checked - c.stale}/${c.checked} current${c.stale ? ` (${c.stale} STALE)` : ''}` +
    `${c.listMoved ? '; the list moved during the check' : ''}` +
    (c.staleExamples.length ? `\n  ${c.staleExamples.join('\n  ')}` : '')
  );
}

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
  return true;
}

/**
 * Once every socket closed: the gauge back to 0, and the descriptors back to what they were
 * (idle HTTP connections close after the keep-alive timeout; the one these reads use stays).
 */
export async function drained(
  api: Api,
  pid: number,
  port: number,
  before: Descriptors,
  margin: number,
): Promise<Drain> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [after, text] = await Promise.all([descriptors(pid, port), api.metrics()]);
    const socketsOpen = metricValue(text, 'presently_sockets_open');
    const done = socketsOpen === 0 && after.total - before.total <= margin;
    if (done || Date.now() > deadline) return { socketsOpen, before, after };
    await sleep(500);
  }
}
