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
// is ever downloaded), on the real service, with a hundred thousand users and a day of history:
// it is built from this tree first, as `npm run build` would. SCREENSHOT=1 also refreshes
// docs/dashboard.png, docs/dashboard-search.png and docs/dashboard-devices.png.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;
/** Users in the database besides the named team: user-000001 to user-100000. */
const CROWD = 100_000;
/** What the page may hold, and receive over its socket while idle. */
const PAGE_ROWS = 50;
const IDLE_BYTES_LIMIT = 2 * 1024 * 1024;
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
  await seedHistory();
  await seedCrowd();
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
/** A ping from one of hana's devices, which lapses in an hour (not in the default minute). */
const pingFrom = (session: string, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id: 'hana', status, session, timeout: 3600 });
const inHours = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();
/** Hana's message: markup and quotes that must show as typed, never as markup. */
const MESSAGE = 'Focus time <b>until 3</b> & "no calls" <img src=x>';

/** Hana, through the API: a laptop and a phone, do-not-disturb for two hours, a message. */
async function seedDevices() {
  expect((await pingFrom('laptop', 'available')).status).toBe(200);
  expect((await pingFrom('phone', 'busy')).status).toBe(200);
  const override = { status: 'busy', expires: inHours(2) };
  expect((await call(service, 'PUT', '/users/hana/override', KEYS.access, override)).status).toBe(
    200,
  );
  const message = { text: MESSAGE, expires: inHours(1) };
  expect((await call(service, 'PUT', '/users/hana/message', KEYS.access, message)).status).toBe(
    200,
  );
}

/**
 * A team at work: some available, some busy, two away for a while (pings in the past), and hana
 * on two devices, with do-not-disturb and a message.
 */
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
  await seedDevices();
}

/**
 * A day of history, so that the charts draw real data: 300 of the crowd change status every two
 * hours (at staggered minutes) over the last 24 hours, and ana has a day of her own.
 */
async function seedHistory() {
  await sql`
    do $$
    declare
      statuses text[] := array['available', 'busy', 'away'];
      previous text;
      status text;
    begin
      for i in 1..300 loop
        previous := null;
        for step in 0..11 loop
          status := statuses[(i + step) % 3 + 1];
          perform presently.append_change('user-' || lpad(i::text, 6, '0'), status, previous,
            now() - interval '24 hours' + step * interval '2 hours' + i * interval '17 seconds');
          previous := status;
        end loop;
      end loop;
      perform presently.append_change('ana', 'available', null, now() - interval '20 hours');
      perform presently.append_change('ana', 'busy', 'available', now() - interval '14 hours');
      perform presently.append_change('ana', 'away', 'busy', now() - interval '9 hours');
      perform presently.append_change('ana', 'available', 'away', now() - interval '5 hours');
    end;
    $$
  `.execute(realtime.db);
}

/**
 * The crowd, in statements of 20,000 users (each well within the pool's query timeout on a busy
 * machine): a third available, a third busy, a third away.
 */
async function seedCrowd() {
  for (let start = 1; start <= CROWD; start += 20_000) {
    await sql`
      insert into presently.presence (user_id, status, last_ping)
      select 'user-' || lpad(g::text, 6, '0'),
             case when g % 3 = 1 then 'busy' else 'available' end,
             case when g % 3 = 0 then now() - interval '3 hours' else now() end
      from generate_series(${start}::int, ${Math.min(CROWD, start + 19_999)}::int) g
    `.execute(realtime.db);
  }
}

/** The counts as the service has them now. */
async function counts(): Promise<{ available: number; busy: number; away: number }> {
  return (await call(service, 'GET', '/users/count', KEYS.access)).body.data;
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
/** The text of every element the selector finds, in order. */
const chips = (page: Page, selector: string) =>
  page.$$eval(selector, (found) => found.map((element) => element.textContent));
/** "<what> until 14:30", or with a day ("until Tue 09:00") when it ends on another. */
const UNTIL = (what: string) => {
  const literal = what.replace(/[.*+?^$|()[\]{}\\]/g, '\\$&');
  return new RegExp(`^${literal} until (\\w{3} )?\\d\\d:\\d\\d$`);
};
const row = (user: string, status: string) => `tr[data-user="${user}"][data-status="${status}"]`;

describe.skipIf(missing)('the dashboard, in a browser', () => {
  it('loads without a key, refuses a wrong one, and shows the counts with the right one', async () => {
    const page = await newPage();
    const answer = await page.goto(`http://127.0.0.1:${service.port}/`);
    expect(answer?.status()).toBe(200);
    expect(answer?.headers()['content-security-policy']).toContain(
      `connect-src 'self' ws://127.0.0.1:${service.port} wss://127.0.0.1:${service.port}`,
    );

    await page.fill('#key', 'not-the-key');
    await page.click('#key-form button[type=submit]');
    await waitFor('the refusal', async () => (await text(page, '#key-error')) !== '');
    expect(await text(page, '#key-error')).toBe('This key is not valid.');

    await page.fill('#key', KEYS.access);
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector(row('ana', 'available'));
    await page.waitForSelector(row('gus', 'away'));
    const expected = await counts();
    expect(expected.available + expected.busy + expected.away).toBe(CROWD + 8);
    for (const status of ['available', 'busy', 'away'] as const) {
      expect(await text(page, `#count-${status}`)).toBe(String(expected[status]));
    }
    expect(await page.$$eval('#users tr', (rows) => rows.length)).toBe(PAGE_ROWS);
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

    const busy = (await counts()).busy;
    expect((await ping('chen', 'busy')).status).toBe(200);
    await page.waitForSelector(row('chen', 'busy'));
    await waitFor('one more busy', async () => (await text(page, '#count-busy')) === `${busy + 1}`);

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
  });

  it('finds a user through the search field, and follows their change live', async () => {
    const page = await newPage();
    await openDashboard(page);
    await page.waitForSelector(row('ana', 'available'));
    expect(await page.getAttribute('#search', 'type')).toBe('search');

    await page.fill('#search', 'user-04217');
    await page.waitForSelector('tr[data-user="user-042170"]', { state: 'attached' });
    const found = await page.$$eval('#users tr', (rows) => rows.map((r) => r.dataset.user));
    expect(found).toEqual(Array.from({ length: 10 }, (_, i) => `user-04217${i}`));
    expect(await text(page, '#note')).toContain('whose id starts with “user-04217”');

    await page.fill('#search', 'user-042171');
    await waitFor('one user found', async () => (await page.$$('#users tr')).length === 1);
    // Away: its last ping was three hours ago.
    await page.waitForSelector(row('user-042171', 'away'));
    expect((await ping('user-042171', 'busy')).status).toBe(200);
    await page.waitForSelector(row('user-042171', 'busy'));
    expect((await ping('user-042171', 'available')).status).toBe(200);
    await page.waitForSelector(row('user-042171', 'available'));

    await page.fill('#search', 'nobody-');
    await waitFor('nobody found', async () => (await page.$$('#users tr')).length === 0);
    expect(await text(page, '#note')).toBe('No users whose id starts with “nobody-”.');
  });

  it('holds one page of rows, pages on, and receives little over its socket while idle', async () => {
    const page = await newPage();
    const cdp = await (context as BrowserContext).newCDPSession(page);
    await cdp.send('Network.enable');
    let received = 0;
    cdp.on('Network.webSocketFrameReceived', ({ response }) => {
      received += Buffer.byteLength(response.payloadData);
    });
    await openDashboard(page);
    await page.waitForSelector(row('ana', 'available'));
    const rowCount = () => page.$$eval('tr', (rows) => rows.length);
    expect(await rowCount()).toBeLessThanOrEqual(PAGE_ROWS + 1);

    await page.click('#next');
    // The team of eight, then user-000001 to user-000042 on the first page.
    await page.waitForSelector('tr[data-user="user-000092"]', { state: 'attached' });
    expect(await page.$(row('ana', 'available'))).toBeNull();
    expect(await text(page, '#note')).toBe('Users 51 to 100, in id order.');
    await page.click('#previous');
    await page.waitForSelector(row('ana', 'available'));

    // Idle: the service is quiet; what the socket brings is its own bookkeeping only.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = received;
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const idle = received - before;
    expect(idle).toBeLessThan(IDLE_BYTES_LIMIT);
    // In fact far less: no list of the hundred thousand ever comes.
    expect(received).toBeLessThan(64 * 1024);
    expect(await rowCount()).toBeLessThanOrEqual(PAGE_ROWS + 1);
    console.log(`socket: ${received} bytes received in all, ${idle} while idle for 5 s`);
  });

  it('charts online users per hour and, for a row clicked, its day, from real history', async () => {
    const page = await newPage();
    await page.setViewportSize({ width: 900, height: 1500 });
    await openDashboard(page);
    await page.waitForSelector('#online svg rect.bar');
    const bars = await page.$$eval('#online rect.bar', (rects) =>
      rects.map((rect) => Number(rect.getAttribute('data-online'))),
    );
    expect(bars.length).toBeGreaterThanOrEqual(24);
    // 300 users change all day long, two thirds of the time online: at least 200 an hour.
    expect(Math.max(...bars)).toBeGreaterThanOrEqual(200);
    // Every hour once all have started (they start over the first hour and a half).
    expect(bars.slice(2), JSON.stringify(bars)).toEqual(bars.slice(2).map((n) => Math.max(n, 200)));

    await page.click(row('ana', 'available'));
    await page.waitForSelector('#day-chart[data-user="ana"] svg rect.segment');
    expect(await text(page, '#day-title')).toBe('ana: the last 24 hours');
    const segments = await page.$$eval('#day-chart rect.segment', (rects) =>
      rects.map((rect) => rect.getAttribute('data-status')),
    );
    // Her day as seeded; the seed's ping of her may add an interval of the same status (it is
    // logged as a new user's first change when the seeded history has no presence row).
    expect(segments.slice(0, 4)).toEqual(['available', 'busy', 'away', 'available']);
    expect(segments.slice(4).every((status) => status === 'available')).toBe(true);

    // A change of that user is drawn at once.
    expect((await ping('ana', 'busy')).status).toBe(200);
    await waitFor('the change on the timeline', async () => {
      const now = await page.$$eval('#day-chart rect.segment', (rects) =>
        rects.map((rect) => rect.getAttribute('data-status')),
      );
      return now.at(-1) === 'busy';
    });

    // The rows' devices are read after the page: the picture waits for hana's.
    await page.waitForSelector('tr[data-user="hana"] td.devices .chip.override');
    const image = await page.screenshot({
      path: process.env.SCREENSHOT ? 'docs/dashboard.png' : undefined,
      fullPage: true,
    });
    expect(image.length).toBeGreaterThan(1000);
    if (process.env.SCREENSHOT) {
      await page.fill('#search', 'user-0421');
      await page.waitForSelector('tr[data-user="user-042100"]', { state: 'attached' });
      await page.screenshot({ path: 'docs/dashboard-search.png', fullPage: true });
    }
  });

  it('shows a user’s devices, override and message in the table and her day, and follows them live', async () => {
    const page = await newPage();
    await page.setViewportSize({ width: 900, height: 1300 });
    await openDashboard(page);
    const hana = row('hana', 'busy');
    await page.waitForSelector(`${hana} td.devices .chip.override`);
    expect(await chips(page, `${hana} td.devices .session`)).toEqual([
      'laptop available',
      'phone busy',
    ]);
    expect(await text(page, `${hana} td.devices .override`)).toMatch(UNTIL('do not disturb'));
    // The message as typed: its markup is text, not elements.
    expect(await text(page, `${hana} td.message`)).toBe(MESSAGE);
    expect(await page.$$(`${hana} td.message *`)).toHaveLength(0);
    // A user of the seed's clients (one default session) shows no devices.
    expect(await text(page, 'tr[data-user="ana"] td.devices')).toBe('');

    await page.click(hana);
    await page.waitForSelector('#day-chart[data-user="hana"] svg');
    await page.waitForSelector('#day-devices li[data-session="phone"]');
    expect(await text(page, '#day-devices .message .text')).toBe(MESSAGE);
    expect(await page.$$('#day-devices .message .text *')).toHaveLength(0);
    expect(await text(page, '#day-devices .message')).toMatch(UNTIL(MESSAGE));
    expect(await text(page, '#day-devices .override')).toMatch(UNTIL('do not disturb'));
    expect(await chips(page, '#day-devices li .session')).toEqual([
      'laptop available',
      'phone busy',
    ]);
    if (process.env.SCREENSHOT) {
      await page.screenshot({ path: 'docs/dashboard-devices.png', fullPage: true });
    }

    // A new message reaches the row over the socket, and the panel reads it again.
    const message = { text: 'Back at <i>4</i>', expires: null };
    expect((await call(service, 'PUT', '/users/hana/message', KEYS.access, message)).status).toBe(
      200,
    );
    await waitFor('the new message in the row', async () => {
      return (await text(page, `${hana} td.message`)) === message.text;
    });
    await waitFor('the new message in the panel', async () => {
      return (await text(page, '#day-devices .message')) === `${message.text} until ended`;
    });

    // Do-not-disturb ended (no change: the phone is busy), then the phone available: hana is.
    expect((await call(service, 'DELETE', '/users/hana/override', KEYS.access)).status).toBe(200);
    expect((await pingFrom('phone', 'available')).status).toBe(200);
    const available = row('hana', 'available');
    await waitFor('both devices available in the row', async () => {
      const shown = await chips(page, `${available} td.devices .chip`);
      return shown.join(', ') === 'laptop available, phone available';
    });
    await waitFor('both devices available in the panel', async () => {
      const shown = await chips(page, '#day-devices li .session');
      return shown.join(', ') === 'laptop available, phone available';
    });
    expect(await page.$('#day-devices .override .chip')).toBeNull();

    // The laptop closed: the status stays available, so no frame says so; the panel's own
    // reads of the opened user do, within seconds.
    const ended = await call(service, 'DELETE', '/users/hana/sessions/laptop', KEYS.access);
    expect(ended.status).toBe(200);
    await waitFor(
      'the laptop gone from the panel',
      async () => (await chips(page, '#day-devices li .session')).join() === 'phone available',
      3 * STEP_MS,
    );
    await page.waitForSelector(`${available} td.devices .session[data-session="phone"]`);
    expect(await chips(page, `${available} td.devices .session`)).toEqual(['phone available']);

    // The message cleared: gone from the row with the change that says so.
    expect((await call(service, 'DELETE', '/users/hana/message', KEYS.access)).status).toBe(200);
    await waitFor(
      'no message in the row',
      async () => (await text(page, `${available} td.message`)) === '',
    );
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
