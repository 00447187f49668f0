import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RunningService {
  port: number;
  child: ChildProcess;
  /** Everything written so far, stdout and stderr apart. */
  stdout(): string;
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The real entry point, src/main.ts, in a process of its own. */
export function spawnService(env: Record<string, string | undefined>): {
  child: ChildProcess;
  exited: Promise<number | null>;
  out: { stdout: string; stderr: string };
} {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...inherited, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk) => {
    out.stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    out.stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => resolve(code)),
  );
  return { child, exited, out };
}

export async function startService(
  env: Record<string, string | undefined>,
  track: (spawned: Spawned) => void = () => {},
): Promise<RunningService> {
  const spawned = spawnService(env);
  track(spawned);
  const { child, exited, out } = spawned;
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start:\n${out.stdout}${out.stderr}`)),
      60_000,
    );
    const check = () => {
      for (const line of out.stdout.split('\n')) {
        if (!line.includes('presently is listening')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line).port);
        return;
      }
    };
    child.stdout?.on('data', check);
    exited.then((code) =>
      reject(new Error(`service exited with ${code}:\n${out.stdout}${out.stderr}`)),
    );
  });
  return {
    port,
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}

export async function call(
  service: RunningService,
  method: string,
  path: string,
  key: string,
  body?: unknown,
) {
  const response = await fetch(`http://127.0.0.1:${service.port}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field in tests
  const answer: any = await response.json();
  return { status: response.status, body: answer };
}

export interface Spawned {
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Kills every process of `children` still running (SIGKILL) and forgets them all. */
export async function killLeftovers(children: Spawned[]): Promise<void> {
  for (const { child, exited } of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
}

/**
 * `startService` and `spawnService` for a test file, with every process still running after a
 * test (an assertion failed before its stop) killed, so that one failure does not cascade.
 */
export function useServices() {
  const children: Spawned[] = [];
  afterEach(() => killLeftovers(children));
  return {
    start: (env: Record<string, string | undefined>) =>
      startService(env, (spawned) => children.push(spawned)),
    spawn: (env: Record<string, string | undefined>) => {
      const spawned = spawnService(env);
      children.push(spawned);
      return spawned;
    },
  };
}
