import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup, ROOT, stopProcess } from '../../bench/process.js';
import type { ChurnCounters } from './churn.js';
import type { FrameCounters, Statuses } from './view.js';

// The socket side of the soak, spread over a few child processes (socket-client.ts), each with
// its share of the slots and of the users that sockets ping. Everything here is a request over
// IPC, answered by every process, and the answers summed.

export interface ChurnConfig {
  wsUrl: string;
  sockets: number;
  users: string[];
  pingingShare: number;
  flipShare: number;
  lifeS: [number, number];
  resumeShare: number;
}

export interface Request {
  id: number;
  op: string;
  args?: unknown;
}

type Entries<T> = [T, number][];

export interface ClientStats {
  live: number;
  /** No socket connecting or closing. */
  quiet: boolean;
  frames: Omit<FrameCounters, 'errors'> & { errors: Entries<string> };
  churn: (Omit<ChurnCounters, 'serverCloses'> & { serverCloses: Entries<number> }) | undefined;
}

/** A view that differs from the list. */
export interface Compared {
  key: number;
  differing: number;
  examples: string[];
  position: number | undefined;
  resynced: boolean;
}

interface Answer {
  id: number;
  result?: unknown;
  error?: string;
}

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'socket-client.ts');

export async function startSocketClients(
  config: ChurnConfig,
  processes: number,
  /** A process ended before stop(): the run cannot go on. */
  onGone: (error: Error) => void,
) {
  const children: ChildProcess[] = [];
  let stopping = false;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let ids = 0;
  const call = <T>(child: ChildProcess, op: string, args?: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = ++ids;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, args } satisfies Request, (error) => {
        if (!error) return;
        pending.delete(id);
        reject(error);
      });
    });
  const all = <T>(op: string, args?: (index: number) => unknown) =>
    Promise.all(children.map((child, i) => call<T>(child, op, args?.(i))));

  for (let i = 0; i < processes; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (answer: Answer) => {
      const waiting = pending.get(answer.id);
      if (!waiting) return;
      pending.delete(answer.id);
      if (answer.error) waiting.reject(new Error(`socket client: ${answer.error}`));
      else waiting.resolve(answer.result);
    });
    child.once('exit', (code, signal) => {
      if (!stopping) onGone(new Error(`a socket client process ended (${code ?? signal})`));
      for (const [id, waiting] of pending) {
        pending.delete(id);
        waiting.reject(new Error(`a socket client process ended (${code ?? signal})`));
      }
    });
    children.push(child);
  }
  const stopAll = onCleanup(async () => {
    stopping = true;
    await Promise.all(children.map((child) => stopProcess(child, 5_000)));
  });

  const share = (total: number, i: number) =>
    Math.floor(total / processes) + (i < total % processes ? 1 : 0);
  const userShare = (i: number) => config.users.filter((_, u) => u % processes === i);
  await all('start', (i) => ({
    ...config,
    sockets: share(config.sockets, i),
    users: userShare(i),
  }));

  const sum = (parts: ClientStats[]) => {
    const frames = { snapshots: 0, changes: 0, bytes: 0, resyncs: 0, positionViolations: 0 };
    const errors = new Map<string, number>();
    const serverCloses = new Map<number, number>();
    const churn = {
      connects: 0,
      resumes: 0,
      cleanCloses: 0,
      terminates: 0,
      connectErrors: 0,
      pings: 0,
    };
    let lastChangeAt = 0;
    for (const part of parts) {
      for (const key of Object.keys(frames) as (keyof typeof frames)[]) {
        frames[key] += part.frames[key];
      }
      lastChangeAt = Math.max(lastChangeAt, part.frames.lastChangeAt);
      for (const [code, n] of part.frames.errors) errors.set(code, (errors.get(code) ?? 0) + n);
      for (const key of Object.keys(churn) as (keyof typeof churn)[]) {
        churn[key] += part.churn?.[key] ?? 0;
      }
      for (const [code, n] of part.churn?.serverCloses ?? []) {
        serverCloses.set(code, (serverCloses.get(code) ?? 0) + n);
      }
    }
    return {
      live: parts.reduce((n, part) => n + part.live, 0),
      quiet: parts.every((part) => part.quiet),
      frames: { ...frames, lastChangeAt, errors } satisfies FrameCounters,
      churn: { ...churn, serverCloses },
      connectErrorExamples: parts.flatMap((part) => part.churn?.connectErrorExamples ?? []),
    };
  };

  return {
    pids: children.map((child) => child.pid ?? 0),
    stats: async () => sum(await all<ClientStats>('stats')),
    pause: async () => sum(await all<ClientStats>('pause')),
    resume: async () => sum(await all<ClientStats>('resume')),
    /** Views of up to `sample` live sockets (spread over the processes) against the list. */
    async compare(truth: Statuses, sample: number) {
      const entries = [...truth];
      const parts = await all<{ checked: number; differing: Compared[] }>('compare', (i) => ({
        truth: entries,
        sample: share(sample, i),
      }));
      return {
        checked: parts.reduce((n, part) => n + part.checked, 0),
        /** Per process: the views that differ. */
        differing: parts.map((part) => part.differing),
      };
    },
    /** The views that differed, again, against a fresh list. */
    async recheck(truth: Statuses, differing: Compared[][]) {
      const entries = [...truth];
      const parts = await all<{ checked: number; differing: Compared[] }>('recheck', (i) => ({
        truth: entries,
        keys: (differing[i] ?? []).map((view) => view.key),
      }));
      return parts.map((part) => part.differing);
    },
    /** Closes every socket, waits for the closes, and ends the processes. */
    async stop() {
      stopping = true;
      const last = sum(await all<ClientStats>('stop'));
      await stopAll();
      return last;
    },
  };
}

export type SocketClients = Awaited<ReturnType<typeof startSocketClients>>;
export type SocketStats = Awaited<ReturnType<SocketClients['stats']>>;
