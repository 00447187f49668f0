import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import type { RunningService } from '../helpers/service.js';
import { type Frame, isEvent, openSocket, type TestSocket } from '../helpers/socket.js';
import { waitFor, within } from '../helpers/wait.js';
import { anyCharacter, anyString, pingValue } from './arbitraries.js';
import { budget, timeoutFor } from './budget.js';
import { judgePing, MAX_FRAME_BYTES, parseJson } from './oracle.js';
import { type State, storedState } from './state.js';

// Properties of the socket's frames, over a real service process and real PostgreSQL: whatever
// a client sends, the socket stays open (but for the documented closes: 1009 over 1 MiB, 1007
// for text that is not UTF-8), every refused frame gets an `error` frame with a code, and a
// refused frame stores nothing.

// A long timeout: nobody goes away while the properties run, so the change log moves only
// for pings.
const realtime = useRealtime({ AWAY_TIMEOUT_SECONDS: '3600', LOG_LEVEL: 'info' });
let service: RunningService;
let socket: TestSocket;

/** A user pinged after every case: once it is stored, every ping before it is too. */
const BARRIER = '~barrier';

beforeAll(async () => {
  service = await realtime.start();
  socket = await openSocket(socketUrl(service));
  await socket.next(isEvent('online-users-count'));
  await barrier(socket);
});

afterAll(async () => {
  await socket?.close();
});

// --- Frames and what the README says of them ---------------------------------------------------

type Sent =
  | { kind: 'text'; text: string }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'raw-text'; bytes: Uint8Array };

/** What must follow a frame: one of these error codes, or the ping stored. */
type Expected = { refused: string[] } | { stored: { id: string; status: string } };

/**
 * From the README: a frame that is not JSON text, not `{"event", "data"}`, of an unknown event,
 * or with an invalid ping gets an `error` frame with the REST codes. Where it leaves the code
 * open (binary: not JSON text, or not a frame; `data` missing: not a frame, or not a ping),
 * either passes.
 */
function expectedFor(sent: Sent): Expected {
  // (Raw text is only ever sent broken, and closes the socket: see the 1007 property.)
  if (sent.kind !== 'text') return { refused: ['invalid_frame', 'invalid_json'] };
  // What goes on the wire: UTF-8, a lone surrogate written as U+FFFD.
  const parsed = parseJson(sent.text.toWellFormed());
  if (!parsed.ok) return { refused: ['invalid_json'] };
  const frame = parsed.value as { event?: unknown; data?: unknown };
  if (
    typeof frame !== 'object' ||
    frame === null ||
    Array.isArray(frame) ||
    typeof frame.event !== 'string'
  ) {
    return { refused: ['invalid_frame'] };
  }
  if (frame.event !== 'user-ping') return { refused: ['unknown_event'] };
  const verdict = judgePing(frame.data);
  if (verdict.ok) return { stored: { id: verdict.id, status: verdict.status } };
  return { refused: 'data' in frame ? [verdict.code] : [verdict.code, 'invalid_frame'] };
}

function sendFrame(target: TestSocket, sent: Sent) {
  if (sent.kind === 'text') target.socket.send(sent.text);
  else target.socket.send(sent.bytes, { binary: sent.kind === 'binary' });
}

const json = (value: unknown) => ({ kind: 'text' as const, text: JSON.stringify(value) });

const validPing = fc.record({
  id: fc.oneof(fc.constantFrom('ann', 'bob', 7, 'é😀'), anyString),
  status: fc.constantFrom('available', 'busy'),
});

/** Every kind of frame a client might send, none over the limit, all valid UTF-8 on the wire. */
const anyFrame: fc.Arbitrary<Sent> = fc.oneof(
  // user-ping with any data (often a valid ping), or without data.
  { arbitrary: pingValue.map((data) => json({ event: 'user-ping', data })), weight: 5 },
  { arbitrary: validPing.map((data) => json({ event: 'user-ping', data })), weight: 3 },
  { arbitrary: fc.constant(json({ event: 'user-ping' })), weight: 1 },
  // Wrong event names, and events that are not strings.
  {
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.constantFrom(
            'User-Ping',
            'user-ping ',
            ' user-ping',
            'userPing',
            'user_ping',
            'ping',
            'error',
            'online-users-list',
            'presence-change',
            '',
          ),
          anyString,
          fc.jsonValue({ maxDepth: 1 }).filter((event) => typeof event !== 'string'),
        ),
        validPing,
      )
      .map(([event, data]) => json({ event, data })),
    weight: 2,
  },
  // Any JSON, and any text.
  { arbitrary: fc.jsonValue().map(json), weight: 2 },
  {
    arbitrary: fc
      .string({ unit: anyCharacter, maxLength: 40 })
      .map((text) => ({ kind: 'text' as const, text })),
    weight: 2,
  },
  {
    arbitrary: fc
      .constantFrom(
        '',
        ' ',
        '{',
        '{"event": "user-ping", "data": ',
        'null',
        '[]',
        '"user-ping"',
        '{"event": "user-ping", "data": {"id": 1, "status": "busy"}} x',
        "{'event': 'user-ping'}",
      )
      .map((text) => ({ kind: 'text' as const, text })),
    weight: 1,
  },
  // Deeply nested data or event (up to 8,000 levels fit in 16 KiB), and prototype keys.
  {
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 8_000 }), fc.constantFrom('data', 'id', 'event'))
      .map(([depth, where]) => {
        const nested = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
        const text =
          where === 'data'
            ? `{"event":"user-ping","data":${nested}}`
            : where === 'id'
              ? `{"event":"user-ping","data":{"id":${nested},"status":"busy"}}`
              : `{"event":${nested},"data":{"id":"deep","status":"busy"}}`;
        return { kind: 'text' as const, text };
      }),
    weight: 1,
  },
  {
    arbitrary: fc
      .constantFrom(
        '{"__proto__":{"event":"user-ping","data":{"id":"proto","status":"busy"}}}',
        '{"event":"user-ping","data":{"__proto__":{"id":"proto","status":"busy"}}}',
        '{"event":"user-ping","data":{"id":"dup","status":"busy"},"event":"other"}',
        '{"event":"other","event":"user-ping","data":{"id":"dup","status":"busy"}}',
      )
      .map((text) => ({ kind: 'text' as const, text })),
    weight: 1,
  },
  // Binary frames: random bytes, or a valid ping sent as binary.
  {
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((bytes) => ({ kind: 'binary' as const, bytes })),
    weight: 1,
  },
  {
    arbitrary: validPing.map((data) => ({
      kind: 'binary' as const,
      bytes: new TextEncoder().encode(JSON.stringify({ event: 'user-ping', data })),
    })),
    weight: 1,
  },
);

// --- The database -----------------------------------------------------------------------------

const state = () => storedState(realtime.db);

async function barrierPing(): Promise<number> {
  const row = await realtime.db
    .selectFrom('presently.presence')
    .select('last_ping')
    .where('user_id', '=', BARRIER)
    .executeTakeFirst();
  return row?.last_ping.getTime() ?? 0;
}

/**
 * Pings BARRIER on `target` and waits until it is stored: frames from one socket are stored in
 * order, so every ping sent before it is stored too. Its status never changes: after the
 * first, it is a heartbeat, which logs nothing.
 */
async function barrier(target: TestSocket) {
  const before = await barrierPing();
  // After a burst, the barrier itself may be refused (too_many_frames): it is sent again.
  for (let attempt = 1; ; attempt++) {
    target.send('user-ping', { id: BARRIER, status: 'busy' });
    try {
      await waitFor('the barrier ping', async () => (await barrierPing()) > before, 2_000);
      return;
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

let sentinels = 0;

/** Waits for the error frame of an unknown event sent last: every error before it has come. */
async function settleErrors(target: TestSocket, from: number): Promise<Frame[]> {
  sentinels += 1;
  const name = `sentinel-${sentinels}`;
  target.send(name, null);
  const sentinel = await target.next(
    isEvent(
      'error',
      (data) => typeof data?.message === 'string' && data.message.includes(`"${name}"`),
    ),
    10_000,
    from,
  );
  const end = target.frames.indexOf(sentinel);
  return target.frames.slice(from, end).filter((frame) => frame.event === 'error');
}

/**
 * After the frames, the database holds what the accepted pings say (the last one of a user
 * wins) and nothing else changed: refused frames stored nothing, and every change logged is an
 * accepted ping's.
 */
async function expectStoredOnly(
  before: State,
  after: State,
  accepted: { id: string; status: string }[],
) {
  const expected = new Map<string, string>(before.presence.map((row) => [row.user_id, row.status]));
  for (const ping of accepted) expected.set(ping.id, ping.status);
  const pinged = new Set(accepted.map((ping) => ping.id));
  const got = new Map(after.presence.map((row) => [row.user_id, row.status]));
  expect(got).toEqual(expected);
  const previous = new Map(before.presence.map((row) => [row.user_id, row.last_ping.getTime()]));
  for (const row of after.presence) {
    if (row.user_id === BARRIER || pinged.has(row.user_id)) continue;
    expect(row.last_ping.getTime(), `last ping of ${JSON.stringify(row.user_id)}`).toBe(
      previous.get(row.user_id),
    );
  }
  if (accepted.length === 0) {
    expect(after.log).toEqual(before.log);
    return;
  }
  const { rows } = await sql<{ user_id: string | null }>`
    select user_id from presently.status_changes where position > ${before.log.max ?? '0'}::bigint
  `.execute(realtime.db);
  for (const change of rows)
    expect(pinged.has(change.user_id as string), `a change for ${change.user_id}`).toBe(true);
}

/** Sends `frames` on `target` (open), and checks the errors, the socket and the database. */
async function checkFrames(target: TestSocket, frames: Sent[]) {
  const before = await state();
  const from = target.frames.length;
  const expected = frames.map(expectedFor);
  for (const frame of frames) sendFrame(target, frame);
  const errors = await settleErrors(target, from);
  await barrier(target);
  expect(target.socket.readyState, 'the socket is open').toBe(target.socket.OPEN);
  const refused = expected.flatMap((outcome) => ('refused' in outcome ? [outcome.refused] : []));
  expect(
    errors.map((frame) => frame.data.code),
    'one error frame per refused frame',
  ).toHaveLength(refused.length);
  for (const [index, error] of errors.entries()) {
    expect(refused[index], JSON.stringify(error.data)).toContain(error.data.code);
    expect(typeof error.data.message).toBe('string');
  }
  const accepted = expected.flatMap((outcome) => ('stored' in outcome ? [outcome.stored] : []));
  await expectStoredOnly(before, await state(), accepted);
}

describe('socket frames', () => {
  it(
    'answers every refused frame with an error frame, stays open, and stores only valid pings',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 8 }), async (frames) => {
          await checkFrames(socket, frames);
        }),
        budget(0.5),
      );
    },
    timeoutFor(0.5, 300),
  );

  it(
    'takes or refuses (too_many_frames) every ping of a burst, never losing or inventing one',
    async () => {
      let bursts = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom('available', 'busy'), {
            minLength: 1,
            maxLength: 150,
            size: 'max',
          }),
          async (statuses) => {
            bursts += 1;
            const before = await state();
            const from = socket.frames.length;
            const pings = statuses.map((status, index) => ({
              id: `burst-${bursts}-${index}`,
              status,
            }));
            for (const ping of pings) socket.send('user-ping', ping);
            const errors = await settleErrors(socket, from);
            await barrier(socket);
            expect(socket.socket.readyState).toBe(socket.socket.OPEN);
            for (const error of errors) expect(error.data.code).toBe('too_many_frames');
            // The pings stored are exactly those not refused, each with its own status.
            const after = await state();
            const stored = pings.filter((ping) =>
              after.presence.some((row) => row.user_id === ping.id && row.status === ping.status),
            );
            const burstRows = after.presence.filter((row) =>
              row.user_id.startsWith(`burst-${bursts}-`),
            );
            expect(burstRows).toHaveLength(stored.length);
            expect(stored.length + errors.length).toBe(pings.length);
            await expectStoredOnly(before, after, stored);
          },
        ),
        budget(0.03),
      );
    },
    timeoutFor(0.03, 3_000),
  );

  it(
    'takes frames up to 16 KiB and closes the socket with 1009 for larger ones, storing nothing',
    async () => {
      let target = socket;
      const size = fc.oneof(
        fc.integer({ min: MAX_FRAME_BYTES - 4, max: MAX_FRAME_BYTES + 4 }),
        fc.integer({ min: MAX_FRAME_BYTES - 512, max: MAX_FRAME_BYTES + 512 }),
        fc.constant(2 * 1024 * 1024),
      );
      const shape = fc.constantFrom('valid', 'bad-id', 'whitespace', 'text', 'binary');
      await fc.assert(
        fc.asyncProperty(
          size,
          shape,
          fc.constantFrom('a', 'é', '😀'),
          async (bytes, kind, unit) => {
            if (target.socket.readyState !== target.socket.OPEN) {
              target = await openSocket(socketUrl(service));
              await target.next(isEvent('online-users-count'));
            }
            const frame = frameOfSize(bytes, kind, unit);
            const length =
              frame.kind === 'text' ? Buffer.byteLength(frame.text) : frame.bytes.byteLength;
            expect(length).toBe(bytes);
            if (length <= MAX_FRAME_BYTES) {
              await checkFrames(target, [frame]);
              return;
            }
            const before = await state();
            sendFrame(target, frame);
            expect((await within('the close', target.closed, 5_000)).code).toBe(1009);
            const witness = await openSocket(socketUrl(service));
            await barrier(witness);
            await witness.close();
            await expectStoredOnly(before, await state(), []);
          },
        ),
        budget(0.2),
      );
      if (target !== socket) await target.close();
    },
    timeoutFor(0.2, 500),
  );

  it(
    'closes the socket with 1007 for a text frame that is not UTF-8, storing nothing',
    async () => {
      const broken = fc.constantFrom(
        [0xff],
        [0xc0, 0x80],
        [0x80],
        [0xed, 0xa0, 0x80],
        [0xf0, 0x9f, 0x98],
        [0xf4, 0x90, 0x80, 0x80],
        [0xe2, 0x82],
      );
      await fc.assert(
        fc.asyncProperty(validPing, broken, fc.nat(), async (ping, bad, at) => {
          const text = new TextEncoder().encode(JSON.stringify({ event: 'user-ping', data: ping }));
          const cut = at % (text.length + 1);
          const bytes = Uint8Array.from([...text.slice(0, cut), ...bad, ...text.slice(cut)]);
          const target = await openSocket(socketUrl(service));
          await target.next(isEvent('online-users-count'));
          const before = await state();
          sendFrame(target, { kind: 'raw-text', bytes });
          expect((await within('the close', target.closed, 5_000)).code).toBe(1007);
          const witness = await openSocket(socketUrl(service));
          await barrier(witness);
          await witness.close();
          await expectStoredOnly(before, await state(), []);
        }),
        budget(0.1),
      );
    },
    timeoutFor(0.1, 500),
  );
});

/** A frame of exactly `bytes` bytes, of the shape told. */
function frameOfSize(bytes: number, kind: string, unit: string): Sent {
  if (kind === 'binary') return { kind: 'binary', bytes: new Uint8Array(bytes).fill(0x7b) };
  const shell =
    kind === 'valid'
      ? (fill: string) =>
          `{"event":"user-ping","data":{"id":"big","status":"busy","pad":"${fill}"}}`
      : kind === 'bad-id'
        ? (fill: string) => `{"event":"user-ping","data":{"id":"big${fill}","status":"busy"}}`
        : kind === 'whitespace'
          ? (fill: string) =>
              `{"event":"user-ping","data":{"id":"big","status":"available"}}${fill}`
          : (fill: string) => `not json ${fill}`;
  const character = kind === 'whitespace' ? ' ' : unit;
  const base = Buffer.byteLength(shell(''));
  let fill = character.repeat(
    Math.max(0, Math.floor((bytes - base) / Buffer.byteLength(character))),
  );
  fill += (kind === 'whitespace' ? ' ' : 'a').repeat(
    Math.max(0, bytes - base - Buffer.byteLength(fill)),
  );
  return { kind: 'text', text: shell(fill) };
}
