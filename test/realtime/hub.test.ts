import { once } from 'node:events';
import type net from 'node:net';
import { createConnection } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  CLOSE_GOING_AWAY,
  CLOSE_TRY_AGAIN_LATER,
  createSocketHub,
  type SocketHub,
  type SocketHubOptions,
} from '../../src/realtime/hub.js';
import { silentLogger } from '../helpers/database.js';
import { openSocket, type TestSocket } from '../helpers/socket.js';
import { within } from '../helpers/wait.js';

// The hub with real sockets over loopback: a WebSocket server registers every connection with
// it, as the /ws endpoint does, and clients misbehave in the ways the hub must survive.

let server: WebSocketServer | undefined;
let hub: SocketHub | undefined;
const clients: TestSocket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  await hub?.close(100);
  if (server) {
    for (const socket of server.clients) socket.terminate();
    await new Promise((resolve) => server?.close(resolve));
  }
  server = hub = undefined;
});

async function startHub(options: Omit<SocketHubOptions, 'logger'> = {}) {
  const created = createSocketHub({ logger: silentLogger, ...options });
  hub = created;
  server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  server.on('connection', (socket) => {
    created.add(socket);
  });
  await once(server, 'listening');
  return created;
}

/** A client, and the server's side of it (registered with the hub by then). */
async function connect(options: { autoPong?: boolean } = {}) {
  if (!server) throw new Error('no server');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const client = await openSocket(`ws://127.0.0.1:${port}`, options);
  clients.push(client);
  const [serverSide] = await accepted;
  return { client, serverSide };
}

/** A JSON frame of about `bytes`, as openSocket parses every message. */
const frameOf = (bytes: number, n = 0) =>
  Buffer.from(JSON.stringify({ event: 'filler', data: { n, pad: 'x'.repeat(bytes) } }));

describe('socket hub', () => {
  it('terminates a peer that does not answer pings, after about two heartbeats', async () => {
    const startedAt = Date.now();
    const hub = await startHub({ heartbeatMs: 100 });
    const { client: healthy } = await connect();
    const { client: silent } = await connect({ autoPong: false });
    let healthyPings = 0;
    healthy.socket.on('ping', () => healthyPings++);

    const { code } = await within('the silent peer to be dropped', silent.closed);
    // Terminated, not closed: no close frame, so the client sees 1006.
    expect(code).toBe(1006);
    // The first heartbeat (100 ms) pings it; the second (200 ms) finds no pong and drops it.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
    expect(Date.now() - startedAt).toBeLessThan(2_000);

    // Each heartbeat pings only a peer that answered the previous ping: a third ping to the
    // healthy one means it has survived the heartbeat that dropped the silent one and more.
    await vi.waitUntil(() => healthyPings >= 3, { timeout: 10_000, interval: 10 });
    expect(healthy.socket.readyState).toBe(healthy.socket.OPEN);
    expect(hub.size).toBe(1);
  });

  it('closes a peer that stops reading with 1013, and keeps serving the others', async () => {
    const hub = await startHub({ maxBufferedBytes: 256 * 1024 });
    const { client: healthy } = await connect();
    const { client: slow, serverSide: slowServerSide } = await connect();
    // Stop reading from the TCP socket: the kernel buffers fill, then the server's own.
    (slow.socket as unknown as { _socket: net.Socket })._socket.pause();

    // Each frame waits for the healthy client to read it, so it is never behind; loopback
    // buffers hold a few MiB, so the slow one falls behind after some dozens of frames.
    let sent = 0;
    while (hub.size === 2 && sent < 500) {
      hub.broadcast(frameOf(64 * 1024, sent));
      sent += 1;
      await healthy.next(() => true, 5_000, sent - 1);
    }
    expect(hub.size).toBe(1);
    expect([slowServerSide.CLOSING, slowServerSide.CLOSED]).toContain(slowServerSide.readyState);
    expect(healthy.socket.readyState).toBe(healthy.socket.OPEN);

    hub.broadcast(frameOf(16, sent));
    await healthy.next((frame) => frame.data.n === sent, 5_000, sent);
    expect(healthy.frames).toHaveLength(sent + 1);

    // The close frame waits behind everything buffered: once the slow client reads again, it
    // gets what was sent before the close, then 1013.
    (slow.socket as unknown as { _socket: net.Socket })._socket.resume();
    const closed = await within('the slow client to see the close', slow.closed);
    expect(closed.code).toBe(CLOSE_TRY_AGAIN_LATER);
    expect(slow.frames.length).toBeLessThan(sent);
  });

  it('ends a socket it dropped as slow when it closes, rather than waiting for it', async () => {
    const hub = await startHub({ maxBufferedBytes: 256 * 1024 });
    const { client: slow, serverSide } = await connect();
    (slow.socket as unknown as { _socket: net.Socket })._socket.pause();
    for (let sent = 0; hub.size === 1 && sent < 500; sent++) {
      hub.broadcast(frameOf(64 * 1024, sent));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(hub.size).toBe(0);
    expect(serverSide.readyState).toBe(serverSide.CLOSING);
    // An upgraded connection that lives on keeps the HTTP server from closing: close() ends it.
    await within('hub.close()', hub.close(100), 1_500);
    expect(serverSide.readyState).toBe(serverSide.CLOSED);
  });

  it('broadcasts the very same frame to every open socket; sending to a closed one does nothing', async () => {
    const hub = await startHub();
    const connected = [await connect(), await connect(), await connect()];
    const sends = connected.map(({ serverSide }) => vi.spyOn(serverSide, 'send'));
    const frame = frameOf(10, 1);
    hub.broadcast(frame);
    for (const send of sends) expect(send.mock.calls[0]?.[0]).toBe(frame);
    for (const { client } of connected) {
      expect((await client.next(() => true, 5_000)).data).toEqual({ n: 1, pad: 'x'.repeat(10) });
    }

    // A peer whose socket has closed but that is still at hand: sending to it does nothing.
    const [gone] = connected;
    const peer = [...hub.peers()].find((each) => each.socket === gone?.serverSide);
    if (!gone || !peer) throw new Error('no peer for the first socket');
    await gone.client.close();
    if (gone.serverSide.readyState !== gone.serverSide.CLOSED) await once(gone.serverSide, 'close');
    expect(hub.size).toBe(2);
    expect(() => hub.send(peer, frame)).not.toThrow();
    expect(sends[0]).toHaveBeenCalledTimes(1);
  });

  it('ends a socket arriving after close() that never answers the close', async () => {
    const hub = await startHub();
    await hub.close(100);
    if (!server) throw new Error('no server');
    const { port } = server.address() as net.AddressInfo;
    const accepted = once(server, 'connection') as Promise<[WebSocket]>;
    // A handshake by hand, then silence: this client reads nothing, the close frame included.
    const raw = createConnection(port, '127.0.0.1');
    raw.write(
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const [serverSide] = await accepted;
    raw.pause();
    try {
      await within('the late socket to end', once(serverSide, 'close'), 3_000);
    } finally {
      raw.destroy();
    }
  });

  it('close() waits for work taken for sockets, but only so long', async () => {
    const hub = await startHub();
    let stored = false;
    hub.track(new Promise((resolve) => setTimeout(resolve, 50)).then(() => (stored = true)));
    await within('hub.close()', hub.close(1_000));
    expect(stored).toBe(true);

    // Work that never ends (a database that never answers) holds shutdown for the bound only.
    const stuck = createSocketHub({ logger: silentLogger });
    stuck.track(new Promise(() => {}));
    const started = Date.now();
    await within('hub.close()', stuck.close(200), 2_000);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('close() closes every socket with 1001, and refuses later ones', async () => {
    const hub = await startHub();
    const connected = [await connect(), await connect()];
    await within('hub.close()', hub.close());
    for (const { client } of connected) {
      expect((await within('the close', client.closed)).code).toBe(CLOSE_GOING_AWAY);
    }
    expect(hub.size).toBe(0);

    // A socket arriving after close() is closed at once, never registered.
    const { client: late } = await connect();
    expect((await within('the late close', late.closed)).code).toBe(CLOSE_GOING_AWAY);
    expect(hub.size).toBe(0);
  });
});
