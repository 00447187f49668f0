import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { postgresUser } from '../../../src/db/embedded-cluster.js';
import { closedPort, waitFor } from '../../helpers/wait.js';
import { haproxyConfig, type NodePorts, patroniConfig, SUPERUSER } from './configs.js';

// A failover cluster on loopback, from Debian's packages (scripts/ha/install.sh): one etcd
// member, three Patroni nodes (PostgreSQL 15, run as the postgres user) and HAProxy. Every
// process is a child of the test, and `destroy` ends them all, whatever state they are in.

const run = promisify(execFile);

export interface HaNode extends NodePorts {
  config: string;
  pgdata: string;
  patroni?: ChildProcess;
}

export interface Member {
  name: string;
  role: string;
  state: string;
}

export interface HaCluster {
  /** The `presently` database through HAProxy's primary port, and its replica port. */
  primaryUrl: string;
  replicaUrl: string;
  nodes: HaNode[];
  /** Members as Patroni sees them (any live node's REST API). */
  members(): Promise<Member[]>;
  /** The running leader's name, or undefined while there is none. */
  leader(): Promise<string | undefined>;
  /** SIGKILL to the node's Patroni, then to its postmaster: the machine gone. */
  kill(name: string): Promise<void>;
  /** `patronictl switchover` from the leader to `candidate`. */
  switchover(leader: string, candidate: string): Promise<void>;
  /** What the processes said, for a failure's report. */
  logs(): Promise<string>;
  destroy(): Promise<void>;
}

const children: ChildProcess[] = [];
const pgdatas: string[] = [];

function start(command: string, args: string[], log: string, runAs?: { uid: number; gid: number }) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8', HOME: path.dirname(log) },
    ...(runAs ?? {}),
  });
  const append = (chunk: Buffer) => void fs.appendFile(log, chunk).catch(() => {});
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  children.push(child);
  return child;
}

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

export async function startCluster(): Promise<HaCluster> {
  const runAs = await postgresUser();
  if (!runAs) throw new Error('the failover test runs as root (PostgreSQL runs as postgres)');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-ha-'));
  await fs.chmod(dir, 0o755);
  await fs.chown(dir, runAs.uid, runAs.gid);
  const port = async () => closedPort();
  const etcd = { client: await port(), peer: await port() };
  const proxy = { primary: await port(), replica: await port() };
  const nodes: HaNode[] = [];
  for (const name of ['node1', 'node2', 'node3']) {
    const ports = { name, pg: await port(), rest: await port() };
    const home = path.join(dir, name);
    await fs.mkdir(home, { mode: 0o700 });
    await fs.chown(home, runAs.uid, runAs.gid);
    const config = path.join(home, 'patroni.yml');
    await fs.writeFile(config, patroniConfig(ports, dir, etcd.client));
    await fs.chown(config, runAs.uid, runAs.gid);
    nodes.push({ ...ports, config, pgdata: path.join(home, 'data') });
    pgdatas.push(path.join(home, 'data'));
  }
  const rest = (node: HaNode, route: string) => `http://127.0.0.1:${node.rest}${route}`;

  const members = async (): Promise<Member[]> => {
    for (const node of nodes) {
      try {
        const response = await fetch(rest(node, '/cluster'), {
          signal: AbortSignal.timeout(1_000),
        });
        if (!response.ok) continue;
        return ((await response.json()) as { members: Member[] }).members;
      } catch {}
    }
    return [];
  };
  const leader = async () =>
    (await members()).find((m) => m.role === 'leader' && m.state === 'running')?.name;

  const destroy = async () => {
    // Patroni first (SIGTERM stops its PostgreSQL cleanly), then whatever is left, by force.
    const patronis = nodes.map((n) => n.patroni).filter((c): c is ChildProcess => !!c);
    for (const child of patronis) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([
      Promise.all(patronis.map((c) => (c.exitCode === null ? exited(c) : undefined))),
      new Promise((resolve) => setTimeout(resolve, 15_000)),
    ]);
    for (const node of nodes) await killPostmaster(node.pgdata);
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await fs.rm(dir, { recursive: true, force: true });
  };

  const logs = async () => {
    const names = ['etcd.log', 'haproxy.log', ...nodes.map((n) => `${n.name}/patroni.log`)];
    const parts = await Promise.all(
      names.map(async (name) => {
        const text = await fs.readFile(path.join(dir, name), 'utf8').catch(() => '');
        return `--- ${name}\n${text.split('\n').slice(-25).join('\n')}`;
      }),
    );
    return parts.join('\n');
  };

  try {
    const etcdData = path.join(dir, 'etcd');
    start(
      'etcd',
      [
        '--name=ha',
        `--data-dir=${etcdData}`,
        `--listen-client-urls=http://127.0.0.1:${etcd.client}`,
        `--advertise-client-urls=http://127.0.0.1:${etcd.client}`,
        `--listen-peer-urls=http://127.0.0.1:${etcd.peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcd.peer}`,
        `--initial-cluster=ha=http://127.0.0.1:${etcd.peer}`,
      ],
      path.join(dir, 'etcd.log'),
    );
    await waitFor(
      'etcd',
      async () => (await httpStatus(`http://127.0.0.1:${etcd.client}/health`)) === 200,
      30_000,
    );
    const startPatroni = (node: HaNode) => {
      node.patroni = start(
        'patroni',
        [node.config],
        path.join(dir, node.name, 'patroni.log'),
        runAs,
      );
    };
    // The first node bootstraps (initdb); the others then clone it (pg_basebackup), so that
    // they never race for the initialisation key on a machine this busy.
    startPatroni(nodes[0] as HaNode);
    await waitFor('node1 to lead', async () => (await leader()) === 'node1', 90_000);
    for (const node of nodes.slice(1)) startPatroni(node);
    await waitFor(
      'two running replicas, one of them synchronous',
      async () => {
        const all = await members();
        const streaming = all.filter((m) => m.role !== 'leader' && m.state === 'running');
        return streaming.length === 2 && streaming.some((m) => m.role === 'sync_standby');
      },
      120_000,
    );
    const haproxyCfg = path.join(dir, 'haproxy.cfg');
    await fs.writeFile(haproxyCfg, haproxyConfig(nodes, proxy.primary, proxy.replica));
    start('haproxy', ['-db', '-f', haproxyCfg], path.join(dir, 'haproxy.log'));
    const auth = `${SUPERUSER.username}:${SUPERUSER.password}`;
    const admin = `postgres://${auth}@127.0.0.1:${proxy.primary}/postgres`;
    // HAProxy counts a server up until its checks say otherwise: the primary port is ready
    // once it leads to the primary, and only there.
    let inARow = 0;
    await waitFor(
      'the primary port to lead to the primary',
      async () => {
        inARow = (await inRecovery(admin)) === false ? inARow + 1 : 0;
        return inARow >= 5;
      },
      30_000,
    );
    await run('psql', [admin, '-qXc', 'create database presently'], { timeout: 30_000 });
    return {
      primaryUrl: `postgres://${auth}@127.0.0.1:${proxy.primary}/presently`,
      replicaUrl: `postgres://${auth}@127.0.0.1:${proxy.replica}/presently`,
      nodes,
      members,
      leader,
      async kill(name) {
        const node = nodes.find((n) => n.name === name) as HaNode;
        const postmaster = await postmasterPid(node.pgdata);
        node.patroni?.kill('SIGKILL');
        if (postmaster) process.kill(postmaster, 'SIGKILL');
      },
      async switchover(from, candidate) {
        const node = nodes.find((n) => n.name === candidate) as HaNode;
        await run(
          'patronictl',
          ['-c', node.config, 'switchover', '--leader', from, '--candidate', candidate, '--force'],
          { timeout: 60_000 },
        );
      },
      logs,
      destroy,
    };
  } catch (error) {
    const said = await logs();
    await destroy();
    throw new Error(`the cluster did not start: ${(error as Error).message}\n${said}`, {
      cause: error,
    });
  }
}

/** Whether the server behind `url` is a standby; undefined when it does not answer. */
export async function inRecovery(url: string): Promise<boolean | undefined> {
  try {
    const { stdout } = await run('psql', [url, '-qXAtc', 'select pg_is_in_recovery()'], {
      timeout: 5_000,
    });
    return stdout.trim() === 't';
  } catch {
    return undefined;
  }
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => child.once('exit', () => resolve()));

async function postmasterPid(pgdata: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(pgdata, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  return pid > 0 ? pid : undefined;
}

async function killPostmaster(pgdata: string) {
  const pid = await postmasterPid(pgdata);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

// A worker that dies without its afterAll must leave nothing running.
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
  for (const pgdata of pgdatas) {
    try {
      process.kill(
        Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]),
        'SIGKILL',
      );
    } catch {}
  }
});
