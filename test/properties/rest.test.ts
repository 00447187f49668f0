import fc from 'fast-check';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.js';
import { useTestDatabase } from '../helpers/database.js';
import { KEYS, testApp } from '../helpers/http.js';
import {
  anyCharacter,
  anyContentType,
  anyNumber,
  anyString,
  headerText,
  KNOWN_IDS,
  pingValue,
  SQL_STRINGS,
} from './arbitraries.js';
import { budget, timeoutFor } from './budget.js';
import {
  DOCUMENTED_CODES,
  isUtf8,
  isValidId,
  judgePing,
  MAX_BODY_BYTES,
  type PingVerdict,
  parseJson,
} from './oracle.js';
import { type PresenceRow, type State, storedState } from './state.js';

// Properties of the REST routes, over the in-process app and a real migrated database: whatever
// a client sends, the answer is well-formed JSON with a 2xx or 4xx, never a 5xx; a refused
// request changes nothing; an accepted ping stores exactly the id and status it carried.

const database = useTestDatabase();
let app: App;

const BASE = 'http://presently.test';

beforeAll(async () => {
  app = testApp(database.db);
  // Users go away within seconds, so that pings meet every case: a new user, a heartbeat, a
  // new status, and a user gone away by time whom no sweep noticed (none runs in-process).
  await sql`update presently.settings set away_timeout = interval '2 seconds'`.execute(database.db);
  for (const [index, id] of KNOWN_IDS.entries()) {
    const status = index % 2 ? 'busy' : 'available';
    const reply = await send({
      method: 'POST',
      path: '/users/ping',
      body: JSON.stringify({ id, status }),
    });
    expect(reply.status).toBe(200);
  }
});

// --- Requests and answers --------------------------------------------------------------------

interface Sent {
  method: string;
  /** Path and query, as sent (already encoded). */
  path: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /** The key as `?key=` (added to the path); null: none. */
  key?: string | null;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  json: any;
}

function urlOf(sent: Sent): string {
  const key = sent.key === undefined ? KEYS.access : sent.key;
  if (key === null) return `${BASE}${sent.path}`;
  const separator = sent.path.includes('?') ? '&' : '?';
  return `${BASE}${sent.path}${separator}key=${encodeURIComponent(key)}`;
}

async function send(sent: Sent): Promise<Reply> {
  const response = await app.request(urlOf(sent), {
    method: sent.method,
    body: sent.body,
    headers: sent.headers,
  });
  const text = new TextDecoder().decode(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, text, json: undefined };
}

/**
 * Every answer: a 2xx or a 4xx, never a 5xx; JSON with `data` (a success) or
 * `error: {code, message}` (a refusal, with a documented code); CSV only as a 200 in text/csv;
 * nothing at all for HEAD.
 */
function expectWellFormed(sent: Sent, reply: Reply): Reply {
  const { status } = reply;
  expect(status >= 500, `a ${status} answer: ${reply.text}`).toBe(false);
  expect(
    (status >= 200 && status < 300) || (status >= 400 && status < 500),
    `status ${status}`,
  ).toBe(true);
  if (sent.method.toUpperCase() === 'HEAD') {
    expect(reply.text).toBe('');
    return reply;
  }
  const type = reply.headers.get('content-type') ?? '';
  if (status === 200 && type.startsWith('text/csv')) {
    expect(reply.text.split(/\r?\n/)[0]).toBe('user,day,available,busy,away');
    return reply;
  }
  expect(type, `content type of ${reply.text}`).toMatch(/^application\/json/);
  const parsed = parseJson(reply.text);
  expect(parsed.ok, `not JSON: ${reply.text}`).toBe(true);
  const json = parsed.ok ? (parsed.value as Record<string, unknown>) : {};
  expect(typeof json === 'object' && json !== null && !Array.isArray(json)).toBe(true);
  if (sent.path.startsWith('/healthz') && status === 200) {
    // The probe's own documented answer.
    expect(json).toEqual({ status: 'ok' });
  } else if (status < 300) {
    expect(json).toHaveProperty('data');
    expect(json).not.toHaveProperty('error');
  } else {
    expect(json).not.toHaveProperty('data');
    const error = json.error as { code: unknown; message: unknown };
    expect(typeof error?.code, reply.text).toBe('string');
    expect(typeof error?.message, reply.text).toBe('string');
    expect(DOCUMENTED_CODES.has(error.code as string), `undocumented code ${error.code}`).toBe(
      true,
    );
  }
  return { ...reply, json };
}

const codeOf = (reply: Reply): string | undefined => reply.json?.error?.code;

// --- What the database holds ------------------------------------------------------------------

const state = () => storedState(database.db);

/** A refused request (or a read) changed nothing at all. */
function expectUnchanged(before: State, after: State, what: string) {
  expect(after.presence, `presence after ${what}`).toEqual(before.presence);
  expect(after.log, `change log after ${what}`).toEqual(before.log);
}

/**
 * An accepted ping stored its user with exactly the normalised id and the status, touched no
 * one else, and logged only changes of its own: none for a heartbeat, its new status, and
 * before it the user's going away by time if no sweep had logged that yet (none runs here).
 */
async function expectStored(
  before: State,
  after: State,
  ping: { id: string; status: string },
  sentAt: number,
) {
  const others = (rows: PresenceRow[]) => rows.filter((row) => row.user_id !== ping.id);
  expect(others(after.presence)).toEqual(others(before.presence));
  const row = after.presence.find((candidate) => candidate.user_id === ping.id);
  expect(row, `no row for ${JSON.stringify(ping.id)}`).toBeDefined();
  expect(row?.status).toBe(ping.status);
  expect(row?.last_ping.getTime()).toBeGreaterThanOrEqual(sentAt - 1_000);
  const { rows } = await sql<{ user_id: string | null; status: string | null }>`
    select user_id, status from presently.status_changes
    where position > ${before.log.max ?? '0'}::bigint
    order by position`.execute(database.db);
  expect(after.log.count - before.log.count).toBe(rows.length);
  const logged = rows.map((change) => `${change.user_id}:${change.status}`);
  const [away, changed] = [`${ping.id}:away`, `${ping.id}:${ping.status}`];
  expect([[], [changed], [away, changed]], `changes logged: ${logged}`).toContainEqual(logged);
  // A new user, or a new status, is a change (a heartbeat is not).
  const previous = before.presence.find((candidate) => candidate.user_id === ping.id);
  if (previous?.status !== ping.status) expect(logged).not.toEqual([]);
}

/** Users the service knows: a status, or any history. */
async function isKnown(id: string): Promise<{ status: boolean; any: boolean }> {
  const { rows } = await sql<{ status: boolean; history: boolean }>`
    select exists (select from presently.presence where user_id = ${id}) as status,
           exists (select from presently.status_changes where user_id = ${id}) as history
  `.execute(database.db);
  const row = rows[0];
  return { status: Boolean(row?.status), any: Boolean(row?.status || row?.history) };
}

// --- POST /users/ping -------------------------------------------------------------------------

interface PingRequest {
  body: string | Uint8Array;
  headers: Record<string, string>;
}

/**
 * What the README says must happen to a ping body: 413 over 16 KiB, 400 invalid_json for what
 * is not JSON, else the verdict on the value. A body that is not valid UTF-8 is not JSON text;
 * whether it is refused or read with replacement characters is left open (either passes).
 */
function expectedForBody(body: string | Uint8Array): (PingVerdict | { ok: false; code: string })[] {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  if (bytes.byteLength > MAX_BODY_BYTES) return [{ ok: false, code: 'payload_too_large' }];
  // What a UTF-8 reader sees: a leading byte order mark dropped, bad sequences replaced.
  const parsed = parseJson(new TextDecoder().decode(bytes));
  const verdict = parsed.ok
    ? judgePing(parsed.value)
    : { ok: false as const, code: 'invalid_json' };
  if (isUtf8(bytes)) return [verdict];
  return [verdict, { ok: false, code: 'invalid_json' }];
}

/** Sends a ping body and checks every property of the answer and of the database. */
async function checkPing(request: PingRequest): Promise<void> {
  const sent: Sent = {
    method: 'POST',
    path: '/users/ping',
    body: request.body,
    headers: request.headers,
  };
  const before = await state();
  const sentAt = Date.now();
  const reply = expectWellFormed(sent, await send(sent));
  const after = await state();
  const expected = expectedForBody(request.body);
  const outcome = reply.status === 200 ? 'stored' : codeOf(reply);
  const allowed = expected.map((verdict) => (verdict.ok ? 'stored' : verdict.code));
  expect(allowed, `answer ${reply.status} ${reply.text}`).toContain(outcome);
  if (reply.status >= 300) {
    expectUnchanged(before, after, `${reply.status} ${reply.text}`);
    return;
  }
  const verdict = expected.find((candidate) => candidate.ok) as Extract<PingVerdict, { ok: true }>;
  const counts = reply.json.data;
  expect(Object.keys(counts).sort()).toEqual(['available', 'away', 'busy']);
  for (const count of Object.values(counts)) expect(Number.isInteger(count)).toBe(true);
  expect(counts.available + counts.busy + counts.away).toBe(after.presence.length);
  await expectStored(before, after, verdict, sentAt);
}

const asJsonBody = (value: unknown, headers: Record<string, string> = {}): PingRequest => ({
  body: JSON.stringify(value),
  headers,
});

const contentTypeHeaders = anyContentType.map(
  (type): Record<string, string> => (type === null ? {} : { 'content-type': type }),
);

describe('POST /users/ping', () => {
  it(
    'answers any JSON value with 200 or a 4xx, and stores exactly what it accepts',
    async () => {
      await fc.assert(
        fc.asyncProperty(pingValue, contentTypeHeaders, async (value, headers) => {
          await checkPing(asJsonBody(value, headers));
        }),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );

  it(
    'reads ids with control characters, lone surrogates, escapes and odd numbers from raw JSON text',
    async () => {
      // JSON escapes reach what JSON.stringify never writes: \ud800 alone, \u0000, \/ ...
      const escaped = fc.oneof(
        fc
          .integer({ min: 0, max: 0xffff })
          .map((unit) => `\\u${unit.toString(16).padStart(4, '0')}`),
        fc
          .integer({ min: 0xd800, max: 0xdfff })
          .map((unit) => `\\u${unit.toString(16).toUpperCase()}`),
        fc.constantFrom(
          '\\"',
          '\\\\',
          '\\/',
          '\\b',
          '\\f',
          '\\n',
          '\\r',
          '\\t',
          '\\ud83d\\ude00',
          '\\x41',
          '\\',
        ),
      );
      const piece = fc.oneof(
        escaped,
        anyCharacter.filter((character) => character !== '"' && character !== '\\'),
      );
      const stringLiteral = fc
        .array(piece, { maxLength: 12 })
        .map((pieces) => `"${pieces.join('')}"`);
      // Numbers as JSON may write them: exponents, fractions that are whole, beyond 2^53.
      const numberLiteral = fc.oneof(
        fc.constantFrom(
          '1e2',
          '1E+2',
          '1.0',
          '-0',
          '0.1e1',
          '100e-2',
          '1e400',
          '-1e400',
          '9007199254740993',
          '-9007199254740992',
          '9007199254740991',
          '1.5',
          '01',
          '+1',
          '0x10',
          'NaN',
          'Infinity',
        ),
        fc
          .tuple(fc.integer(), fc.integer({ min: -3, max: 25 }))
          .map(([mantissa, exponent]) => `${mantissa}e${exponent}`),
      );
      const literal = fc.oneof(
        { arbitrary: stringLiteral, weight: 4 },
        { arbitrary: numberLiteral, weight: 1 },
      );
      const status = fc.constantFrom(
        '"available"',
        '"busy"',
        '"bu\\u0073y"',
        '"busy\\u0000"',
        '"away"',
      );
      await fc.assert(
        fc.asyncProperty(literal, status, fc.boolean(), async (id, statusText, idFirst) => {
          const body = idFirst
            ? `{"id": ${id}, "status": ${statusText}}`
            : `{"status":${statusText},"id":${id}}`;
          await checkPing({ body, headers: {} });
        }),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );

  it(
    'stores SQL-looking ids and refuses SQL-looking statuses as plain text',
    async () => {
      const sqlish = fc
        .tuple(
          fc.constantFrom(...SQL_STRINGS),
          fc.string({ maxLength: 4 }),
          fc.string({ maxLength: 4 }),
        )
        .map(([core, before, after]) => `${before}${core}${after}`);
      const status = fc.oneof(fc.constantFrom('available', 'busy'), sqlish);
      await fc.assert(
        fc.asyncProperty(sqlish, status, async (id, statusValue) => {
          await checkPing(asJsonBody({ id, status: statusValue }));
        }),
        budget(0.3),
      );
      // The tables the strings name are still there, and hold what they should.
      expect((await state()).presence.length).toBeGreaterThan(0);
    },
    timeoutFor(0.3, 30),
  );

  it(
    'takes bodies up to 16 KiB and refuses larger ones with 413, with or without Content-Length',
    async () => {
      const pad = fc.constantFrom('a', 'é', '😀', '\\u0000', ' ');
      const size = fc.oneof(
        fc.integer({ min: MAX_BODY_BYTES - 8, max: MAX_BODY_BYTES + 8 }),
        fc.integer({ min: MAX_BODY_BYTES - 1024, max: MAX_BODY_BYTES + 1024 }),
        fc.constantFrom(64 * 1024, 1024 * 1024),
      );
      await fc.assert(
        fc.asyncProperty(
          size,
          pad,
          fc.boolean(),
          fc.constantFrom('whitespace', 'field', 'id'),
          fc.constantFrom('available', 'busy'),
          async (target, unit, withLength, where, status) => {
            const body = paddedPing(target, unit, where, status);
            const headers: Record<string, string> = withLength
              ? { 'content-length': String(Buffer.byteLength(body)) }
              : {};
            await checkPing({ body, headers });
          },
        ),
        budget(0.5),
      );
    },
    timeoutFor(0.5, 60),
  );

  it(
    'answers deeply nested bodies (up to 10,000 levels) with 200, 400 or 413, never failing',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.integer({ min: 1, max: 10_000 }),
            fc.constantFrom(3_000, 8_000, 8_190, 10_000),
          ),
          fc.constantFrom('array', 'object', 'mixed'),
          fc.constantFrom('body', 'id', 'status', 'extra', 'unclosed'),
          async (depth, shape, where) => {
            await checkPing({ body: nestedBody(depth, shape, where), headers: {} });
          },
        ),
        budget(0.3),
      );
    },
    timeoutFor(0.3, 60),
  );

  it(
    'answers random bytes, bad UTF-8 and non-JSON text as the README says, whatever the Content-Type',
    async () => {
      const valid = fc
        .record({
          id: fc.constantFrom('bytes', 7, 'é'),
          status: fc.constantFrom('available', 'busy'),
        })
        .map((ping) => new TextEncoder().encode(JSON.stringify(ping)));
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        // A valid ping with bytes put in: often bad UTF-8 inside a string, or broken JSON.
        fc
          .tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 4 }), fc.nat())
          .map(([ping, extra, at]) => {
            const cut = at % (ping.length + 1);
            return Uint8Array.from([...ping.slice(0, cut), ...extra, ...ping.slice(cut)]);
          }),
        // A byte order mark, then a ping.
        valid.map((ping) => Uint8Array.from([0xef, 0xbb, 0xbf, ...ping])),
        fc
          .string({ unit: anyCharacter, maxLength: 40 })
          .map((text) => new TextEncoder().encode(text)),
        fc
          .constantFrom(
            '{',
            '}',
            '{"id": 1, "status": "busy"',
            'undefined',
            'NaN',
            '{id: 1}',
            "{'id': 1}",
            '1 2',
            '[1,]',
            '{"__proto__": {"id": 1, "status": "busy"}}',
            '{"__proto__": {"status": "busy"}, "id": "proto"}',
            '{"constructor": {"prototype": {"status": "busy"}}, "id": "ctor"}',
            '{"id": "dup", "status": "busy", "id": null}',
            '{"id": "dup", "status": "nope", "status": "available"}',
          )
          .map((text) => new TextEncoder().encode(text)),
      );
      await fc.assert(
        fc.asyncProperty(bytes, contentTypeHeaders, async (body, headers) => {
          await checkPing({ body, headers });
        }),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );
});

/** A ping of exactly `target` bytes, padded where told (the id padding makes it invalid). */
function paddedPing(target: number, unit: string, where: string, status: string): string {
  const shell =
    where === 'whitespace'
      ? (fill: string) => `{"id":"big","status":"${status}"}${fill}`
      : where === 'field'
        ? (fill: string) => `{"id":"big","status":"${status}","pad":"${fill}"}`
        : (fill: string) => `{"id":"big${fill}","status":"${status}"}`;
  const unitFor = where === 'whitespace' ? ' ' : unit;
  const base = Buffer.byteLength(shell(''));
  const unitBytes = Buffer.byteLength(unitFor);
  let fill = unitFor.repeat(Math.max(0, Math.floor((target - base) / unitBytes)));
  // Top up with single bytes so that the body is exactly `target` bytes when it can be.
  fill += (where === 'whitespace' ? ' ' : 'a').repeat(
    Math.max(0, target - base - Buffer.byteLength(fill)),
  );
  return shell(fill);
}

/** Raw JSON text nested `depth` levels deep, placed as told. */
function nestedBody(depth: number, shape: string, where: string): string {
  const open: string[] = [];
  const close: string[] = [];
  for (let level = 0; level < depth; level++) {
    const array = shape === 'array' || (shape === 'mixed' && level % 2 === 0);
    open.push(array ? '[' : '{"a":');
    close.push(array ? ']' : '}');
  }
  const nested = `${open.join('')}1${close.reverse().join('')}`;
  switch (where) {
    case 'body':
      return nested;
    case 'id':
      return `{"id":${nested},"status":"busy"}`;
    case 'status':
      return `{"id":"deep","status":${nested}}`;
    case 'extra':
      return `{"id":"deep","status":"available","extra":${nested}}`;
    default:
      return `{"id":"deep","status":"busy","extra":${open.join('')}`;
  }
}

// --- GET routes: paths, queries and headers ---------------------------------------------------

/** A value and whether the README makes it valid, invalid, or leaves it to the service. */
interface Judged {
  text: string;
  validity: 'valid' | 'invalid' | 'unknown';
}

const judged = (validity: Judged['validity']) => (text: string) => ({ text, validity });

/** A path segment carrying an id: encoded as a client should, or raw bytes of every kind. */
const idSegment: fc.Arbitrary<Judged & { id?: string }> = fc.oneof(
  {
    arbitrary: anyString
      .filter((id) => id.isWellFormed())
      .map((id) => ({
        id,
        text: encodeURIComponent(id),
        validity: isValidId(id) ? ('valid' as const) : ('invalid' as const),
      })),
    weight: 6,
  },
  {
    arbitrary: fc
      .constantFrom(
        '%',
        '%zz',
        '%FF',
        '%ED%A0%80',
        '%C0%80',
        '%00',
        '%0A',
        '%2',
        'a%',
        '%%41',
        '.%2e',
        ';',
        'a;b=c',
        "'",
        '%27%20or%201%3D1',
      )
      .map(judged('unknown')),
    weight: 2,
  },
  { arbitrary: fc.constantFrom('', '.', '..', '%2e', '%2E%2E').map(judged('unknown')), weight: 1 },
  {
    arbitrary: fc.constantFrom(...KNOWN_IDS).map((id) => ({
      id,
      text: encodeURIComponent(id),
      validity: 'valid' as const,
    })),
    weight: 2,
  },
  {
    // Far over 128 characters: refused, however long.
    arbitrary: fc.integer({ min: 129, max: 100_000 }).map((length) => ({
      id: 'x'.repeat(length),
      text: 'x'.repeat(length),
      validity: 'invalid' as const,
    })),
    weight: 1,
  },
);

const pad = (value: number, width: number) => String(Math.abs(value)).padStart(width, '0');

/** `from`/`to` as ISO 8601 from an instant, in Z or with an offset. */
function isoAt(ms: number, offsetMinutes: number, fraction: boolean): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString();
  const base = fraction ? local.slice(0, 23) : local.slice(0, 19);
  if (offsetMinutes === 0) return `${base}Z`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${base}${sign}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`;
}

const DAY = 86_400_000;
const instant = fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2027, 0, 1) });
const offset = fc.oneof(fc.constant(0), fc.integer({ min: -15 * 60, max: 15 * 60 }));

/** Any text that looks like a bound, right or wrong: the corners of dates, times and zones. */
const boundLike: fc.Arbitrary<string> = fc
  .record({
    year: fc.oneof(
      fc.integer({ min: 0, max: 9999 }),
      fc.constantFrom(0, 1, 1582, 1900, 2000, 2026, 9999),
    ),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    time: fc.option(
      fc.record({
        separator: fc.constantFrom('T', 't', ' ', '_'),
        hours: fc.integer({ min: 0, max: 25 }),
        minutes: fc.integer({ min: 0, max: 61 }),
        seconds: fc.option(fc.integer({ min: 0, max: 61 })),
        fraction: fc.option(fc.stringMatching(/^[0-9]{1,8}$/)),
        zone: fc.oneof(
          fc.constantFrom('Z', 'z', '', 'UTC', '+00', '-00:00', '+24:00'),
          fc
            .tuple(
              fc.constantFrom('+', '-'),
              fc.integer({ min: 0, max: 17 }),
              fc.integer({ min: 0, max: 61 }),
              fc.boolean(),
            )
            .map(([sign, h, m, colon]) => `${sign}${pad(h, 2)}${colon ? ':' : ''}${pad(m, 2)}`),
        ),
      }),
    ),
  })
  .map(({ year, month, day, time }) => {
    const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
    if (time === null) return date;
    const seconds = time.seconds === null ? '' : `:${pad(time.seconds, 2)}`;
    const fraction = time.seconds === null || time.fraction === null ? '' : `.${time.fraction}`;
    return `${date}${time.separator}${pad(time.hours, 2)}:${pad(time.minutes, 2)}${seconds}${fraction}${time.zone}`;
  });

interface Period {
  from?: string;
  to?: string;
  validity: Judged['validity'];
}

/** `from` and `to`: valid periods, reversed and oversized ones, and anything bound-like. */
const period = (maxDays: number): fc.Arbitrary<Period> =>
  fc.oneof(
    { arbitrary: fc.constant({ validity: 'valid' as const }), weight: 2 },
    {
      arbitrary: fc
        .tuple(
          instant,
          fc.integer({ min: 1_000, max: (maxDays - 1) * DAY }),
          offset,
          offset,
          fc.boolean(),
        )
        .map(([from, length, fromOffset, toOffset, fraction]) => ({
          from: isoAt(from, fromOffset, fraction),
          to: isoAt(from + length, toOffset, fraction),
          validity: 'valid' as const,
        })),
      weight: 3,
    },
    {
      // Dates: midnights in REPORT_TIMEZONE (UTC here), at most maxDays apart.
      arbitrary: fc.tuple(instant, fc.integer({ min: 1, max: maxDays })).map(([from, days]) => ({
        from: new Date(from).toISOString().slice(0, 10),
        to: new Date(from + days * DAY).toISOString().slice(0, 10),
        validity: 'valid' as const,
      })),
      weight: 2,
    },
    {
      arbitrary: fc.tuple(instant, offset).map(([to, toOffset]) => ({
        to: isoAt(to, toOffset, false),
        validity: 'valid' as const,
      })),
      weight: 1,
    },
    {
      arbitrary: fc.integer({ min: 60_000, max: (maxDays - 1) * DAY }).map((ago) => ({
        from: isoAt(Date.now() - ago, 0, true),
        validity: 'valid' as const,
      })),
      weight: 1,
    },
    {
      // Reversed, empty, and too long.
      arbitrary: fc
        .tuple(
          instant,
          fc.oneof(
            fc.integer({ min: -400 * DAY, max: 0 }),
            fc.integer({ min: (maxDays + 1) * DAY, max: 4_000 * DAY }),
          ),
        )
        .map(([from, length]) => ({
          from: isoAt(from, 0, false),
          to: isoAt(from + length, 0, false),
          validity: 'invalid' as const,
        })),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(fc.option(fc.oneof(boundLike, anyString)), fc.option(fc.oneof(boundLike, anyString)))
        .map(([from, to]) => ({
          ...(from === null ? {} : { from }),
          ...(to === null ? {} : { to }),
          validity: 'unknown' as const,
        })),
      weight: 4,
    },
  );

/** `arbitrary` one time in `oneIn`, else null (to which failures shrink). */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, oneIn: number) =>
  fc.oneof({ arbitrary: fc.constant(null), weight: oneIn - 1 }, { arbitrary, weight: 1 });

const limit = (max: number): fc.Arbitrary<Judged> =>
  fc.oneof(
    { arbitrary: fc.integer({ min: 1, max }).map((n) => judged('valid')(String(n))), weight: 3 },
    fc
      .oneof(
        fc.constantFrom(
          '0',
          '-1',
          '',
          ' ',
          '1.5',
          '1e3',
          '0x10',
          'abc',
          '+5',
          ' 5',
          '5 ',
          '١٢',
          "1' or '1'='1",
        ),
        fc.integer({ min: max + 1, max: 2 ** 31 }).map(String),
        fc.constantFrom('99999999999999999999', '-0'),
      )
      .map(judged('invalid')),
    fc.oneof(fc.constantFrom('0005', '0001000', '00'), anyString).map(judged('unknown')),
  );

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Cursors: random base64, base64 of random JSON, and well-shaped ones with odd numbers. */
const cursor: fc.Arbitrary<Judged> = fc.oneof(
  fc.base64String({ maxLength: 40 }).map(judged('unknown')),
  fc.jsonValue({ maxDepth: 2 }).map((value) => judged('unknown')(base64url(value))),
  fc
    .oneof(anyNumber, fc.constantFrom(0, 1, 2 ** 53, 2 ** 63, 1e20, 1e300, -1, 0.5))
    .map((after) => judged('unknown')(base64url({ after }))),
  fc
    .tuple(fc.oneof(boundLike, anyString), fc.oneof(anyString, fc.constantFrom(...KNOWN_IDS)))
    .map(([day, user]) => judged('unknown')(base64url({ day, user }))),
  fc.constantFrom('', '!!!', '%%%', 'null', 'e30', 'eyJhZnRlciI6LTF9').map(judged('unknown')),
);

/** Parameters nobody asked for: ignored, whatever their names and values. */
const otherParameters = fc.array(
  fc.tuple(
    fc
      .string({ unit: anyCharacter, maxLength: 8 })
      .filter(
        (name) =>
          !['from', 'to', 'limit', 'cursor', 'user', 'format', 'key', 'since'].includes(
            name.toWellFormed(),
          ),
      ),
    fc.string({ unit: anyCharacter, maxLength: 12 }),
  ),
  { maxLength: 3 },
);

/** A query string from parameters (lone surrogates become U+FFFD on the way, as in browsers). */
function queryOf(parameters: [string, string | undefined][]): string {
  const query = new URLSearchParams();
  for (const [name, value] of parameters) if (value !== undefined) query.append(name, value);
  const text = query.toString();
  return text ? `?${text}` : '';
}

/**
 * The answer's outcome against the judged parts of the request: everything valid must succeed
 * (`success` lists the outcomes that count); something invalid must be refused with the code
 * of one of the parts not known to be valid; the rest may go either way.
 */
function expectOutcome(
  reply: Reply,
  parts: { code: string; validity: Judged['validity'] }[],
  success: string[],
) {
  const outcome = reply.status < 300 ? `${reply.status}` : (codeOf(reply) ?? `${reply.status}`);
  const suspects = parts.filter((part) => part.validity !== 'valid').map((part) => part.code);
  const allowed = parts.some((part) => part.validity === 'invalid')
    ? suspects
    : [...success, ...suspects];
  expect(allowed, `answer ${reply.status} ${reply.text.slice(0, 300)}`).toContain(outcome);
}

/** The path as the service sees it: the URL's normalisation may have changed the route. */
function pathSegments(path: string): string[] {
  return new URL(`${BASE}${path}`).pathname.split('/');
}

/** True when the URL keeps the path as written (no `.` or `..` resolved away). */
function keepsPath(path: string): boolean {
  return new URL(`${BASE}${path}`).pathname === path.split('?')[0];
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Sends a read, checks the answer is well-formed and that nothing changed; returns the reply. */
async function read(sent: Sent): Promise<Reply> {
  const before = await state();
  const reply = expectWellFormed(sent, await send(sent));
  expectUnchanged(before, await state(), `${sent.method} ${sent.path}: ${reply.status}`);
  return reply;
}

describe('GET routes', () => {
  it(
    'answers /users/list/{status} for any segment, listing only users of that status',
    async () => {
      const segment = fc.oneof(
        fc
          .constantFrom('available', 'busy', 'away', 'all')
          .map((filter) => ({ text: filter, validity: 'valid' as const })),
        fc.constantFrom('%61ll', 'b%75sy').map(judged('valid')),
        fc
          .constantFrom('ALL', 'Busy', 'online', '%20', 'all%00', 'all;drop', 'away ', '*')
          .map((text) => ({
            text: encodeURIComponent(text),
            validity: 'invalid' as const,
          })),
        idSegment,
      );
      await fc.assert(
        fc.asyncProperty(segment, async (status) => {
          const path = `/users/list/${status.text}`;
          const reply = await read({ method: 'GET', path });
          const segments = pathSegments(path);
          // `/users/list/status` and `/users/list/history` are the user "list"'s; '..' leaves.
          const sameRoute =
            segments.length === 4 &&
            segments[3] === status.text &&
            status.text !== '' &&
            !['status', 'history'].includes(status.text);
          if (!sameRoute) return;
          const filter = decoded(status.text);
          const known = ['available', 'busy', 'away', 'all'].includes(filter);
          if (status.validity !== 'unknown' || known) {
            expect(reply.status, reply.text).toBe(known ? 200 : 400);
          }
          if (reply.status !== 200) {
            expect(codeOf(reply)).toBe('invalid_status');
            return;
          }
          for (const user of reply.json.data) {
            expect(Object.keys(user).sort()).toEqual(['status', 'time', 'user']);
            if (filter !== 'all') expect(user.status).toBe(filter);
          }
        }),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );

  it(
    'answers /users/{id}/status for any id: the user, 404 for a stranger, 400 for a bad id',
    async () => {
      await fc.assert(
        fc.asyncProperty(idSegment, async (segment) => {
          const path = `/users/${segment.text}/status`;
          const known =
            segment.validity === 'valid' ? await isKnown(segment.id as string) : undefined;
          const reply = await read({ method: 'GET', path });
          if (!keepsPath(path) || segment.text === '') return;
          if (segment.validity === 'invalid') {
            expect(codeOf(reply), reply.text).toBe('invalid_id');
          } else if (segment.validity === 'valid') {
            expect(reply.status, reply.text).toBe(known?.status ? 200 : 404);
          }
          if (reply.status === 200) {
            if (segment.id !== undefined) expect(reply.json.data.user).toBe(segment.id);
            expect(['available', 'busy', 'away']).toContain(reply.json.data.status);
          } else if (reply.status === 404) {
            expect(codeOf(reply)).toBe('user_not_found');
          } else {
            expect(codeOf(reply)).toBe('invalid_id');
          }
        }),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );

  it(
    'answers /users/{id}/history for any id and query',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          idSegment,
          period(31),
          sometimes(limit(1_000), 3),
          sometimes(cursor, 5),
          otherParameters,
          async (segment, span, size, after, others) => {
            const path = `/users/${segment.text}/history${queryOf([
              ['from', span.from],
              ['to', span.to],
              ['limit', size?.text],
              ['cursor', after?.text],
              ...others,
            ])}`;
            const known =
              segment.validity === 'valid' ? await isKnown(segment.id as string) : undefined;
            const reply = await read({ method: 'GET', path });
            if (!keepsPath(path) || segment.text === '') return;
            expectOutcome(
              reply,
              [
                { code: 'invalid_id', validity: segment.validity },
                { code: 'invalid_period', validity: span.validity },
                { code: 'invalid_limit', validity: size?.validity ?? 'valid' },
                { code: 'invalid_cursor', validity: after?.validity ?? 'valid' },
              ],
              known === undefined
                ? ['200', 'user_not_found']
                : [known.any ? '200' : 'user_not_found'],
            );
            if (reply.status === 200) {
              expect(Array.isArray(reply.json.data)).toBe(true);
              expect(reply.json.next === null || typeof reply.json.next === 'string').toBe(true);
            }
          },
        ),
        budget(),
      );
    },
    timeoutFor(1, 40),
  );

  it(
    'answers /reports/activity for any query and Accept header, as JSON or CSV',
    async () => {
      const user = fc.oneof(fc.constantFrom(...KNOWN_IDS), anyString).map((id) => {
        const received = id.toWellFormed();
        return {
          text: id,
          validity: isValidId(received) ? ('valid' as const) : ('invalid' as const),
        };
      });
      const format = fc.oneof(
        fc.constantFrom('csv', 'json').map(judged('valid')),
        fc
          .constantFrom('', 'CSV', 'xml', 'csv ', 'text/csv', 'json;', "csv' --")
          .map(judged('invalid')),
      );
      const mediaRange = fc
        .tuple(
          fc.constantFrom(
            'text/csv',
            'TEXT/CSV',
            'application/json',
            'text/*',
            '*/*',
            'text/html',
            'text/csvx',
          ),
          fc.option(
            fc.constantFrom(
              'q=0',
              'q=0.0',
              'q=0.000',
              'Q=0',
              'q=0.5',
              'q=1',
              'q=1.000',
              'charset=utf-8',
            ),
          ),
          fc.constantFrom('', ' ', '  '),
        )
        .map(([type, parameter, space]) => ({
          text: parameter === null ? type : `${type}${space};${space}${parameter}`,
          csv:
            type.toLowerCase() === 'text/csv' &&
            !(parameter !== null && /^q=0(\.0*)?$/i.test(parameter)),
        }));
      const accept = fc.oneof(
        fc.array(mediaRange, { minLength: 1, maxLength: 3 }).map((ranges) => ({
          header: ranges.map((range) => range.text).join(', '),
          csv: ranges.some((range) => range.csv) as boolean | undefined,
        })),
        headerText().map((header) => ({ header, csv: undefined })),
      );
      await fc.assert(
        fc.asyncProperty(
          period(31),
          sometimes(user, 2),
          sometimes(limit(10_000), 3),
          sometimes(cursor, 5),
          sometimes(format, 3),
          sometimes(accept, 2),
          otherParameters,
          async (span, who, size, after, kind, acceptHeader, others) => {
            const path = `/reports/activity${queryOf([
              ['from', span.from],
              ['to', span.to],
              ['user', who?.text],
              ['limit', size?.text],
              ['cursor', after?.text],
              ['format', kind?.text],
              ...others,
            ])}`;
            const headers: Record<string, string> = acceptHeader
              ? { accept: acceptHeader.header }
              : {};
            const reply = await read({ method: 'GET', path, headers });
            expectOutcome(
              reply,
              [
                { code: 'invalid_period', validity: span.validity },
                { code: 'invalid_id', validity: who?.validity ?? 'valid' },
                { code: 'invalid_limit', validity: size?.validity ?? 'valid' },
                { code: 'invalid_cursor', validity: after?.validity ?? 'valid' },
                { code: 'invalid_format', validity: kind?.validity ?? 'valid' },
              ],
              ['200'],
            );
            if (reply.status !== 200) return;
            const csv = (reply.headers.get('content-type') ?? '').startsWith('text/csv');
            const wanted =
              kind && kind.validity === 'valid'
                ? kind.text === 'csv'
                : acceptHeader
                  ? acceptHeader.csv
                  : false;
            if (wanted !== undefined)
              expect(csv, `CSV for ${JSON.stringify(acceptHeader)} ${kind?.text}`).toBe(wanted);
            if (!csv) {
              expect(Array.isArray(reply.json.data)).toBe(true);
              expect(reply.json.next === null || typeof reply.json.next === 'string').toBe(true);
            }
          },
        ),
        budget(),
      );
    },
    timeoutFor(1, 40),
  );
});

// --- Methods and keys -------------------------------------------------------------------------

/** Known paths and the methods each takes (null: it needs the system key, refused here). */
const ROUTES: { path: string; allow: string[] | null; key: boolean }[] = [
  { path: '/users/ping', allow: ['POST'], key: true },
  { path: '/users/list/all', allow: ['GET', 'HEAD'], key: true },
  { path: '/users/list/busy', allow: ['GET', 'HEAD'], key: true },
  { path: '/users/count', allow: ['GET', 'HEAD'], key: true },
  { path: '/users/alice/status', allow: ['GET', 'HEAD'], key: true },
  { path: '/users/list/status', allow: ['GET', 'HEAD'], key: true },
  { path: '/users/1/history', allow: ['GET', 'HEAD'], key: true },
  { path: '/users/nobody/history?from=2026-11-01', allow: ['GET', 'HEAD'], key: true },
  { path: '/reports/activity', allow: ['GET', 'HEAD'], key: true },
  { path: '/reports/activity?format=csv', allow: ['GET', 'HEAD'], key: true },
  { path: '/database/clear', allow: null, key: true },
  { path: '/database', allow: null, key: true },
  // A plain GET or HEAD of /ws is answered 426 (upgrade required); other methods 405.
  { path: '/ws', allow: ['GET', 'HEAD'], key: true },
  { path: '/healthz', allow: ['GET', 'HEAD'], key: false },
];

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'PROPFIND',
  'PURGE',
  // fetch writes these in capitals; a lowercase patch would stay as it is (and make undici warn).
  'get',
  'post',
  'delete',
];

describe('methods and keys', () => {
  it(
    'answers any method on a known path (405 with Allow for one it does not take), any request id',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...ROUTES),
          fc.constantFrom(...METHODS),
          pingValue,
          fc.option(
            fc.oneof(
              fc.stringMatching(/^[A-Za-z0-9._-]{1,128}$/),
              headerText(140),
              fc.constantFrom('x'.repeat(129), 'a b', 'id/1', 'é'),
            ),
          ),
          async (route, method, value, requestId) => {
            // fetch writes the standard methods in capitals (not PATCH); others stay as given.
            const upper = method.toUpperCase();
            const normalised = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'].includes(upper)
              ? upper
              : method;
            const hasBody = !['GET', 'HEAD'].includes(normalised);
            const sent: Sent = {
              method,
              path: route.path,
              ...(hasBody ? { body: JSON.stringify(value) } : {}),
              ...(requestId === null ? {} : { headers: { 'x-request-id': requestId } }),
            };
            const before = await state();
            const sentAt = Date.now();
            const reply = expectWellFormed(sent, await send(sent));
            const after = await state();
            // An incoming X-Request-Id of 1 to 128 of A-Z a-z 0-9 . _ - is kept, any other
            // replaced by a fresh UUID.
            const given = requestId?.trim();
            const answered = reply.headers.get('x-request-id');
            if (given !== undefined && /^[A-Za-z0-9._-]{1,128}$/.test(given))
              expect(answered).toBe(given);
            else
              expect(answered).toMatch(
                /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
              );
            if (route.allow === null) {
              // Only the system key opens these: the access key is refused before anything.
              expect(reply.status, reply.text).toBe(401);
            } else if (!route.allow.includes(normalised)) {
              expect(reply.status, reply.text).toBe(405);
              if (normalised !== 'HEAD') expect(codeOf(reply)).toBe('method_not_allowed');
              const allow = (reply.headers.get('allow') ?? '').split(/,\s*/);
              for (const name of allow) expect(route.allow).toContain(name);
            } else {
              expect(reply.status, reply.text).not.toBe(405);
            }
            if (normalised === 'POST' && route.path === '/users/ping' && reply.status === 200) {
              const verdict = judgePing(JSON.parse(JSON.stringify(value)));
              expect(verdict.ok).toBe(true);
              if (verdict.ok) await expectStored(before, after, verdict, sentAt);
            } else {
              expectUnchanged(before, after, `${method} ${route.path}: ${reply.status}`);
            }
          },
        ),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );

  it(
    'refuses (401) a request without a key or with any wrong one, and nothing changes',
    async () => {
      const key = fc.oneof(
        { arbitrary: fc.constantFrom(KEYS.access, KEYS.system), weight: 4 },
        {
          arbitrary: fc.constantFrom(
            '',
            ' ',
            `${KEYS.access} `,
            ` ${KEYS.access}`,
            KEYS.access.toUpperCase(),
            `${KEYS.access}\u0000`,
            KEYS.access.slice(0, -1),
            `${KEYS.access},${KEYS.system}`,
            "' or '1'='1",
          ),
          weight: 2,
        },
        { arbitrary: fc.string({ unit: anyCharacter, maxLength: 20 }), weight: 2 },
      );
      // Authorization headers, and the key each presents (null: none, the scheme is not Bearer).
      const authorization = fc.option(
        fc.oneof(
          key
            .filter((k) => /^[\x21-\x7e]*$/.test(k))
            .chain((k) =>
              fc
                .constantFrom('Bearer ', 'bearer ', 'BEARER ', 'Bearer   ')
                .map((scheme) => ({ header: `${scheme}${k}`, presents: k as string | null })),
            ),
          fc.constantFrom(
            { header: 'Bearer', presents: '' as string | null },
            {
              header: `Basic ${Buffer.from(`x:${KEYS.access}`).toString('base64')}`,
              presents: null,
            },
            { header: `Token ${KEYS.access}`, presents: null },
          ),
        ),
      );
      const route = fc.constantFrom(
        { method: 'GET', path: '/users/count' },
        { method: 'GET', path: '/users/list/all' },
        { method: 'GET', path: '/users/alice/status' },
        { method: 'GET', path: '/reports/activity' },
        { method: 'POST', path: '/users/ping' },
      );
      await fc.assert(
        fc.asyncProperty(
          route,
          fc.array(key, { maxLength: 3 }),
          authorization,
          fc.constantFrom('available', 'busy'),
          async (target, queryKeys, header, status) => {
            const query = new URLSearchParams(queryKeys.map((k): [string, string] => ['key', k]));
            const queryText = query.toString();
            const sent: Sent = {
              method: target.method,
              path: `${target.path}${queryText ? `?${queryText}` : ''}`,
              key: null,
              headers: header ? { authorization: header.header } : {},
              ...(target.method === 'POST'
                ? { body: JSON.stringify({ id: 'keyed', status }) }
                : {}),
            };
            const presented = [
              ...queryKeys.map((k) => k.toWellFormed()),
              ...(header && header.presents !== null ? [header.presents] : []),
            ];
            const open =
              presented.length > 0 &&
              presented.every((k) => k === KEYS.access || k === KEYS.system);
            const before = await state();
            const sentAt = Date.now();
            const reply = expectWellFormed(sent, await send(sent));
            const after = await state();
            if (!open) {
              expect(reply.status, `keys ${JSON.stringify(presented)}: ${reply.text}`).toBe(401);
              expect(codeOf(reply)).toBe('unauthorized');
              expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer/);
              expectUnchanged(before, after, 'a refused key');
              return;
            }
            expect(reply.status, `keys ${JSON.stringify(presented)}: ${reply.text}`).toBe(200);
            if (target.method === 'POST')
              await expectStored(before, after, { id: 'keyed', status }, sentAt);
            else expectUnchanged(before, after, 'a read');
          },
        ),
        budget(),
      );
    },
    timeoutFor(1, 30),
  );
});
