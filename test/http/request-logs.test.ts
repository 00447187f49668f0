import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createDb, createPool } from '../../src/db/connection.js';
import { createRateLimiter } from '../../src/edge/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import { silentLogger } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { refusedUpgrade } from '../helpers/socket.js';
import { closedPort } from '../helpers/wait.js';

// Every request gets an id, returned as X-Request-Id and carried by every log line about it;
// keys never reach a log line, whatever way they came and whatever became of the request.

const realtime = useRealtime({ LOG_LEVEL: 'debug' });

// biome-ignore lint/suspicious/noExplicitAny: log lines are checked field by field
type Line = Record<string, any>;

/** A logger writing to memory, as main.ts builds it. */
function memoryLogger(options: { pretty?: boolean } = {}) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger('debug', { ...options, destination });
  return { logger, lines };
}

describe('the real service, at debug level', () => {
  it('keeps keys out of every line, and ties every line about a request to its id', async () => {
    const service = await realtime.start();
    const base = `http://127.0.0.1:${service.port}`;
    const ids: { path: string; id: string | null }[] = [];
    const send = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${base}${path}`, init);
      await response.body?.cancel();
      ids.push({ path: new URL(path, base).pathname, id: response.headers.get('x-request-id') });
      return response;
    };
    const bearer = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });

    expect((await send(`/users/count?key=${KEYS.access}&from=2026-01-01`)).status).toBe(200);
    expect((await send('/users/count', bearer(KEYS.access))).status).toBe(200);
    const refused = await send(`/users/ping?key=${KEYS.access}`, { method: 'POST', body: '{' });
    expect(refused.status).toBe(400);
    expect((await send('/users/ping', { ...bearer(KEYS.system), method: 'GET' })).status).toBe(405);
    expect((await send(`/no/such/route?key=${KEYS.access}`)).status).toBe(404);
    expect((await send('/users/count', bearer('not-the-key'))).status).toBe(401);
    expect((await send(`/metrics?key=${KEYS.system}`)).status).toBe(200);
    expect((await send('/database/clear', bearer(KEYS.system))).status).toBe(200);
    expect((await send(`/readyz?key=${KEYS.system}&token=${KEYS.access}`)).status).toBe(200);

    // A client's own id is kept when it is plain and short; anything else is replaced.
    const kept = await send('/healthz', { headers: { 'X-Request-Id': 'trace-42.a_B' } });
    expect(kept.headers.get('x-request-id')).toBe('trace-42.a_B');
    for (const bad of ['has space', 'x'.repeat(129), 'é', `${KEYS.access}/`]) {
      const replaced = await send('/healthz', { headers: { 'X-Request-Id': bad } });
      expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }

    // Sockets: the key in the query, then in the header; an upgrade refused elsewhere.
    for (const [url, headers] of [
      [socketUrl(service), { 'X-Request-Id': 'socket-by-query' }],
      [
        socketUrl(service, null),
        { Authorization: `Bearer ${KEYS.access}`, 'X-Request-Id': 'socket-by-header' },
      ],
    ] as const) {
      const socket = new WebSocket(url, { headers });
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      socket.send(JSON.stringify({ event: 'user-ping', data: { id: 'logs', status: 'busy' } }));
      socket.send('not json');
      await new Promise((resolve) => socket.once('message', resolve));
      socket.close();
      await new Promise((resolve) => socket.once('close', resolve));
    }
    expect(
      await refusedUpgrade(`ws://127.0.0.1:${service.port}/users/count?key=${KEYS.access}`),
    ).toBe(400);
    expect(await refusedUpgrade(socketUrl(service, KEYS.system.slice(1)))).toBe(401);

    expect(await service.stop()).toBe(0);
    const output = service.stdout() + service.stderr();
    expect(output).not.toContain(KEYS.access);
    expect(output).not.toContain(KEYS.system);
    expect(output).not.toContain('has space');

    const lines: Line[] = service
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const requests = lines.filter((line) => line.msg === 'request');
    for (const line of requests) expect(line.requestId).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    for (const { path, id } of ids) {
      const logged = requests.filter((line) => line.requestId === id);
      expect(logged, `${path} ${id}`).toEqual([expect.objectContaining({ path })]);
    }
    // The query is logged with the keys and anything named like a secret taken out.
    expect(requests.filter((line) => line.query)).toEqual([
      expect.objectContaining({ path: '/users/count', query: 'from=2026-01-01' }),
    ]);
    for (const id of ['socket-by-query', 'socket-by-header']) {
      const messages = lines.filter((line) => line.requestId === id).map((line) => line.msg);
      expect(messages).toEqual(['request', 'socket opened', 'socket closed']);
    }
  });
});

describe('in the app', () => {
  let db: ReturnType<typeof createDb>;
  afterAll(() => db?.destroy());

  it('gives the error handler the request id too', async () => {
    const port = await closedPort();
    db = createDb(
      createPool({ connectionString: `postgres://u:x@127.0.0.1:${port}/none` }, silentLogger),
    );
    const { logger, lines } = memoryLogger();
    const answer = await request(testApp(db, { logger }), 'POST', '/users/ping', {
      body: { id: 1, status: 'busy' },
      headers: { 'X-Request-Id': 'failing-1', Authorization: `Bearer ${KEYS.access}` },
    });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('x-request-id')).toBe('failing-1');
    const logged: Line[] = lines.map((line) => JSON.parse(line));
    expect(logged.map(({ msg, requestId, level }) => ({ msg, requestId, level }))).toEqual([
      { msg: 'database unavailable', requestId: 'failing-1', level: 40 },
      { msg: 'request', requestId: 'failing-1', level: 40 },
    ]);
    expect(lines.join('')).not.toContain(KEYS.access);
  });

  it('logs refusals at debug, other client errors at info, failures at warn and error', async () => {
    // A client without a key, or flooding, is refused on every request: at info, each refusal
    // would write a line, as fast as the rate limit lets it ask.
    const { logger, lines } = memoryLogger();
    const app = testApp(realtime.db, { logger });
    const asked: [number, () => Promise<{ status: number }>][] = [
      [401, () => request(app, 'GET', '/users/count', { key: null })],
      [401, () => request(app, 'GET', '/ws', { key: 'wrong' })],
      [403, () => request(app, 'GET', '/ws', { headers: { Origin: 'https://elsewhere.example' } })],
      [404, () => request(app, 'GET', '/no/such/route')],
      [405, () => request(app, 'DELETE', '/users/count')],
      [400, () => request(app, 'POST', '/users/ping', { raw: '{' })],
      [413, () => request(app, 'POST', '/users/ping', { raw: ' '.repeat(17 * 1024) })],
    ];
    for (const [status, ask] of asked) expect((await ask()).status).toBe(status);
    const limiter = createRateLimiter({ perSecond: 0.001, burst: 1 });
    try {
      const limited = testApp(realtime.db, { logger, requestLimiter: limiter });
      expect((await request(limited, 'GET', '/users/count')).status).toBe(200);
      expect((await request(limited, 'GET', '/users/count')).status).toBe(429);
    } finally {
      limiter.stop();
    }
    const levels = lines
      .map((line) => JSON.parse(line))
      .filter((line: Line) => line.msg === 'request')
      .map((line: Line) => [line.status, line.level]);
    // pino's levels: 20 debug, 30 info.
    expect(levels).toEqual([
      [401, 20],
      [401, 20],
      [403, 20],
      [404, 20],
      [405, 20],
      [400, 30],
      [413, 30],
      [200, 20],
      [429, 20],
    ]);
  });

  it('censors headers and keys that a log line might carry', () => {
    const { logger, lines } = memoryLogger();
    logger.info(
      {
        headers: { authorization: 'Bearer secret-1', Authorization: 'Bearer secret-2' },
        req: { headers: { cookie: 'secret-3' } },
        key: 'secret-4',
        config: { accessKey: 'secret-5', accessKeySystem: 'secret-6' },
      },
      'careless',
    );
    expect(lines.join('')).not.toMatch(/secret-/);
    expect(lines.join('')).toContain('[redacted]');
  });

  it('writes readable lines when asked, with the same censoring', () => {
    const { logger, lines } = memoryLogger({ pretty: true });
    logger.child({ requestId: 'pretty-1' }).info({ key: 'secret-7' }, 'hello there');
    const text = lines.join('');
    expect(text).toMatch(/INFO.*hello there/);
    expect(text).toContain('pretty-1');
    expect(text).not.toContain('secret-7');
    expect(() => JSON.parse(text)).toThrow();
  });
});
