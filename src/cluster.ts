import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './logger.js';

// WORKERS > 1: the primary process holds the embedded database and the migrations, and runs no
// server; each worker is a whole instance over the shared database (its pool, listener, sweep,
// sockets), all listening on one port through node's cluster module, which hands connections
// to the workers in turn.

/** A worker that dies again this soon after the last restart waits this long before the next. */
const RESTART_DELAY_MS = 1_000;
/** How long a worker may take to drain after SIGTERM before it is killed. */
const STOP_GRACE_MS = 20_000;

export interface Workers {
  /** Resolves once every worker listens; rejects if one stops before it does. */
  ready: Promise<void>;
  /** SIGTERM to every worker (each drains as a single instance does); resolves once all exited. */
  stop(): Promise<void>;
}

/** Whether this process is a worker that the primary started (WORKERS > 1). */
export const isWorker = (): boolean => cluster.isWorker;

/** This worker's number, 1 to WORKERS (a replacement takes the next one). */
export const workerId = (): number | undefined => cluster.worker?.id;

/**
 * Starts `count` workers running this same entry point, with `env` added (the database's URL).
 * A worker that dies during start-up fails it (`ready` rejects: a broken configuration or port
 * would only die again); one that dies once serving is logged and replaced (at most one a
 * second), so a crash costs its own sockets, which reconnect, and nothing else.
 */
export function startWorkers(options: {
  count: number;
  env: Record<string, string>;
  logger: Logger;
}): Workers {
  const { count, env, logger } = options;
  const exits = new Map<Worker, Promise<void>>();
  let stopping = false;
  let serving = false;
  let lastRestart = 0;
  let listening = 0;
  let settle: { resolve(): void; reject(error: Error): void } | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });

  const restart = () => {
    const wait = Math.max(0, lastRestart + RESTART_DELAY_MS - Date.now());
    lastRestart = Date.now() + wait;
    setTimeout(() => {
      if (!stopping) fork();
    }, wait);
  };

  const fork = () => {
    const worker = cluster.fork(env);
    worker.once('online', () =>
      logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker started'),
    );
    worker.once('listening', () => {
      listening += 1;
      if (!serving && listening === count) {
        serving = true;
        settle?.resolve();
      }
    });
    const exited = new Promise<void>((resolve) =>
      worker.once('exit', (code, signal) => {
        exits.delete(worker);
        resolve();
        if (stopping) return;
        const details = { worker: worker.id, code, signal };
        if (!serving) {
          logger.error(details, 'worker stopped during start-up');
          settle?.reject(
            new Error(`worker ${worker.id} exited (${signal ?? code}) during start-up`),
          );
          return;
        }
        logger.error(details, 'worker died; starting another');
        restart();
      }),
    );
    exits.set(worker, exited);
  };

  for (let i = 0; i < count; i++) fork();

  return {
    ready,
    async stop() {
      stopping = true;
      const exited = [...exits.values()];
      for (const worker of exits.keys()) {
        worker.process.kill('SIGTERM');
        // A worker stuck in its drain is killed; its own shutdown timeout should come first.
        setTimeout(() => worker.process.kill('SIGKILL'), STOP_GRACE_MS).unref();
      }
      await Promise.all(exited);
    },
  };
}

/**
 * A worker whose primary is gone (killed outright) stops as on SIGTERM: the embedded database
 * went with the primary, and nothing would restart the worker.
 */
export function stopWithPrimary(): void {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
