import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { describe, expect, it } from 'vitest';
import { SECURITY_HEADERS } from '../../src/http/response-headers.js';
import { KEYS } from '../helpers/http.js';
import { useRealtime } from '../helpers/realtime.js';

// The security headers and the request id are written on Node's response when the service
// serves the request (src/http/response-headers.ts); app.request (most tests) takes the other
// path, Hono's own. Both must give the same headers.

const database = useRealtime();

describe('security headers', () => {
  it('are those of hono/secure-headers', async () => {
    const app = new Hono().use(secureHeaders()).get('/', (c) => c.body(null, 204));
    const answer = await app.request('/');
    const expected = [...answer.headers].filter(([name]) => name !== 'content-type');
    const ours = SECURITY_HEADERS.map(([name, value]) => [name.toLowerCase(), value]);
    expect(ours.sort()).toEqual(expected.sort());
  });

  it('and the request id are on the real service answers, errors included', async () => {
    const service = await database.start();
    const base = `http://127.0.0.1:${service.port}`;
    const answers = [
      await fetch(`${base}/users/ping`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.access}`, 'x-request-id': 'ping-1' },
        body: JSON.stringify({ id: 'headers-user', status: 'busy' }),
      }),
      await fetch(`${base}/users/ping`, { method: 'POST', body: '{}' }),
      await fetch(`${base}/users/ping?key=${KEYS.access}`, { method: 'POST', body: '[' }),
      await fetch(`${base}/nowhere`),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 400, 404]);
    expect(answers[0]?.headers.get('x-request-id')).toBe('ping-1');
    expect(answers[1]?.headers.get('www-authenticate')).toBe('Bearer');
    for (const answer of answers) {
      for (const [name, value] of SECURITY_HEADERS) expect(answer.headers.get(name)).toBe(value);
      expect(answer.headers.get('x-request-id')).toMatch(/^[\w.-]+$/);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.headers.get('x-powered-by')).toBeNull();
      await answer.arrayBuffer();
    }
    expect(await service.stop()).toBe(0);
  });
});
