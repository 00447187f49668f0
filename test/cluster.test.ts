import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, postmasterPid, readKeys } from './helpers/data-dir.js';
import { call, type RunningService, useServices } from './helpers/service.js';
import { isEvent, openSocket } from './helpers/socket.js';

// WORKERS (CONTRACT "Bulk pings and cores"): several processes on one port, over one embedded
// PostgreSQL started once by the primary, each worker a whole instance.

const services = useServices();
let dataDir: string;
beforeAll(async () => {
  dataDir = await makeDataDir();
});
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

const lines = (service: RunningService) =>
  service
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
const logged = (service: RunningService, msg: string) =>
  lines(service).filter((line) => line.msg === msg);

async function until(check: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('WORKERS=2 with the embedded database', { timeout: 120_000 }, () => {
  it('serves one port from two workers over one embedded server; a change on one reaches sockets on the other; SIGTERM stops all', async () => {
    const service = await services.start({ DATA_DIR: dataDir, WORKERS: '2', LOG_LEVEL: 'debug' });
    await until(() => logged(service, 'presently is listening').length === 2, 'two workers');
    expect(logged(service, 'embedded PostgreSQL started')).toHaveLength(1);
    expect(logged(service, 'migrations are up to date').length).toBeLessThanOrEqual(1);
    const workers = logged(service, 'worker started');
    expect(workers.map((line) => line.worker).sort()).toEqual([1, 2]);
    const keys = await readKeys(dataDir);
    expect(service.stderr().match(/ACCESS_KEY=/g)).toHaveLength(1);

    // Connections are handed to the workers in turn: four sockets land on both.
    const sockets = [];
    for (let i = 0; i < 4; i++) {
      const socket = await openSocket(`ws://127.0.0.1:${service.port}/ws?key=${keys.ACCESS_KEY}`);
      await socket.next(isEvent('online-users-count'));
      sockets.push(socket);
    }
    await until(() => logged(service, 'socket opened').length === 4, 'socket logs');
    const socketWorkers = new Set(logged(service, 'socket opened').map((line) => line.worker));
    expect([...socketWorkers].sort()).toEqual([1, 2]);

    // A ping taken by either worker reaches the sockets of both.
    expect(
      (await call(service, 'POST', '/users/ping', keys.ACCESS_KEY, { id: 'c1', status: 'busy' }))
        .status,
    ).toBe(200);
    for (const socket of sockets) {
      await socket.next(isEvent('presence-change', (d) => d.user === 'c1' && d.status === 'busy'));
    }
    const metrics = await fetch(
      `http://127.0.0.1:${service.port}/metrics?key=${keys.ACCESS_KEY_SYSTEM}`,
    );
    expect(await metrics.text()).toMatch(/presently_pings_total\{.*worker="[12]"/);

    const pids = workers.map((line) => line.pid as number);
    expect(pids.every(alive)).toBe(true);
    expect(await service.stop('SIGTERM')).toBe(0);
    expect(pids.some(alive)).toBe(false);
    expect(service.stdout()).toContain('embedded PostgreSQL stopped');
    expect(await postmasterPid(dataDir)).toBeUndefined();
    for (const socket of sockets) expect((await socket.closed).code).toBe(1001);
  });

  it('restarts a worker that dies, and keeps serving meanwhile', async () => {
    const service = await services.start({ DATA_DIR: dataDir, WORKERS: '2' });
    await until(() => logged(service, 'presently is listening').length === 2, 'two workers');
    const [first] = logged(service, 'worker started');
    process.kill(first.pid, 'SIGKILL');
    await until(() => logged(service, 'worker died; starting another').length === 1, 'the log');
    await until(() => logged(service, 'presently is listening').length === 3, 'a new worker');
    const keys = await readKeys(dataDir);
    for (let i = 0; i < 4; i++) {
      expect((await call(service, 'GET', '/users/count', keys.ACCESS_KEY)).status).toBe(200);
    }
    expect(await service.stop('SIGTERM')).toBe(0);
    expect(await postmasterPid(dataDir)).toBeUndefined();
  });
});
