import fs from 'node:fs/promises';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import type { RunningService } from '../helpers/service.js';
import { openSocket } from '../helpers/socket.js';
import { waitFor } from '../helpers/wait.js';

// The HTTP server owns every connection it accepts (src/http/server.ts): an upgrade it does not
// serve is answered and closed, and nothing a client does to its connection ends the process.
// The real service, over raw TCP, as a hostile client would send it.

const database = useRealtime();

/** What `curl --http2` sends to a plain-http address: an upgrade to HTTP/2 over cleartext. */
const H2C_UPGRADE = [
  'GET /users/count HTTP/1.1',
  'Host: 127.0.0.1',
  'Connection: Upgrade, HTTP2-Settings',
  'Upgrade: h2c',
  'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
  '',
  '',
].join('\r\n');

interface RawExchange {
  /** Everything the server sent. */
  answer: string;
  /** The server closed the connection (within the wait). */
  closedByServer: boolean;
}

/** Sends `text` on a fresh connection and collects the answer until the server closes it. */
function exchange(port: number, text: string, waitMs = 3_000): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let answer = '';
    const finish = (closedByServer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, closedByServer });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.once('end', () => finish(true));
    socket.once('error', reject);
  });
}

/** Sends `text`, then resets the connection (RST) after `afterMs`. */
function sendAndReset(port: number, text: string, afterMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(text);
      setTimeout(() => {
        socket.resetAndDestroy();
        resolve();
      }, afterMs);
    });
    socket.once('error', reject);
  });
}

const openDescriptors = async (service: RunningService) =>
  (await fs.readdir(`/proc/${service.child.pid}/fd`)).length;

async function healthy(service: RunningService): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${service.port}/healthz`);
  return response.status === 200 && service.child.exitCode === null;
}

describe('an upgrade the service does not serve', () => {
  it('is answered 400 upgrade_not_supported and closed', async () => {
    const service = await database.start();
    const { answer, closedByServer } = await exchange(service.port, H2C_UPGRADE);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('Connection: close');
    expect(answer).toContain('"code":"upgrade_not_supported"');
    expect(closedByServer).toBe(true);
    // A WebSocket upgrade to /ws still works beside it.
    const socket = await openSocket(socketUrl(service));
    await socket.close();
    expect(await service.stop()).toBe(0);
  });

  it('cannot end the process when the client resets the connection', async () => {
    const service = await database.start();
    // At once, while the server reads the request, and a moment later, as the finding has it.
    await sendAndReset(service.port, H2C_UPGRADE, 0);
    await sendAndReset(service.port, H2C_UPGRADE, 500);
    const garbage = 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
    await sendAndReset(service.port, garbage, 50);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await healthy(service)).toBe(true);
    expect(service.stderr()).not.toContain('ECONNRESET');
    expect(await service.stop()).toBe(0);
  });

  it('leaves no descriptor behind once the client has gone', async () => {
    const service = await database.start();
    await fetch(`http://127.0.0.1:${service.port}/users/count?key=${KEYS.access}`);
    const before = await openDescriptors(service);
    const clients = 50;
    await Promise.all(
      Array.from({ length: clients }, () => exchange(service.port, H2C_UPGRADE, 1_000)),
    );
    // Closing is asynchronous on the server's side too: wait for it, boundedly.
    await waitFor(
      'descriptors to close',
      async () => (await openDescriptors(service)) <= before + 5,
      5_000,
    ).catch(() => {});
    expect(await openDescriptors(service)).toBeLessThanOrEqual(before + 5);
    expect(await service.stop()).toBe(0);
  });

  it('does not hold up shutdown while its client keeps the connection open', async () => {
    const service = await database.start();
    const socket = net.connect(service.port, '127.0.0.1', () => socket.write(H2C_UPGRADE));
    socket.on('error', () => {});
    socket.on('data', () => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      expect(await service.stop('SIGTERM')).toBe(0);
      expect(service.stdout()).not.toContain('shutdown timed out');
    } finally {
      socket.destroy();
    }
  });
});

describe('GET /ws without Connection: upgrade', () => {
  it('is answered 426 upgrade_required, not an empty 500', async () => {
    const service = await database.start();
    const request = [
      `GET /ws?key=${KEYS.access} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Connection: close',
      '',
      '',
    ].join('\r\n');
    const { answer } = await exchange(service.port, request);
    expect(answer).toMatch(/^HTTP\/1\.1 426 /);
    expect(answer).toContain('"code":"upgrade_required"');
    expect(service.stdout()).not.toContain('"level":50');
    expect(await service.stop()).toBe(0);
  });
});
