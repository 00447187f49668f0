import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { type Binaries, type RunAs, serverEnv } from './embedded-cluster.js';

// The embedded server as a process tied to ours: started through a small shell wrapper that
// holds the read end of a pipe from this process. When this process ends, however it ends
// (SIGKILL included), the pipe closes and the wrapper stops the server with a fast shutdown;
// when the server ends, the wrapper ends and this process hears of it. No server is ever left
// behind, and exclusive use of the data folder is PostgreSQL's own postmaster.pid lock.
const WRAPPER = `
exec 3<&0
"$1" -D "$2" -p "$3" -c listen_addresses=127.0.0.1 -c unix_socket_directories= \\
  </dev/null >>"$4" 2>&1 3<&- &
server=$!
echo "$server"
(read -r _ <&3; kill -INT "$server" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

const READY_TIMEOUT_MS = 120_000;
const PREVIOUS_SERVER_WAIT_MS = 15_000;

export interface ServerProcess {
  /** The postmaster's pid, once the wrapper has said it. */
  pid: Promise<number>;
  /** Resolves when the server has ended, asked to or not. */
  exited: Promise<void>;
  /** Fast shutdown, resolving once the server has ended. */
  stop(): Promise<void>;
}

/** Starts the server on `port` (a free one when not given) and waits until it takes queries. */
export async function startServerProcess(
  bin: Binaries,
  pgdata: string,
  runAs: RunAs | undefined,
  fixedPort?: number,
): Promise<{ port: number; server: ServerProcess }> {
  await waitForPreviousServer(pgdata);
  const log = path.join(pgdata, 'server.log');
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    const server = spawnServer(bin, pgdata, port, log, runAs);
    try {
      await waitUntilReady(pgdata, await server.pid, server.exited);
      return { port, server };
    } catch (error) {
      await server.stop();
      // The free port may have been taken meanwhile: try another, or the same one again.
      if (attempt >= 3) {
        const tail = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15);
        throw new Error(`embedded PostgreSQL did not start:\n${tail.join('\n')}`, { cause: error });
      }
    }
  }
}

function spawnServer(
  bin: Binaries,
  pgdata: string,
  port: number,
  log: string,
  runAs: RunAs | undefined,
): ServerProcess {
  const child = spawn(
    '/bin/sh',
    ['-c', WRAPPER, 'presently-postgres', bin.postgres, pgdata, String(port), log],
    {
      ...runAs,
      env: serverEnv(),
      // A session of its own: a Ctrl-C meant for presently reaches presently, which then stops
      // the server in order, after the requests in flight.
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
    },
  );
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  // The wrapper's first line is the postmaster's pid.
  const pid = new Promise<number>((resolve, reject) => {
    let said = '';
    child.stdout?.on('data', (chunk) => {
      said += chunk;
      if (said.includes('\n')) resolve(Number(said.split('\n')[0]));
    });
    void exited.then(() => reject(new Error('the server ended before it started')));
  });
  pid.catch(() => undefined);
  return {
    pid,
    exited,
    stop: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

/**
 * postmaster.pid says when the server is ready: its first line is the postmaster's pid (a file
 * left by a server that died still says "ready"), its eighth the state. This is what pg_ctl
 * itself waits on.
 */
async function waitUntilReady(pgdata: string, pid: number, exited: Promise<void>) {
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (ended) throw new Error('the server ended while starting');
    const lines = (await readPidFile(pgdata)).split('\n');
    if (Number(lines[0]) === pid && lines[7]?.trim() === 'ready') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the server was not ready after ${READY_TIMEOUT_MS / 1000} seconds`);
}

/**
 * A server still running on this folder is either finishing its shutdown (its presently
 * just ended) or belongs to another presently: wait a little for the first, refuse the second.
 */
async function waitForPreviousServer(pgdata: string) {
  const deadline = Date.now() + PREVIOUS_SERVER_WAIT_MS;
  for (;;) {
    const pid = Number((await readPidFile(pgdata)).split('\n')[0]);
    if (!(pid > 0 && isAlive(pid))) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${pgdata} is in use by a running PostgreSQL (pid ${pid}), another presently's`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function readPidFile(pgdata: string): Promise<string> {
  return fs.readFile(path.join(pgdata, 'postmaster.pid'), 'utf8').catch(() => '');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
