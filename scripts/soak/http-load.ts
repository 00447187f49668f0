import { setTimeout as sleep } from 'node:timers/promises';
import type { Api } from './api.js';

// HTTP pings as many clients would send them: a few concurrent loops, each over its own slice
// of users. A loop keeps a set of active users, pings each one every 0.8 to 2.5 s (mostly
// heartbeats, sometimes a status change), takes in a new user whenever one stops, and lets each
// one stop after 10 to 90 s, so that it goes away by timeout. Now and then it reads a count or a
// status too. Requests are not waited for one by one (each user is its own client): a slow
// answer does not delay the other users' heartbeats, up to `maxInFlight` requests per loop. A
// user's next ping waits for its previous one, so that its pings are stored in order.
//
// 'hold' mode, for a check: no new users, no one stops, no status changes, a heartbeat every
// second for every active user; nothing changes once the users that already stopped are away.

export type LoadMode = 'mixed' | 'hold';

export interface HttpLoad {
  setMode(mode: LoadMode): void;
  stop(): Promise<void>;
}

const STATUSES = ['available', 'busy'] as const;
const other = (status: string) => (status === 'available' ? 'busy' : 'available');
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
const between = (low: number, high: number) => low + Math.random() * (high - low);

interface Active {
  status: string;
  due: number;
  until: number;
  /** Its previous ping has not been answered yet. */
  pending: boolean;
}

export function startHttpLoad(options: {
  api: Api;
  /** Users of the HTTP load, split among the loops. */
  users: string[];
  loops: number;
  activePerLoop: number;
  flipShare: number;
  /** Reads a second, per loop. */
  readsPerSecond?: number;
  maxInFlight?: number;
}): HttpLoad {
  const { api, loops } = options;
  const maxInFlight = options.maxInFlight ?? 32;
  let mode: LoadMode = 'mixed';
  let stopped = false;
  const readGapMs = 1000 / (options.readsPerSecond ?? 4);
  const inFlight = new Set<Promise<unknown>>();

  const loop = async (slice: string[]) => {
    const active = new Map<string, Active>();
    let sent = 0; // this loop's requests in flight
    const send = (work: Promise<unknown>) => {
      sent += 1;
      const request = work.finally(() => {
        sent -= 1;
        inFlight.delete(request);
      });
      inFlight.add(request);
    };
    const room = () => sent < maxInFlight;
    const ping = (user: string, state: Active) => {
      state.pending = true;
      send(
        api.ping(user, state.status).finally(() => {
          state.pending = false;
        }),
      );
    };
    let nextReadAt = performance.now() + Math.random() * readGapMs;
    while (!stopped) {
      const now = performance.now();
      for (const [user, state] of active) {
        if (!room()) break;
        if (state.pending || state.due > now) continue;
        if (mode === 'mixed' && now > state.until) {
          active.delete(user); // stops pinging: away within the timeout
          continue;
        }
        if (mode === 'mixed' && Math.random() < options.flipShare)
          state.status = other(state.status);
        state.due = now + (mode === 'hold' ? 1_000 : between(800, 2_500));
        ping(user, state);
      }
      while (mode === 'mixed' && active.size < options.activePerLoop && room()) {
        const user = pick(slice);
        if (active.has(user)) break; // taken: another try next round
        const state: Active = {
          status: pick(STATUSES),
          due: now + between(800, 2_500),
          until: now + between(10_000, 90_000),
          pending: false,
        };
        active.set(user, state);
        ping(user, state);
      }
      if (mode === 'mixed' && now >= nextReadAt && room()) {
        nextReadAt = now + readGapMs * between(0.5, 1.5);
        const path =
          Math.random() < 0.5 ? '/users/count' : `/users/${encodeURIComponent(pick(slice))}/status`;
        send(api.send('GET', path));
      }
      await sleep(50);
    }
  };

  const size = Math.ceil(options.users.length / loops);
  const running = Array.from({ length: loops }, (_, i) =>
    loop(options.users.slice(i * size, (i + 1) * size)),
  );
  return {
    setMode(next) {
      mode = next;
    },
    async stop() {
      stopped = true;
      await Promise.all(running);
      await Promise.all(inFlight);
    },
  };
}

/** Pings every user once, `concurrency` at a time, so that the table holds them all. */
export async function seedUsers(api: Api, users: string[], concurrency = 16): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < users.length) {
        const user = users[next++] as string;
        await api.ping(user, pick(STATUSES));
      }
    }),
  );
}
