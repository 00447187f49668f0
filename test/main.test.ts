import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, postmasterPid, readKeys } from './helpers/data-dir.js';
import { createTestDatabase } from './helpers/database.js';
import { call, useServices } from './helpers/service.js';

// The service as a user runs it (src/main.ts): its own process, a real HTTP server, real
// PostgreSQL, signals.

const services = useServices();
let dataDir: string;
beforeAll(async () => {
  dataDir = await makeDataDir();
});
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

describe('with no DATABASE_URL (the embedded default)', () => {
  it('starts its own PostgreSQL, keeps data and keys across a restart, and stops cleanly', async () => {
    const env = { DATA_DIR: dataDir, LOG_LEVEL: 'debug' };
    const first = await services.start(env);
    const keys = await readKeys(dataDir);
    expect(first.stderr()).toContain(`ACCESS_KEY=${keys.ACCESS_KEY}`);
    const pinged = await call(first, 'POST', '/users/ping', keys.ACCESS_KEY, {
      id: 42,
      status: 'busy',
    });
    expect(pinged.status).toBe(200);
    const listed = (await call(first, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
    expect(listed).toEqual([{ user: '42', status: 'busy', time: expect.any(Number) }]);
    await fetch(`http://127.0.0.1:${first.port}/users/count?key=${keys.ACCESS_KEY}`);

    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.stdout()).toContain('embedded PostgreSQL stopped');
    expect(await postmasterPid(dataDir)).toBeUndefined();
    // The structured logs carry no key, though requests passed them in the query and headers.
    expect(first.stdout()).toContain('"path":"/users/count"');
    for (const key of Object.values(keys)) expect(first.stdout()).not.toContain(key);

    const second = await services.start(env);
    expect(await readKeys(dataDir)).toEqual(keys);
    expect(second.stdout()).not.toContain('migration applied');
    expect((await call(second, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data).toEqual(
      listed,
    );
    expect(await second.stop('SIGINT')).toBe(0);
  });

  it('answers pings on their way when SIGTERM comes, and stores every one it acknowledged', async () => {
    const service = await services.start({ DATA_DIR: dataDir });
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

    const restarted = await services.start({ DATA_DIR: dataDir });
    const stored = (await call(restarted, 'GET', '/users/list/all', keys.ACCESS_KEY)).body.data;
    const storedIds = new Set(stored.map((u: { user: string }) => u.user));
    const acknowledged = outcomes.flatMap((outcome, i) => (outcome === 200 ? [`burst-${i}`] : []));
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(acknowledged.filter((id) => !storedIds.has(id))).toEqual([]);
    expect(await restarted.stop()).toBe(0);
  });
});

describe('a signal during start-up', () => {
  it.each([
    ['while the cluster is initialised', 'initialising the embedded PostgreSQL cluster'],
    ['once the server has started, while migrating', 'embedded PostgreSQL started'],
  ])('%s: stops starting, stops the server, exits 0', async (_when, line) => {
    const fresh = await makeDataDir('presently-early-');
    try {
      const { child, exited, out } = services.spawn({ DATA_DIR: fresh });
      await new Promise<void>((resolve) => {
        child.stdout?.on('data', () => out.stdout.includes(line) && resolve());
      });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out.stdout).not.toContain('presently is listening');
      expect(out.stdout).not.toContain('"level":60');
      expect(await postmasterPid(fresh)).toBeUndefined();
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
      const first = await services.start(env);
      expect(first.stdout()).toContain('0001_presence.sql');
      expect(first.stderr()).not.toContain('ACCESS_KEY=');
      await call(first, 'POST', '/users/ping', 'k-user', { id: 'ext', status: 'available' });
      expect(await first.stop()).toBe(0);

      const second = await services.start(env);
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
    const { exited, out } = services.spawn({
      PORT: 'abc',
      AWAY_TIMEOUT_SECONDS: '0',
      DATA_DIR: dataDir,
    });
    expect(await exited).toBe(1);
    expect(out.stderr).toMatch(/PORT /);
    expect(out.stderr).toMatch(/AWAY_TIMEOUT_SECONDS /);
  });
});
