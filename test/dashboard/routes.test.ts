import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onError } from '../../src/http/errors.js';
import { dashboardRoutes } from '../../src/http/routes/dashboard.js';
import { silentLogger } from '../helpers/database.js';

// The routes that serve the dashboard, on a folder of stand-in files: content types, caching,
// the security policy, and a clear 503 while the dashboard is not built. (The real page, built
// and in a browser, is tested in dashboard.test.ts.)

let dir: string;
let app: Hono;

const PAGE =
  '<link rel="stylesheet" href="/dashboard/style.css"><script src="/dashboard/app.js"></script>';

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-dashboard-'));
  app = new Hono().route('/', dashboardRoutes({ dir }));
  app.onError(onError(silentLogger));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const get = (url: string, headers: Record<string, string> = {}) =>
  app.request(`http://presently.test${url}`, { headers });

describe('the dashboard routes', () => {
  it('answer 503 while the dashboard is not built, and serve it once it is', async () => {
    const missing = await get('/');
    expect(missing.status).toBe(503);
    expect(((await missing.json()) as { error: object }).error).toMatchObject({
      code: 'dashboard_unavailable',
      message: expect.stringContaining('npm run build'),
    });

    await fs.writeFile(path.join(dir, 'index.html'), PAGE);
    await fs.writeFile(path.join(dir, 'app.js'), 'console.log(1);');
    await fs.writeFile(path.join(dir, 'style.css'), 'body{}');
    expect((await get('/')).status).toBe(200);
  });

  it('serve the page with a strict security policy, checked at every load', async () => {
    const page = await get('/');
    expect(page.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('Cache-Control')).toBe('no-cache');
    const policy = page.headers.get('Content-Security-Policy') ?? '';
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    // Sockets to this service only: its own host, not any host a ws: or wss: address names.
    const connect = policy.split('; ').find((part) => part.startsWith('connect-src'));
    expect(connect).toBe("connect-src 'self' ws://presently.test wss://presently.test");
    expect(page.headers.get('X-Content-Type-Options')).toBe('nosniff');
    // Assets are named with their version: a new build is never hidden by a cache.
    expect(await page.text()).toMatch(
      /href="\/dashboard\/style\.css\?v=[\w-]+".*src="\/dashboard\/app\.js\?v=[\w-]+"/,
    );
  });

  it('name the host the page was asked from as the only socket host, and nothing a Host header could smuggle in', async () => {
    const named = await get('/', { Host: '127.0.0.1:3000' });
    expect(named.headers.get('Content-Security-Policy')).toContain(
      "connect-src 'self' ws://127.0.0.1:3000 wss://127.0.0.1:3000;",
    );
    const ipv6 = await get('/', { Host: '[::1]:3000' });
    expect(ipv6.headers.get('Content-Security-Policy')).toContain(
      "connect-src 'self' ws://[::1]:3000 wss://[::1]:3000;",
    );
    for (const host of ['evil.test; script-src *', 'a b', `${'h'.repeat(300)}.test`]) {
      const answer = await get('/', { Host: host });
      const policy = answer.headers.get('Content-Security-Policy') ?? '';
      expect(policy, host).toContain("connect-src 'self';");
      expect(policy, host).not.toContain('*');
    }
  });

  it('serve assets with their type, for good under their versioned address', async () => {
    const html = await (await get('/')).text();
    const script = html.match(/"(\/dashboard\/app\.js\?v=[\w-]+)"/)?.[1] as string;
    const versioned = await get(script);
    expect(versioned.headers.get('Content-Type')).toBe('text/javascript; charset=utf-8');
    expect(versioned.headers.get('Cache-Control')).toBe('public, max-age=31536000, immutable');
    expect(await versioned.text()).toBe('console.log(1);');

    // Any other address (an old version, none) is checked again at every use.
    expect((await get('/dashboard/app.js?v=old')).headers.get('Cache-Control')).toBe('no-cache');
    const style = await get('/dashboard/style.css');
    expect(style.headers.get('Content-Type')).toBe('text/css; charset=utf-8');
    expect(style.headers.get('Cache-Control')).toBe('no-cache');
  });

  it('answer 304 to a copy still current, HEAD without a body, and 405 to other methods', async () => {
    const first = await get('/dashboard/style.css');
    const etag = first.headers.get('ETag') as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await get('/dashboard/style.css', { 'If-None-Match': `W/${etag}` });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect((await get('/dashboard/style.css', { 'If-None-Match': '"other"' })).status).toBe(200);

    const head = await app.request('http://presently.test/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await app.request('http://presently.test/', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('Allow')).toBe('GET, HEAD');
  });
});
