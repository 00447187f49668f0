import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';

// Security headers on every answer, CORS only for the origins configured, and the socket's
// Origin check (here before the upgrade; test/ws/socket.test.ts opens real sockets).

const database = useTestDatabase();
const APP_ORIGIN = 'https://app.example.com';

describe('security headers', () => {
  it('are on answers, errors included', async () => {
    const app = testApp(database.db);
    for (const [method, path, key] of [
      ['GET', '/users/count', KEYS.access],
      ['GET', '/users/count', null],
      ['GET', '/nowhere', KEYS.access],
    ] as const) {
      const { headers } = await request(app, method, path, { key });
      expect(headers.get('X-Content-Type-Options'), path).toBe('nosniff');
      expect(headers.get('X-Frame-Options'), path).toBe('SAMEORIGIN');
      expect(headers.get('Referrer-Policy'), path).toBe('no-referrer');
    }
  });
});

describe('CORS', () => {
  it('sends no CORS headers when no origin is configured', async () => {
    const app = testApp(database.db);
    const headers = { Origin: APP_ORIGIN };
    const answer = await request(app, 'GET', '/users/count', { headers });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });

  it('allows the configured origins, with preflight, and no others', async () => {
    const app = testApp(database.db, { corsOrigins: [APP_ORIGIN] });
    const preflight = await app.request('/users/ping', {
      method: 'OPTIONS',
      headers: {
        Origin: APP_ORIGIN,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe(APP_ORIGIN);
    expect(preflight.headers.get('Access-Control-Allow-Headers')).toMatch(/Authorization/i);

    const allowed = await request(app, 'GET', '/users/count', { headers: { Origin: APP_ORIGIN } });
    expect(allowed.headers.get('Access-Control-Allow-Origin')).toBe(APP_ORIGIN);
    expect(allowed.headers.get('Access-Control-Expose-Headers')).toMatch(/Retry-After/);
    const other = await request(app, 'GET', '/users/count', {
      headers: { Origin: 'https://evil.example' },
    });
    expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});

describe('the socket Origin check', () => {
  const upgrade = (origin: string, corsOrigins: string[] = []) =>
    request(testApp(database.db, { corsOrigins }), 'GET', '/ws', {
      headers: {
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        Host: 'presently.test',
        Origin: origin,
      },
    });

  it('refuses a page of another origin with 403, after the key', async () => {
    const answer = await upgrade('https://evil.example');
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('origin_not_allowed');
    const noKey = await request(testApp(database.db), 'GET', '/ws', {
      key: null,
      headers: { Upgrade: 'websocket', Origin: 'https://evil.example' },
    });
    expect(noKey.status).toBe(401);
  });

  it('lets the same origin and configured origins through', async () => {
    expect((await upgrade('http://presently.test')).status).not.toBe(403);
    expect((await upgrade(APP_ORIGIN, [APP_ORIGIN])).status).not.toBe(403);
  });
});
