import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { databaseUrl, dropDatabase, withAdmin } from '../helpers/admin.js';
import { makeDataDir } from '../helpers/data-dir.js';
import { KEYS } from '../helpers/http.js';
import { socketUrl } from '../helpers/realtime.js';
import { type RunningService, useServices } from '../helpers/service.js';
import { type Frame, isEvent, openSocket } from '../helpers/socket.js';
import { waitFor } from '../helpers/wait.js';
import { query } from './helpers/checks.js';

// A log that moved: the database under a running presently is replaced by an older copy of
// itself (a dump restored, an asynchronous replica promoted), or by another database. The log
// then ends before the position the service has read to, or has another identity
// (migrations/0008): every socket gets `resync` (reason `log_moved`) and fresh snapshots, the
// service reads on from the log's real end, and no change after that is skipped.
//
// The "dump" is a copy of the database made with CREATE DATABASE ... TEMPLATE before the later
// changes, swapped in under the service by renaming databases, as a restore into a new database
// followed by a switch of names would be.

const { adminUrl, template } = inject('databaseServer');
const services = useServices();
const names: string[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await withAdmin(adminUrl, async (admin) => {
    for (const name of names) await dropDatabase(admin, name);
  });
  await Promise.all(dirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

const admin = (sql: string) => withAdmin(adminUrl, (client) => client.query(sql));
const fresh = (prefix: string) => {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  names.push(name);
  return name;
};

let live: string;
let url: string;
beforeEach(async () => {
  live = fresh('presently_moved');
  url = databaseUrl(adminUrl, live);
  await admin(`create database ${live} template ${template}`);
});

const ping = (db: string, users: string[]) =>
  query(
    databaseUrl(adminUrl, db),
    `select presently.ping_many($1::text[], array_fill('busy'::text, array[cardinality($1::text[])]))`,
    [users],
  );

/** A copy of `db` as it is now (no one may be connected to it meanwhile). */
async function copyOf(db: string): Promise<string> {
  const copy = fresh('presently_dump');
  await admin(`create database ${copy} template ${db}`);
  return copy;
}

/** Puts `replacement` under the name the service connects to, cutting its connections. */
async function swapIn(replacement: string) {
  const gone = fresh('presently_gone');
  await admin(`alter database ${live} allow_connections false`);
  await admin(
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${live}' and pid <> pg_backend_pid()`,
  );
  await admin(`alter database ${live} rename to ${gone}`);
  await admin(`alter database ${replacement} rename to ${live}`);
}

async function start(): Promise<RunningService> {
  const dataDir = await makeDataDir('presently-moved-');
  dirs.push(dataDir);
  return services.start({
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    ACCESS_KEY: KEYS.access,
    ACCESS_KEY_SYSTEM: KEYS.system,
    LOG_LEVEL: 'info',
  });
}

async function httpPing(service: RunningService, id: string) {
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${service.port}/users/ping?key=${KEYS.access}`, {
      method: 'POST',
      body: JSON.stringify({ id, status: 'available' }),
    });
    await response.body?.cancel();
    if (response.status === 200) return;
    // The service answers 503 while its connections come back after the swap.
    expect(response.status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const positions = (frames: Frame[], from = 0) =>
  frames
    .slice(from)
    .filter((frame) => frame.event === 'presence-change')
    .map((frame) => frame.data.position as number);

async function logAfter(after: number) {
  const rows = await query<{ position: string }>(
    url,
    'select position from presently.status_changes where position > $1 order by position',
    [after],
  );
  return rows.map((row) => Number(row.position));
}

describe('a log that moved under a running service', () => {
  it('an older copy restored: the log ends before the position read; resync, then nothing skipped', async () => {
    await ping(live, ['ann', 'bob']);
    const dump = await copyOf(live);
    const service = await start();
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-list'));
    for (const user of ['cat', 'dan', 'eve']) await httpPing(service, user);
    await socket.next((f) => f.event === 'presence-change' && f.data.user === 'eve');
    const before = Math.max(...positions(socket.frames));

    await swapIn(dump);
    const resync = await socket.next(isEvent('resync'), 20_000);
    expect(resync.data).toEqual({ position: expect.any(Number), reason: 'log_moved' });
    expect(resync.data.position).toBeLessThan(before);
    // Fresh snapshots follow it: the restored copy's users.
    const lastList = () =>
      ((socket.all('online-users-list').at(-1)?.data ?? []) as { user: string }[]).map(
        (u) => u.user,
      );
    await waitFor('a list of the restored users', () => lastList().join() === 'ann,bob');

    // The restored log's positions start again below the old ones: none is skipped.
    const from = socket.frames.length;
    for (const user of ['fay', 'gus', 'hal']) await httpPing(service, user);
    const log = await logAfter(resync.data.position);
    expect(log.length).toBe(3);
    await waitFor('every change after the resync', () =>
      log.every((p) => positions(socket.frames, from).includes(p)),
    );
    expect(positions(socket.frames, from)).toEqual(log);
    expect(log[0]).toBeLessThan(before);
    await socket.close();
  });

  it('another database (another identity) whose log runs past the position: resync, nothing skipped', async () => {
    const other = await copyOf(live);
    // Far more changes than the service will have read, and an identity of its own.
    await ping(
      other,
      Array.from({ length: 20 }, (_, i) => `other-${i}`),
    );
    await query(
      databaseUrl(adminUrl, other),
      'update presently.database_identity set identity = gen_random_uuid()',
    );
    const service = await start();
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-list'));
    await httpPing(service, 'ann');
    await socket.next((f) => f.event === 'presence-change' && f.data.user === 'ann');

    await swapIn(other);
    const resync = await socket.next(isEvent('resync'), 20_000);
    expect(resync.data).toEqual({ position: 20, reason: 'log_moved' });
    const from = socket.frames.length;
    await httpPing(service, 'zed');
    await socket.next((f) => f.event === 'presence-change' && f.data.user === 'zed', 10_000, from);
    expect(positions(socket.frames, from)).toEqual(await logAfter(20));
    await socket.close();
  });
});
