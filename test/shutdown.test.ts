import { describe, expect, it } from 'vitest';
import { presenceRows } from './helpers/database.js';
import { KEYS } from './helpers/http.js';
import { socketUrl, useRealtime } from './helpers/realtime.js';
import { isEvent, openSocket } from './helpers/socket.js';
import { within } from './helpers/wait.js';

// Stopping the real service (src/main.ts) with sockets open. (HTTP requests in flight at
// SIGTERM: test/main.test.ts; sockets closed 1001 with nothing pending: test/ws/instances.test.ts.)

const realtime = useRealtime();

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
});
