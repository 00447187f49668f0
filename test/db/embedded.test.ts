import fs from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedUrl, makeDataDir, postmasterPid, readKeys } from '../helpers/data-dir.js';
import { call, useServices } from '../helpers/service.js';
import { isEvent, openSocket } from '../helpers/socket.js';
import { waitFor } from '../helpers/wait.js';

// The embedded server's life beside the service's: never left behind, never shared, restarted
// when it dies.

const services = useServices();
let dataDir: string;
beforeAll(async () => {
  dataDir = await makeDataDir();
});
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the embedded server', () => {
  it('stops by itself when presently is killed, and the next start finds everything acknowledged', async () => {
    const killed = await services.start({ DATA_DIR: dataDir });
    const keys = await readKeys(dataDir);
    const pinged = await call(killed, 'POST', '/users/ping', keys.ACCESS_KEY, {
      id: 'k',
      status: 'available',
    });
    expect(pinged.status).toBe(200);
    const postmaster = await postmasterPid(dataDir);
    expect(postmaster).toBeGreaterThan(0);

    await killed.stop('SIGKILL');
    await waitFor('the embedded server to stop', () => !isAlive(postmaster as number), 15_000);

    const restarted = await services.start({ DATA_DIR: dataDir });
    const users = (await call(restarted, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
    expect(users.map((u: { user: string }) => u.user)).toContain('k');
    expect(await restarted.stop()).toBe(0);
  });

  it('is made with shared buffers for a million users, in postgresql.conf where they can be changed', async () => {
    const service = await services.start({ DATA_DIR: dataDir });
    const config = await fs.readFile(`${dataDir}/postgres/postgresql.conf`, 'utf8');
    expect(config).toMatch(/^shared_buffers = 512MB/m);
    const client = new pg.Client(await embeddedUrl(dataDir));
    await client.connect();
    try {
      const { rows } = await client.query('show shared_buffers');
      expect(rows[0]?.shared_buffers).toBe('512MB');
    } finally {
      await client.end();
    }
    expect(await service.stop()).toBe(0);
  });

  it('is refused to a second presently on the same DATA_DIR, the first one serving on', async () => {
    const first = await services.start({ DATA_DIR: dataDir });
    const second = services.spawn({ DATA_DIR: dataDir });
    expect(await second.exited).toBe(1);
    expect(second.out.stdout).toMatch(/in use by a running PostgreSQL/);
    const keys = await readKeys(dataDir);
    expect((await call(first, 'GET', '/users/count', keys.ACCESS_KEY)).status).toBe(200);
    expect(await first.stop()).toBe(0);
  });

  it('is started again on the same port when it dies; requests and sockets recover by themselves', async () => {
    const service = await services.start({ DATA_DIR: dataDir });
    const keys = await readKeys(dataDir);
    await call(service, 'POST', '/users/ping', keys.ACCESS_KEY, { id: 'survivor', status: 'busy' });
    const socket = await openSocket(`ws://127.0.0.1:${service.port}/ws?key=${keys.ACCESS_KEY}`);
    await socket.next(isEvent('online-users-count'));
    process.kill((await postmasterPid(dataDir)) as number, 'SIGKILL');

    // Until it is back, every request is answered at once: 200 from a connection that has not
    // noticed yet, or 503, never a hang or a crash.
    const statuses = new Set<number>();
    while (!service.stdout().includes('embedded PostgreSQL started again')) {
      statuses.add((await call(service, 'GET', '/users/count', keys.ACCESS_KEY)).status);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // (On a quiet machine the server can be back before a request notices it was gone, so a
    // 503 is allowed, not required.)
    expect(statuses.size).toBeGreaterThan(0);
    expect([...statuses].filter((status) => status !== 200 && status !== 503)).toEqual([]);
    const answer = await call(service, 'GET', '/users/list/all', keys.ACCESS_KEY);
    expect(answer.status).toBe(200);
    expect(answer.body.data.map((u: { user: string }) => u.user)).toContain('survivor');

    // The socket stayed open through the outage, and changes reach it again.
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    await call(service, 'POST', '/users/ping', keys.ACCESS_KEY, { id: 'back', status: 'busy' });
    await socket.next(
      isEvent('presence-change', (data) => data.user === 'back' && data.status === 'busy'),
    );
    expect(await service.stop()).toBe(0);
    expect((await socket.closed).code).toBe(1001);
  });
});
