import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from './helpers/database.js';
import { call, spawnService, startService } from './helpers/service.js';

// The service as a user runs it: its own process, a real HTTP server, real PostgreSQL.

let dataDir: string;
beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-service-'));
  await fs.chmod(dataDir, 0o755);
});
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

const readKeys = async (dir: string) =>
  JSON.parse(await fs.readFile(path.join(dir, 'keys.json'), 'utf8'));

describe('with no DATABASE_URL (the embedded default)', () => {
  it('starts its own PostgreSQL, keeps data and keys across a restart, and stops cleanly', async () => {
    const env = { DATA_DIR: dataDir, LOG_LEVEL: 'debug' };
    const first = await startService(env);
    const keys = await readKeys(dataDir);
    expect(first.stderr()).toContain(`ACCESS_KEY=${keys.ACCESS_KEY}`);
    expect(
      (await call(first, 'POST', '/users/ping', keys.ACCESS_KEY, { id: 42, status: 'busy' }))
        .status,
    ).toBe(200);
    const listed = (await call(first, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
    expect(listed).toEqual([{ user: '42', status: 'busy', time: expect.any(Number) }]);
    await fetch(`http://127.0.0.1:${first.port}/users/count?key=${keys.ACCESS_KEY}`);

    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.stdout()).toContain('embedded PostgreSQL stopped');
    await expect(fs.access(path.join(dataDir, 'postgres', 'postmaster.pid'))).rejects.toThrow();
    // The structured logs carry no key, though requests passed them in the query and headers.
    expect(first.stdout()).toContain('"path":"/users/count"');
    for (const key of Object.values(keys) as string[]) expect(first.stdout()).not.toContain(key);

    const second = await startService(env);
    try {
      expect(await readKeys(dataDir)).toEqual(keys);
      expect(second.stdout()).not.toContain('migration applied');
      const again = (await call(second, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
      expect(again).toEqual(listed);
    } finally {
      expect(await second.stop('SIGINT')).toBe(0);
    }
  });

  it('answers pings that are on their way when SIGTERM comes, and stores every one it acknowledged', async () => {
    const service = await startService({ DATA_DIR: dataDir });
    const keys = await readKeys(dataDir);
    await call(service, 'GET', '/database/clear', keys.ACCESS_KEY_SYSTEM);
    const pings = Array.from({ length: 100 }, (_, i) =>
      call(service, 'POST', '/users/ping', keys.ACCESS_KEY, {
        id: `burst-${i}`,
        status: 'busy',
      }).then(
        (answer) => answer.status,
        () => 'reset',
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    const exited = service.stop('SIGTERM');
    const outcomes = await Promise.all(pings);
    expect(await exited).toBe(0);
    expect(outcomes.filter((outcome) => outcome !== 200 && outcome !== 'reset')).toEqual([]);

    const restarted = await startService({ DATA_DIR: dataDir });
    try {
      const stored = (await call(restarted, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
      const storedIds = new Set(stored.map((u: { user: string }) => u.user));
      const acknowledged = outcomes.flatMap((outcome, i) =>
        outcome === 200 ? [`burst-${i}`] : [],
      );
      expect(acknowledged.length).toBeGreaterThan(0);
      expect(acknowledged.filter((id) => !storedIds.has(id))).toEqual([]);
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
  });

  it('refuses a second instance on the same DATA_DIR, leaving the first one serving', async () => {
    const first = await startService({ DATA_DIR: dataDir });
    try {
      const second = spawnService({ DATA_DIR: dataDir });
      expect(await second.exited).toBe(1);
      expect(second.out.stdout).toContain('is in use by another presently');
      const keys = await readKeys(dataDir);
      expect((await call(first, 'GET', '/users/count', keys.ACCESS_KEY)).status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  });

  it('recovers after being killed: the left-behind server is replaced, nothing acknowledged is lost', async () => {
    const env = { DATA_DIR: dataDir };
    const killed = await startService(env);
    const keys = await readKeys(dataDir);
    expect(
      (await call(killed, 'POST', '/users/ping', keys.ACCESS_KEY, { id: 'k', status: 'available' }))
        .status,
    ).toBe(200);
    await killed.stop('SIGKILL');

    const restarted = await startService(env);
    try {
      expect(restarted.stdout()).toContain('left behind');
      const users = (await call(restarted, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
      expect(users.map((u: { user: string }) => u.user)).toContain('k');
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
  });
});

describe('when the embedded server dies under it', () => {
  it('starts it again on the same port; requests recover by themselves, data intact', async () => {
    const service = await startService({ DATA_DIR: dataDir });
    try {
      const keys = await readKeys(dataDir);
      await call(service, 'POST', '/users/ping', keys.ACCESS_KEY, {
        id: 'survivor',
        status: 'busy',
      });
      const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
      const postmaster = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0]);
      process.kill(postmaster, 'SIGKILL');

      // Until it is back, every request is answered at once: 200 from a connection that has not
      // noticed yet, or 503, never a hang or a crash.
      const statuses = new Set<number>();
      const deadline = Date.now() + 25_000;
      while (
        !service.stdout().includes('embedded PostgreSQL started again') &&
        Date.now() < deadline
      ) {
        statuses.add((await call(service, 'GET', '/users/count', keys.ACCESS_KEY)).status);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect([...statuses].filter((status) => status !== 200 && status !== 503)).toEqual([]);
      expect(statuses).toContain(503);
      const answer = await call(service, 'GET', '/users/list/all', keys.ACCESS_KEY);
      expect(answer.status).toBe(200);
      expect(answer.body.data.map((u: { user: string }) => u.user)).toContain('survivor');
    } finally {
      expect(await service.stop()).toBe(0);
    }
  });
});

describe('a signal during start-up', () => {
  it('stops starting, releases the embedded server it was starting, and exits 0', async () => {
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-early-'));
    await fs.chmod(fresh, 0o755);
    try {
      const { child, exited, out } = spawnService({ DATA_DIR: fresh });
      await new Promise<void>((resolve) => {
        child.stdout?.on('data', () => out.stdout.includes('initialising') && resolve());
      });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out.stdout).not.toContain('presently is listening');
      await expect(fs.access(path.join(fresh, 'postgres', 'postmaster.pid'))).rejects.toThrow();
    } finally {
      await fs.rm(fresh, { recursive: true, force: true });
    }
  });
});

describe('with DATABASE_URL', () => {
  it('migrates that database and keeps data across a restart', async () => {
    const database = await createTestDatabase({ migrated: false });
    const env = {
      DATABASE_URL: database.url,
      DATA_DIR: dataDir,
      ACCESS_KEY: 'k-user',
      ACCESS_KEY_SYSTEM: 'k-sys',
    };
    try {
      const first = await startService(env);
      expect(first.stdout()).toContain('0001_presence.sql');
      expect(first.stderr()).not.toContain('ACCESS_KEY=');
      await call(first, 'POST', '/users/ping', 'k-user', { id: 'ext', status: 'available' });
      expect(await first.stop()).toBe(0);

      const second = await startService(env);
      expect((await call(second, 'GET', '/users/count', 'k-user')).body).toEqual({
        data: { available: 1, busy: 0, away: 0 },
      });
      expect((await call(second, 'GET', '/database/clear', 'k-sys')).body).toEqual({
        data: 'success',
      });
      expect(await second.stop()).toBe(0);
    } finally {
      await database.drop();
    }
  });
});

describe('with invalid configuration', () => {
  it('exits 1 before starting anything, naming every invalid variable', async () => {
    const { exited, out } = spawnService({
      PORT: 'abc',
      AWAY_TIMEOUT_SECONDS: '0',
      DATA_DIR: dataDir,
    });
    expect(await exited).toBe(1);
    expect(out.stderr).toMatch(/PORT /);
    expect(out.stderr).toMatch(/AWAY_TIMEOUT_SECONDS /);
  });
});
