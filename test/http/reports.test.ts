import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/db/schema.js';
import { setReportTimezone } from '../../src/presence/repository.js';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';
import { cursor, refusals } from '../helpers/queries.js';

const database = useTestDatabase();
const app = () => testApp(database.db);
const get = (path: string, options?: Parameters<typeof request>[3]) =>
  request(app(), 'GET', path, options);

/** Appends a user's changes in order, each holding from its time: the triggers' own append. */
async function live(user: string, steps: [Status, string][]) {
  let previous: Status | null = null;
  for (const [status, at] of steps) {
    await sql`select presently.append_change(${user}, ${status}, ${previous}, ${at}::timestamptz)`.execute(
      database.db,
    );
    previous = status;
  }
}

/** Everything stored, to show that a refused request changed nothing. */
async function stored() {
  const log = database.db.selectFrom('presently.status_changes').selectAll().orderBy('position');
  return { presence: await presenceRows(database.db), log: await log.execute() };
}

/** A request answered as text (CSV), the key given as `?key=`. */
async function text(path: string, headers: Record<string, string> = {}) {
  const url = new URL(path, 'http://presently.test');
  url.searchParams.set('key', KEYS.access);
  const response = await app().request(url.toString(), { headers });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** A report row: seconds available, busy and away. */
const row = (user: string, day: string, ...seconds: number[]) => {
  const [available, busy, away] = seconds;
  return { user, day, available, busy, away };
};

/** ann and bob around midnight UTC between November 20 and 21; both still in their last status. */
async function annAndBob() {
  await live('ann', [
    ['available', '2026-11-20T22:00:00Z'],
    ['busy', '2026-11-21T01:00:00Z'],
    ['away', '2026-11-21T02:30:00Z'],
    ['available', '2026-11-21T03:00:00Z'],
  ]);
  await live('bob', [['busy', '2026-11-21T12:00:00Z']]);
}
const twoDays = '/reports/activity?from=2026-11-20&to=2026-11-22';
const twoDaysRows = [
  row('ann', '2026-11-20', 7200, 0, 0),
  row('ann', '2026-11-21', 79200, 5400, 1800),
  row('bob', '2026-11-21', 0, 43200, 0),
];

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
  await setReportTimezone(database.db, 'UTC');
});

describe('GET /reports/activity', () => {
  beforeEach(annAndBob);

  it('answers seconds per status per user and day, by day then user', async () => {
    const answer = await get(twoDays);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ data: twoDaysRows, next: null });
    expect(answer.headers.get('link')).toBeNull();
    const json = await get(`${twoDays}&format=json`, { headers: { accept: 'text/csv' } });
    expect(json.body).toEqual(answer.body);
  });

  it('counts only the time inside the period', async () => {
    const answer = await get('/reports/activity?from=2026-11-20T23:00Z&to=2026-11-21T01:30Z');
    expect(answer.body.data).toEqual([
      row('ann', '2026-11-20', 3600, 0, 0),
      row('ann', '2026-11-21', 3600, 1800, 0),
    ]);
  });

  it('answers one user with user=, and nothing for a user never seen', async () => {
    expect((await get(`${twoDays}&user=ann`)).body.data).toEqual(twoDaysRows.slice(0, 2));
    expect((await get(`${twoDays}&user=nobody`)).body).toEqual({ data: [], next: null });
  });

  it('splits days at midnight in the report zone, dates included', async () => {
    await setReportTimezone(database.db, 'Asia/Kolkata');
    expect((await get('/reports/activity?from=2026-11-21&to=2026-11-22')).body.data).toEqual([
      row('ann', '2026-11-21', 66600, 5400, 1800),
      row('bob', '2026-11-21', 0, 23400, 0),
    ]);
  });

  it('answers CSV for Accept: text/csv or format=csv, with quoted ids', async () => {
    await live('a,b', [['away', '2026-11-20T23:00:00Z']]);
    await live('say "hi"', [['busy', '2026-11-21T23:30:00Z']]);
    const expected =
      'user,day,available,busy,away\r\n' +
      '"a,b",2026-11-20,0,0,3600\r\n' +
      'ann,2026-11-20,7200,0,0\r\n' +
      '"a,b",2026-11-21,0,0,86400\r\n' +
      'ann,2026-11-21,79200,5400,1800\r\n' +
      'bob,2026-11-21,0,43200,0\r\n' +
      '"say ""hi""",2026-11-21,0,1800,0\r\n';
    const answers = [
      await text(twoDays, { accept: 'text/csv' }),
      await text(twoDays, { accept: 'application/json;q=0.5, text/csv' }),
      await text(`${twoDays}&format=csv`),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(answer.body).toBe(expected);
    }
  });

  it('answers JSON to a client that refuses CSV (q=0)', async () => {
    for (const accept of ['text/csv;q=0', 'text/csv; q=0.000, application/json']) {
      const answer = await get(twoDays, { headers: { accept } });
      expect(answer.status, accept).toBe(200);
      expect(answer.headers.get('content-type'), accept).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ data: twoDaysRows, next: null });
    }
  });

  it('pages CSV too, with a Link to the next page', async () => {
    const answer = await text(`${twoDays}&format=csv&limit=2`);
    expect(answer.body).toBe(
      'user,day,available,busy,away\r\nann,2026-11-20,7200,0,0\r\nann,2026-11-21,79200,5400,1800\r\n',
    );
    expect(answer.headers.get('link')).toMatch(
      /^<\/reports\/activity\?from=2026-11-20&to=2026-11-22&format=csv&limit=2&cursor=[\w-]+>; rel="next"$/,
    );
  });
});

describe('days in zones with daylight saving time (Europe/Paris)', () => {
  it('counts 23-hour and 25-hour days whole', async () => {
    await setReportTimezone(database.db, 'Europe/Paris');
    await live('dst', [
      ['available', '2026-03-28T12:00Z'],
      ['busy', '2026-03-30T12:00Z'],
      ['available', '2026-10-24T12:00Z'],
      ['busy', '2026-10-26T12:00Z'],
    ]);
    expect((await get('/reports/activity?from=2026-03-28&to=2026-03-31')).body.data).toEqual([
      row('dst', '2026-03-28', 39600, 0, 0),
      row('dst', '2026-03-29', 82800, 0, 0),
      row('dst', '2026-03-30', 50400, 36000, 0),
    ]);
    expect((await get('/reports/activity?from=2026-10-24&to=2026-10-27')).body.data).toEqual([
      row('dst', '2026-10-24', 36000, 50400, 0),
      row('dst', '2026-10-25', 90000, 0, 0),
      row('dst', '2026-10-26', 46800, 39600, 0),
    ]);
  });
});

const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const DAY = 86_400_000;

describe('the default period: today and the six days before, in the report zone', () => {
  it('runs from midnight six days ago up to now', async () => {
    await live('long', [['available', new Date(Date.now() - 10 * DAY).toISOString()]]);
    const before = Date.now();
    const { data } = (await get('/reports/activity')).body;
    const midnight = Date.parse(ymd(before));
    expect(data.map((r: { day: string }) => r.day)).toEqual(
      [6, 5, 4, 3, 2, 1, 0].map((n) => ymd(midnight - n * DAY)),
    );
    expect(data.slice(0, 6).map((r: { available: number }) => r.available)).toEqual(
      Array(6).fill(86400),
    );
    expect(data[6].available).toBeCloseTo((before - midnight) / 1000, -1);
  });

  it('takes the days of the report zone', async () => {
    await setReportTimezone(database.db, 'Pacific/Kiritimati');
    await live('long', [['available', new Date(Date.now() - 10 * DAY).toISOString()]]);
    const zone = { timeZone: 'Pacific/Kiritimati' };
    const today = Date.parse(new Intl.DateTimeFormat('en-CA', zone).format(new Date()));
    const days = (await get('/reports/activity')).body.data.map((r: { day: string }) => r.day);
    expect(days).toEqual([6, 5, 4, 3, 2, 1, 0].map((n) => ymd(today - n * DAY)));
  });

  it('runs to `to` when given: the seven days before it', async () => {
    await live('mid', [
      ['available', '2026-11-10T00:00:00Z'],
      ['busy', '2026-11-25T00:00:00Z'],
    ]);
    const { data } = (await get('/reports/activity?to=2026-11-22')).body;
    expect(data).toEqual(
      [15, 16, 17, 18, 19, 20, 21].map((d) => row('mid', `2026-11-${d}`, 86400, 0, 0)),
    );
  });
});

/** Follows a paged answer to its end by `next` or by `Link`: every page's data, in order. */
async function follow(path: string, by: 'next' | 'link') {
  const pages: unknown[][] = [];
  for (let url: string | undefined = path; url !== undefined && pages.length < 10; ) {
    const answer = await get(url);
    expect(answer.status).toBe(200);
    pages.push(answer.body.data);
    const link = answer.headers.get('link');
    expect(link === null).toBe(answer.body.next === null);
    expect(link ?? '').not.toContain(KEYS.access);
    const next = new URL(path, 'http://x');
    next.searchParams.set('cursor', answer.body.next);
    const byLink = link?.match(/^<(\/[^>]*)>; rel="next"$/)?.[1];
    url =
      answer.body.next === null ? undefined : by === 'link' ? byLink : next.pathname + next.search;
  }
  return pages;
}

describe('paging the report', () => {
  // Ids order byte-wise, as everywhere: "Zed" before "amy".
  const users = ['Zed', 'amy', 'bob'];
  const paged = '/reports/activity?from=2026-11-20&to=2026-11-21T12:00Z';
  const all = ['2026-11-20', '2026-11-21'].flatMap((day) =>
    users.map((user) => row(user, day, 43200, 0, 0)),
  );
  beforeEach(async () => {
    for (const user of ['bob', 'amy', 'Zed']) {
      await live(user, [
        ['available', '2026-11-20T12:00:00Z'],
        ['away', '2026-11-21T12:00:00Z'],
      ]);
    }
  });

  it.each([
    [1, 'next'],
    [2, 'next'],
    [4, 'link'],
    [6, 'link'],
  ] as const)('gives every row once, in order, %i a page, by %s', async (limit, by) => {
    const pages = await follow(`${paged}&limit=${limit}`, by);
    expect(pages).toHaveLength(Math.ceil(all.length / limit));
    expect(pages.flat()).toEqual(all);
  });
});

describe('bad report requests are refused with 400 and change nothing', () => {
  const cases = [
    ...refusals('invalid_period', [
      'from=yesterday',
      'from=2026-13-01',
      'to=2026-02-30',
      'from=2026-11-26T25:00Z',
      'from=2026-11-26T10:00',
      'from=0000-01-01',
      'from=2099-01-01',
      'from=2026-10-01',
      'from=2026-11-20T10:00Z&to=2026-11-20T09:59:59Z',
      'from=2026-11-20&to=2026-11-20',
      'from=2026-10-20T00:00Z&to=2026-11-20T00:00:00.001Z',
    ]),
    ...refusals('invalid_limit', ['0', '10001', '1.5', 'abc', ''], 'limit'),
    ...refusals('invalid_format', ['xml', 'CSV', ''], 'format'),
    ...refusals('invalid_id', ['', 'x'.repeat(129), '\u0001'], 'user'),
    ...refusals('invalid_cursor', ['garbage', cursor({}), cursor({ day: '2026-11-20' })], 'cursor'),
    ...refusals('invalid_cursor', [cursor({ day: '20261120', user: 'a' })], 'cursor'),
    // Fail (500 internal): the cursor schema in reports.ts takes any dddd-dd-dd day and any
    // string, but PostgreSQL refuses a day that is not a date and a user with a NUL.
    ...refusals('invalid_cursor', [cursor({ day: '2026-13-45', user: 'a' })], 'cursor'),
    ...refusals('invalid_cursor', [cursor({ day: '2026-11-20', user: 'a\u0000' })], 'cursor'),
  ];

  it.each(cases)('%s', async (query, code) => {
    await annAndBob();
    const before = await stored();
    const answer = await get(`/reports/activity?${query}`, { headers: { accept: 'text/csv' } });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toEqual({ code, message: expect.any(String) });
    expect(await stored()).toEqual(before);
  });

  it('takes periods of exactly 31 days, and limits of 1 and 10000', async () => {
    for (const query of ['from=2026-10-20&to=2026-11-20', 'limit=1', 'limit=10000']) {
      expect((await get(`/reports/activity?${query}`)).status).toBe(200);
    }
  });

  it('refuses other methods with 405, and requests without a key with 401', async () => {
    await annAndBob();
    const before = await stored();
    const post = await request(app(), 'POST', '/reports/activity');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await get('/reports/activity', { key: null })).body.error.code).toBe('unauthorized');
    expect(await stored()).toEqual(before);
  });
});

describe('GET /reports/online', () => {
  beforeEach(annAndBob);

  it('answers online users per hour, and the most at once, from reporting.concurrency', async () => {
    const answer = await get(
      `/reports/online?from=${encodeURIComponent('2026-11-21T00:00:00Z')}&to=${encodeURIComponent('2026-11-21T04:00:00Z')}`,
    );
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const hour = (time: string, online: number, peak: number) => ({
      hour: `2026-11-21T${time}:00.000Z`,
      online,
      peak,
    });
    // ann online from the 20th 22:00, away 02:30 to 03:00, back at 03:00; bob from noon.
    expect(answer.body).toEqual({
      data: [hour('00:00', 1, 1), hour('01:00', 1, 1), hour('02:00', 1, 1), hour('03:00', 1, 1)],
    });
    const both = await get('/reports/online?from=2026-11-21&to=2026-11-22');
    expect(both.body.data).toHaveLength(24);
    expect(both.body.data.at(-1)).toEqual(hour('23:00', 2, 2));
  });

  it('covers the last 24 hours by default, up to now', async () => {
    const answer = await get('/reports/online');
    expect(answer.status).toBe(200);
    expect(answer.body.data.length).toBeGreaterThanOrEqual(24);
    expect(answer.body.data.length).toBeLessThanOrEqual(25);
    // Both still online now (their last status lasts).
    expect(answer.body.data.at(-1)).toMatchObject({ online: 2, peak: 2 });
  });

  it.each([
    ['from=yesterday', 'invalid_period'],
    ['from=2026-11-22&to=2026-11-21', 'invalid_period'],
    ['from=2026-01-01&to=2026-03-01', 'invalid_period'],
  ])('refuses %s with 400 %s', async (query, code) => {
    const answer = await get(`/reports/online?${query}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe(code);
  });
});
