import net from 'node:net';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { presenceRows, useClients } from './helpers/database.js';
import { KEYS } from './helpers/http.js';
import { socketUrl, useRealtime } from './helpers/realtime.js';
import { isEvent, openSocket } from './helpers/socket.js';
import { waitFor, within } from './helpers/wait.js';

// Stopping the real service (src/main.ts) with sockets open. (HTTP requests in flight at
// SIGTERM: test/main.test.ts; sockets closed 1001 with nothing pending: test/ws/instances.test.ts.)

const realtime = useRealtime();
const connect = useClients(realtime);

/** Whether something accepts connections on this loopback port. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
    socket.once('connect', () => socket.destroy());
  });

describe('SIGTERM with sockets open', () => {
  it('stores every ping the sockets had sent, closes them with 1001 and exits 0', async () => {
    const service = await realtime.start();
    const sockets = await Promise.all([0, 1, 2].map(() => openSocket(socketUrl(service))));
    for (const [s, socket] of sockets.entries()) {
      // Under the 64 a socket may have waiting, so every one is taken.
      for (let i = 0; i < 60; i++) socket.send('user-ping', { id: `s${s}-${i}`, status: 'busy' });
      // Frames are read in order: the answer to this one means every ping before it was taken.
      socket.send('no-such-event', {});
    }
    await Promise.all(sockets.map((socket) => socket.next(isEvent('error'))));

    // A socket stores its pings one after another: most are still waiting now.
    const exited = service.stop('SIGTERM');
    const closes = await Promise.all(sockets.map((socket) => socket.closed));
    expect(closes.map((close) => close.code)).toEqual([1001, 1001, 1001]);
    expect(await exited).toBe(0);
    expect((await presenceRows(realtime.db)).length).toBe(180);
    expect(service.stdout()).not.toContain('stopped waiting for socket pings');
    expect(service.stdout()).toContain('"msg":"stopped"');
  });

  it('exits at once, with 1, on a second signal while a socket holds the shutdown', async () => {
    const service = await realtime.start();
    const socket = await openSocket(socketUrl(service, KEYS.access));
    // A client that stops reading never answers the close: the hub waits for it a while.
    (socket.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const exited = service.stop('SIGTERM');
    // A repeat within a second is taken for the terminal's echo of the first: wait past it.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(service.child.exitCode).toBeNull();
    service.child.kill('SIGTERM');
    // Well before the hub gives up on the socket (3 s), let alone the 15 s timeout.
    expect(await within('the exit', exited, 1_500)).toBe(1);
    expect(service.stdout()).toContain('second signal: exiting now');
  });

  it('stores a ping taken just before SIGTERM, after the hub has given up waiting', async () => {
    const application = 'presently-shutdown-drain';
    const url = new URL(realtime.url);
    url.searchParams.set('application_name', application);
    const service = await realtime.start({ DATABASE_URL: url.toString() });
    // The service's connections: how many, and how many wait for a lock.
    const observer = await connect();
    const connections = async () => {
      const { rows } = await observer.query(
        `select count(*)::int as open, (count(*) filter (where wait_event_type = 'Lock'))::int as waiting
         from pg_stat_activity where application_name = $1`,
        [application],
      );
      return rows[0] as { open: number; waiting: number };
    };
    // Two users' rows locked: a ping of each is written and waits, the writer's two batches in
    // flight; a third ping is taken and queued behind them.
    await sql`select presently.clear_all()`.execute(realtime.db);
    await sql`insert into presently.presence (user_id, status, last_ping)
      values ('locked-1', 'available', now()), ('locked-2', 'available', now())`.execute(
      realtime.db,
    );
    const locker = await connect();
    await locker.query('begin');
    await locker.query(`select 1 from presently.presence where user_id like 'locked-%' for update`);
    const sockets = await Promise.all([0, 1, 2].map(() => openSocket(socketUrl(service))));
    for (const [i, id] of ['locked-1', 'locked-2'].entries()) {
      sockets[i]?.send('user-ping', { id, status: 'busy' });
      await waitFor(`${id} waiting`, async () => (await connections()).waiting === i + 1);
    }
    const last = sockets[2];
    last?.send('user-ping', { id: 'queued', status: 'busy' });
    // Frames are read in order: the answer to this one means the ping before it was taken.
    last?.send('no-such-event', {});
    await last?.next(isEvent('error'));

    const exited = service.stop('SIGTERM');
    // The hub gives up on the waiting pings (3 s), then the server stops listening, and the
    // writer drains: the queued ping goes once the locks are released, within its own time
    // (4 s). Without the drain, the pool would close now, under it: the locks are released once
    // only the waiting batches are left, or shortly after, as they are when the writer drains.
    await waitFor('the server to stop listening', async () => !(await accepts(service.port)));
    await waitFor(
      'the pool to close',
      async () => {
        const { open, waiting } = await connections();
        return open === waiting;
      },
      200,
    ).catch(() => {});
    await locker.query('rollback');
    expect(await exited).toBe(0);
    const stored = (await presenceRows(realtime.db)).map((row) => [row.user_id, row.status]);
    expect(stored).toEqual([
      ['locked-1', 'busy'],
      ['locked-2', 'busy'],
      ['queued', 'busy'],
    ]);
  });
});
