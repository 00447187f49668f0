import { type Churn, type ChurnCounters, type Client, startChurn } from './churn.js';
import type { ChurnConfig, ClientStats, Compared, Request } from './sockets.js';
import { compareStatuses, newFrameCounters, type Statuses } from './view.js';

// A process of socket clients (started by sockets.ts, run with `--import tsx`): its share of the
// socket slots and their churn, driven over the IPC channel. Frames are read here, off the main
// process, so that the HTTP load and the checks keep their pace whatever the sockets receive.

const frames = newFrameCounters();
let churn: Churn | undefined;

const entries = <K, V>(map: Map<K, V>) => [...map];

function stats(): ClientStats {
  const counters: ChurnCounters | undefined = churn?.counters;
  return {
    live: churn?.live().length ?? 0,
    quiet: churn?.quiet() ?? true,
    frames: { ...frames, errors: entries(frames.errors) },
    churn: counters && { ...counters, serverCloses: entries(counters.serverCloses) },
  };
}

function compareClient(client: Client, truth: Statuses): Compared | undefined {
  const { view } = client;
  const result =
    !view.hasSnapshot || view.stale
      ? { differing: truth.size || 1, examples: ['no snapshot since connecting or resync'] }
      : compareStatuses(view.statuses(), truth);
  if (result.differing === 0) return undefined;
  return { key: client.key, ...result, position: view.position, resynced: view.stale };
}

const ops: Record<string, (args: never) => unknown> = {
  async start(config: ChurnConfig) {
    churn = startChurn({ ...config, frames });
    await churn.open();
    return stats();
  },
  stats,
  pause() {
    churn?.pause();
    return stats();
  },
  resume() {
    churn?.resume();
    return stats();
  },
  /** Views of up to `sample` live clients against the list: the ones that differ. */
  compare({ truth, sample }: { truth: [string, string][]; sample: number }) {
    const statuses: Statuses = new Map(truth);
    const live = churn?.live() ?? [];
    const chosen = live.sort(() => Math.random() - 0.5).slice(0, sample);
    const differing = chosen.flatMap((client) => compareClient(client, statuses) ?? []);
    return { checked: chosen.length, differing };
  },
  /** The same clients again (those still open), against a fresh list. */
  recheck({ truth, keys }: { truth: [string, string][]; keys: number[] }) {
    const statuses: Statuses = new Map(truth);
    const wanted = new Set(keys);
    const again = (churn?.live() ?? []).filter((client) => wanted.has(client.key));
    return {
      checked: again.length,
      differing: again.flatMap((client) => compareClient(client, statuses) ?? []),
    };
  },
  async stop() {
    await churn?.stop();
    return stats();
  },
};

process.on('message', (message: Request) => {
  const op = ops[message.op];
  void (async () => {
    try {
      if (!op) throw new Error(`unknown op ${message.op}`);
      const result = await op(message.args as never);
      process.send?.({ id: message.id, result });
    } catch (error) {
      process.send?.({ id: message.id, error: (error as Error).stack ?? String(error) });
    }
  })();
});
// The soak is gone (finished, failed, interrupted): so are its sockets.
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {}); // Ctrl-C reaches the whole group: the soak decides when to stop
