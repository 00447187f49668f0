import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../../scripts/build-dashboard.js';
import { KEYS } from '../helpers/http.js';
import { useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

// The dashboard in a real browser (the system's Chromium, driven by playwright-core; no browser
// is ever downloaded), on the real service: it is built from this tree first, as `npm run build`
// would. SCREENSHOT=1 also refreshes docs/dashboard.png.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;
// CI installs Chromium (.ci/run); elsewhere a machine without it skips these tests, saying so.
const missing = !existsSync(CHROMIUM) && !process.env.CI;
if (missing) console.warn(`no Chromium at ${CHROMIUM}: dashboard browser tests skipped`);

/**
 * Wraps the page's WebSocket before any of its scripts run: every socket made is kept, so that
 * a test can drop one, and none can be made while `offline` is set (as when a network is down).
 */
const SOCKET_CONTROL = `
  const Native = window.WebSocket;
  window.__sockets = { made: [], offline: false };
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      if (window.__sockets.offline) throw new Error('offline (test)');
      super(url, protocols);
      window.__sockets.made.push({ url, socket: this });
    }
  };
`;

const realtime = useRealtime();
let service: RunningService;
let browser: Browser | undefined;
let context: BrowserContext | undefined;

beforeAll(async () => {
  if (missing) return;
  await buildDashboard();
  service = await realtime.start();
  await seed();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container: no sandbox; a small /dev/shm must not crash the renderer.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
});
afterEach(async () => {
  await context?.close();
  context = undefined;
});
afterAll(async () => {
  await browser?.close();
});

const ping = (id: string, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });

/** A team at work: some available, some busy, two away for a while (pings in the past). */
async function seed() {
  for (const [id, status] of [
    ['ana', 'available'],
    ['bruno', 'busy'],
    ['chen', 'available'],
    ['dara', 'busy'],
    ['eli', 'available'],
  ]) {
    expect((await ping(id as string, status as string)).status).toBe(200);
  }
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    values ('farah', 'available', now() - interval '7 minutes'),
           ('gus', 'busy', now() - interval '2 hours')
  `.execute(realtime.db);
}

async function newPage(): Promise<Page> {
  context = await (browser as Browser).newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.addInitScript(SOCKET_CONTROL);
  return page;
}

/** Opens the dashboard and gives it the key, as a person would. */
async function openDashboard(page: Page): Promise<void> {
  await page.goto(`http://127.0.0.1:${service.port}/`);
  await page.fill('#key', KEYS.access);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#connection[data-state=open]');
}

const text = (page: Page, selector: string) => page.textContent(selector);
const row = (user: string, status: string) => `tr[data-user="${user}"][data-status="${status}"]`;

describe.skipIf(missing)('the dashboard, in a browser', () => {
  it('loads without a key, refuses a wrong one, and shows the counts with the right one', async () => {
    const page = await newPage();
    const answer = await page.goto(`http://127.0.0.1:${service.port}/`);
    expect(answer?.status()).toBe(200);
    expect(answer?.headers()['content-security-policy']).toContain("connect-src 'self' ws: wss:");

    await page.fill('#key', 'not-the-key');
    await page.click('#key-form button[type=submit]');
    await waitFor('the refusal', async () => (await text(page, '#key-error')) !== '');
    expect(await text(page, '#key-error')).toBe('This key is not valid.');

    await page.fill('#key', KEYS.access);
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector(row('ana', 'available'));
    await page.waitForSelector(row('gus', 'away'));
    expect(await text(page, '#count-available')).toBe('3');
    expect(await text(page, '#count-busy')).toBe('2');
    expect(await text(page, '#count-away')).toBe('2');
    expect(await text(page, `${row('farah', 'away')} td.seen`)).toBe('7 min ago');

    // The key is kept for the tab: a reload goes straight to the live view.
    await page.reload();
    await page.waitForSelector('#connection[data-state=open]');
    expect(await page.isHidden('#key-form')).toBe(true);
  });

  it('shows a ping made elsewhere without a reload, and filters by status', async () => {
    const page = await newPage();
    await openDashboard(page);
    await page.waitForSelector(row('chen', 'available'));

    expect((await ping('chen', 'busy')).status).toBe(200);
    await page.waitForSelector(row('chen', 'busy'));
    await waitFor('3 busy', async () => (await text(page, '#count-busy')) === '3');

    await page.click('[data-filter=busy]');
    await page.waitForSelector(row('ana', 'available'), { state: 'detached' });
    const shown = await page.$$eval('#users tr', (rows) => rows.map((r) => r.dataset.status));
    expect(new Set(shown)).toEqual(new Set(['busy']));
    await page.click('[data-filter=all]');
    await page.waitForSelector(row('ana', 'available'));

    // "Last seen" moves on by itself, every second.
    const seen = `${row('chen', 'busy')} td.seen`;
    const before = await text(page, seen);
    await waitFor('the time to move on', async () => (await text(page, seen)) !== before);
    expect(await text(page, seen)).toMatch(/^\d+ s ago$/);

    const image = await page.screenshot({
      path: process.env.SCREENSHOT ? 'docs/dashboard.png' : undefined,
    });
    expect(image.length).toBeGreaterThan(1000);
  });

  it('reconnects after its socket drops, and shows a change made meanwhile', async () => {
    const page = await newPage();
    await openDashboard(page);
    await page.waitForSelector(row('eli', 'available'));
    // A change first, so that the page holds a position to resume from.
    expect((await ping('eli', 'busy')).status).toBe(200);
    await page.waitForSelector(row('eli', 'busy'));

    await page.evaluate(`window.__sockets.offline = true;
      window.__sockets.made.at(-1).socket.close();`);
    await page.waitForSelector('#connection[data-state=waiting]');
    expect((await ping('eli', 'available')).status).toBe(200);
    expect(await page.$(row('eli', 'busy'))).not.toBeNull();

    await page.evaluate('window.__sockets.offline = false');
    await page.waitForSelector(row('eli', 'available'));
    await page.waitForSelector('#connection[data-state=open]');
    const url = await page.evaluate('window.__sockets.made.at(-1).url');
    expect(url).toMatch(/[?&]since=\d+/);
  });
});

describe.skipIf(missing)('the API reference at /docs, in a browser', () => {
  it('renders every route of /openapi.json, from assets the service serves itself', async () => {
    const page = await newPage();
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    page.on('pageerror', (error) => failed.push(error.message));
    await page.goto(`http://127.0.0.1:${service.port}/docs`);
    await page.waitForSelector('.swagger-ui .opblock');
    const document = (await call(service, 'GET', '/openapi.json', KEYS.access)).body as {
      paths: Record<string, object>;
    };
    const operations = Object.values(document.paths).reduce(
      (sum, path) => sum + Object.keys(path).length,
      0,
    );
    await waitFor(
      'every operation on the page',
      async () => (await page.$$('.swagger-ui .opblock')).length === operations,
    );
    expect(await page.textContent('.swagger-ui .title')).toContain('presently');
    expect(failed).toEqual([]);
  });
});
