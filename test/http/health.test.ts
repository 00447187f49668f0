import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/connection.js';
import { createListener, type Listener } from '../../src/db/listener.js';
import { createReadiness } from '../../src/db/readiness.js';
import { CHANGES_CHANNEL } from '../../src/presence/changes.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { LATEST_MIGRATION, request, testApp } from '../helpers/http.js';
import { closedPort, waitFor } from '../helpers/wait.js';

// Probes need no key and tell what failed, never why: no error text, host, port or SQL.

const database = useTestDatabase();
const listeners: Listener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((listener) => listener.stop()));
});

function listenerOn(connectionString: string): Listener {
  const listener = createListener({
    connectionString,
    channel: CHANGES_CHANNEL,
    logger: silentLogger,
    onWake: () => {},
  });
  listeners.push(listener);
  listener.start();
  return listener;
}

const noInternals = (body: unknown) =>
  expect(JSON.stringify(body)).not.toMatch(/ECONN|127\.0\.0\.1|localhost|select|timeout|\d{4,}/i);

describe('/healthz', () => {
  it('answers 200 {"status":"ok"} with no key, and no other method', async () => {
    const app = testApp(database.db);
    const answer = await request(app, 'GET', '/healthz', { key: null });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: 'ok' });
    expect(answer.headers.get('x-request-id')).toBeTruthy();
    expect((await request(app, 'POST', '/healthz', { key: null })).status).toBe(405);
  });
});

describe('/readyz with a real database', () => {
  it('is ready once the database answers, migrations are applied and the listener listens', async () => {
    const listener = listenerOn(database.url);
    await waitFor('the listener', () => listener.listening);
    const app = testApp(database.db, {
      readiness: createReadiness({ db: database.db, listener, latestMigration: LATEST_MIGRATION }),
    });
    const answer = await request(app, 'GET', '/readyz', { key: null });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      status: 'ok',
      checks: { database: true, migrations: true, listener: true },
    });
  });

  it('is not ready while the listener is not listening', async () => {
    const listener = listenerOn(database.url);
    await waitFor('the listener', () => listener.listening);
    await listener.stop();
    const app = testApp(database.db, {
      readiness: createReadiness({ db: database.db, listener, latestMigration: LATEST_MIGRATION }),
    });
    const answer = await request(app, 'GET', '/readyz', { key: null });
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({
      status: 'unavailable',
      checks: { database: true, migrations: true, listener: false },
    });
  });

  it('is not ready when this version ships a migration the database lacks', async () => {
    const app = testApp(database.db, {
      readiness: createReadiness({
        db: database.db,
        listener: listenerOn(database.url),
        latestMigration: LATEST_MIGRATION + 1,
      }),
    });
    const answer = await request(app, 'GET', '/readyz', { key: null });
    expect(answer.status).toBe(503);
    expect(answer.body.checks).toMatchObject({ database: true, migrations: false });
  });
});

describe('/readyz without a database', () => {
  let port: number;
  let pool: ReturnType<typeof createPool>;
  beforeAll(async () => {
    port = await closedPort();
    pool = createPool(
      { connectionString: `postgres://nobody:x@127.0.0.1:${port}/none` },
      silentLogger,
    );
  });
  afterAll(() => pool.end());

  it('answers 503 naming every failed check, with no internals, and needs no key', async () => {
    const url = `postgres://nobody:x@127.0.0.1:${port}/none`;
    const db = createDb(pool);
    const app = testApp(db, {
      readiness: createReadiness({ db, listener: listenerOn(url), latestMigration: 4 }),
    });
    const answer = await request(app, 'GET', '/readyz', { key: null });
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({
      status: 'unavailable',
      checks: { database: false, migrations: false, listener: false },
    });
    noInternals(answer.body);
  });

  it('answers within its timeout when the database accepts connections but never answers', async () => {
    // A server that takes the connection and says nothing: the pool would wait 5 s to connect.
    const accepted = new Set<net.Socket>();
    const silent = net.createServer((socket) => accepted.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const stuck = createPool(
      { connectionString: `postgres://nobody:x@127.0.0.1:${silentPort}/none` },
      silentLogger,
    );
    try {
      const db = createDb(stuck);
      const readiness = createReadiness({
        db,
        listener: { listening: true },
        latestMigration: LATEST_MIGRATION,
        timeoutMs: 300,
      });
      const started = performance.now();
      const answer = await request(testApp(db, { readiness }), 'GET', '/readyz', { key: null });
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(answer.status).toBe(503);
      expect(answer.body.checks).toEqual({ database: false, migrations: false, listener: true });
      noInternals(answer.body);
    } finally {
      silent.close();
      for (const socket of accepted) socket.destroy();
      await stuck.end().catch(() => {});
    }
  });
});
