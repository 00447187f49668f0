import fs from 'node:fs/promises';
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bearerToken } from '../../src/edge/auth.js';
import { KEYS, request, testApp } from '../helpers/http.js';
import { useRealtime } from '../helpers/realtime.js';
import { budget, timeoutFor } from './budget.js';

// Headers a hostile client controls: Authorization of any shape and length, and any Upgrade and
// Connection on any path, against the app and the real server.

const realtime = useRealtime();

/** The pattern the bearer scan replaced, as the oracle of its meaning (on short input only). */
const BEARER_PATTERN = /^Bearer(?:[ ]+(\S*))?\s*$/i;
const byPattern = (header: string) => {
  const match = header.match(BEARER_PATTERN);
  return match ? (match[1] ?? '') : undefined;
};

const headerPiece = fc.constantFrom(
  'Bearer',
  'bearer',
  'BEARER',
  'Basic',
  ' ',
  '  ',
  '\t',
  '\u00a0',
  'a',
  'b',
  '=',
  KEYS.access,
  KEYS.system,
);

describe('the Authorization header', () => {
  it('is read as the pattern it replaced read it, on short headers', () => {
    fc.assert(
      fc.property(fc.array(headerPiece, { maxLength: 8 }), (pieces) => {
        const header = pieces.join('');
        expect(bearerToken(header)).toBe(byPattern(header));
      }),
      budget(5),
    );
  });

  it(
    'of any length up to what a server takes is answered 200 or 401, as its token says',
    async () => {
      const app = testApp(realtime.db);
      const long = fc
        .tuple(
          fc.constantFrom('Bearer', 'bearer', 'Bearer ', 'Basic '),
          fc.constantFrom(' ', '\t', 'a', ' a', '  b', '\u00a0'),
          fc.integer({ min: 1, max: 15_000 }),
          fc.constantFrom('', 'a b', KEYS.access, ` ${KEYS.access}`, '\t', '  '),
        )
        .map(
          ([start, unit, length, end]) =>
            `${start}${unit.repeat(Math.ceil(length / unit.length))}${end}`,
        );
      await fc.assert(
        fc.asyncProperty(long, async (header) => {
          const answer = await request(app, 'GET', '/users/count', {
            key: null,
            headers: { Authorization: header },
          });
          const token = bearerToken(header);
          expect(answer.status).toBe(token === KEYS.access ? 200 : 401);
        }),
        budget(0.5),
      );
    },
    timeoutFor(0.5, 50),
  );
});

const upgradeValue = fc.oneof(
  fc.constantFrom('websocket', 'WebSocket', 'h2c', 'HTTP/2.0', 'TLS/1.2', 'websocket, h2c', ''),
  fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).filter((text) => !/[\r\n]/.test(text)),
);
const connectionValue = fc.constantFrom(
  'Upgrade',
  'upgrade',
  'keep-alive, Upgrade',
  'Upgrade, HTTP2-Settings',
  'close',
  'keep-alive',
  undefined,
);
const upgradePath = fc.constantFrom(
  '/ws',
  `/ws?key=${KEYS.access}`,
  '/ws?key=wrong',
  `/ws?key=${KEYS.access}&since=x`,
  '/users/count',
  `/users/count?key=${KEYS.access}`,
  '/socket.io/?EIO=4&transport=websocket',
  '/healthz',
  '/nowhere',
);

/** Sends one request and reads the status line of the answer, then resets the connection. */
function statusOf(port: number, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${JSON.stringify(text)}`));
    }, 5_000);
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(answer);
      if (!status) return;
      clearTimeout(timer);
      socket.resetAndDestroy();
      resolve(Number(status[1]));
    });
    socket.once('error', reject);
  });
}

describe('upgrade requests', () => {
  it(
    'are always answered, whatever Upgrade, Connection and path they carry, and leave the service healthy and holding nothing',
    async () => {
      const service = await realtime.start();
      const descriptors = async () => (await fs.readdir(`/proc/${service.child.pid}/fd`)).length;
      await fetch(`http://127.0.0.1:${service.port}/users/count?key=${KEYS.access}`);
      const before = await descriptors();
      await fc.assert(
        fc.asyncProperty(
          upgradePath,
          upgradeValue,
          connectionValue,
          async (path, upgrade, connection) => {
            const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', `Upgrade: ${upgrade}`];
            if (connection !== undefined) lines.push(`Connection: ${connection}`);
            lines.push('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==');
            const status = await statusOf(service.port, `${lines.join('\r\n')}\r\n\r\n`);
            expect([101, 200, 400, 401, 404, 426]).toContain(status);
          },
        ),
        budget(1),
      );
      const health = await fetch(`http://127.0.0.1:${service.port}/healthz`);
      expect(health.status).toBe(200);
      expect(service.child.exitCode).toBeNull();
      // Every connection was reset by the client: the server must have let go of each.
      const deadline = Date.now() + 5_000;
      while ((await descriptors()) > before + 5 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await descriptors()).toBeLessThanOrEqual(before + 5);
      expect(service.stdout()).not.toContain('"level":50');
      expect(await service.stop()).toBe(0);
    },
    timeoutFor(1, 30),
  );
});
