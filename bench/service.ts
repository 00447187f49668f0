import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { exited, freePort, onCleanup, ROOT, run, sleep, stopProcess } from './process.js';

// The service under test: the build in dist/, run as `node dist/main.js` on a free loopback
// port, with fixed keys, its logs at warn level, and a scratch database.

export const ACCESS_KEY = 'bench-access-key';
export const ACCESS_KEY_SYSTEM = 'bench-system-key';

export interface Service {
  url: string;
  wsUrl: string;
  pid: number;
  /** Warn and error lines the service logged (JSON lines on stdout). */
  warnings: string[];
  stop(): Promise<void>;
}

export interface ServiceBuild {
  /** A private build of src/ with migrations/ and package.json beside it, which the benchmark
   * runs whatever happens to the work tree meanwhile (edits, other builds). */
  dir: string;
  commit: string;
  /** Files under src/ or migrations/ that differ from the commit. */
  uncommitted: string[];
}

/**
 * The service as `npm start` runs it, compiled from src/ by esbuild into a private folder: the
 * same modules, one JavaScript file per TypeScript file, in a second rather than the quarter of
 * a minute `tsc` takes to type-check the project first (CI type-checks). The folder lives under
 * node_modules/.cache so that the service's imports resolve to the project's node_modules. The
 * dashboard is not built: the benchmark never loads it.
 */
export async function buildService(
  /** Where src/, migrations/ and package.json are (default: the work tree). */
  root = ROOT,
  /** What `commit` says (default: the work tree's HEAD). */
  label?: string,
): Promise<ServiceBuild> {
  const cache = path.join(ROOT, 'node_modules', '.cache', 'presently-bench');
  await fs.mkdir(cache, { recursive: true });
  const dir = await fs.mkdtemp(path.join(cache, 'service-'));
  onCleanup(() => fs.rm(dir, { recursive: true, force: true }));
  const sources = (await fs.readdir(path.join(root, 'src'), { recursive: true }))
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(root, 'src', file));
  await esbuild.build({
    entryPoints: sources,
    outdir: path.join(dir, 'dist'),
    outbase: path.join(root, 'src'),
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    tsconfig: path.join(ROOT, 'tsconfig.build.json'),
    logLevel: 'error',
  });
  for (const item of ['migrations', 'package.json']) {
    await fs.cp(path.join(root, item), path.join(dir, item), { recursive: true });
  }
  if (label !== undefined) return { dir, commit: label, uncommitted: [] };
  const git = (...args: string[]) => run('git', args).then(({ stdout }) => stdout.trim());
  const commit = await git('rev-parse', 'HEAD').catch(() => 'unknown');
  const status = await git('status', '--porcelain', '--', 'src', 'migrations').catch(() => '');
  const uncommitted = status ? status.split('\n').map((line) => line.slice(3)) : [];
  return { dir, commit, uncommitted };
}

export async function startService(options: {
  build: ServiceBuild;
  databaseUrl: string;
  awayTimeoutSeconds: number;
  /** WORKERS (default 1). */
  workers?: number;
  /** Options for node before the script (`--cpu-prof`, for one). */
  nodeArgs?: string[];
}): Promise<Service> {
  const port = await freePort();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-bench-service-'));
  // BENCH_SERVICE_NODE_ARGS: node's own options for the service, e.g. "--cpu-prof
  // --cpu-prof-dir=/tmp/prof" to profile it under the load (not allowed in NODE_OPTIONS).
  const fromEnvironment = process.env.BENCH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const nodeArgs = [...fromEnvironment, ...(options.nodeArgs ?? [])];
  const script = path.join(options.build.dir, 'dist', 'main.js');
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ACCESS_KEY,
      ACCESS_KEY_SYSTEM,
      DATA_DIR: dataDir,
      AWAY_TIMEOUT_SECONDS: String(options.awayTimeoutSeconds),
      WORKERS: String(options.workers ?? 1),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const warnings: string[] = [];
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      output.push(line);
      if (output.length > 40) output.shift();
      if (/"level":(40|50|60)/.test(line) && warnings.length < 1000) warnings.push(line);
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const stop = onCleanup(async () => {
    await stopProcess(child, 20_000);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  let ended = false;
  void exited(child).then(() => {
    ended = true;
  });
  for (;;) {
    if (ended || Date.now() > deadline) {
      await stop();
      const why = ended ? `ended with ${child.exitCode ?? child.signalCode}` : 'did not answer';
      throw new Error(`the service ${why}:\n${output.join('\n')}`);
    }
    const ok = await fetch(`${url}/users/count`, {
      headers: { authorization: `Bearer ${ACCESS_KEY}` },
      signal: AbortSignal.timeout(5_000),
    }).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) break;
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('the service has no pid');
  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}/ws?key=${ACCESS_KEY}`,
    pid: child.pid,
    warnings,
    stop,
  };
}
