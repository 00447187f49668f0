import { describe, expect, it } from 'vitest';
import {
  MAX_BULK_PINGS,
  parsePing,
  parsePings,
  parsePrefix,
  parseSessionName,
  parseUserIds,
  prefixUpperBound,
} from '../../src/presence/validation.js';

// The rules of what a ping may carry beyond its id and status (a session, its timeout), of the
// bulk bodies ({"users": [...]}, {"pings": [...]}) and of list prefixes. The messages are the
// API's: a client shows them, so each is checked word for word.

const SESSION_RULE = 'session must be a string of 1 to 128 characters without control characters';
const TIMEOUT_RULE = 'timeout must be a number of seconds from 1 to 86400';
const USER_IDS_SHAPE = 'the body must be a JSON object {"users": [id, ...]}';
const PINGS_SHAPE = 'the body must be a JSON object {"pings": [{"id": ..., "status": ...}, ...]}';
const PREFIX_RULE =
  'prefix must be 1 to 128 characters of valid Unicode, without control, format or separator characters';
const ID_RULE = 'id must be a string of 1 to 128 characters or an integer';

const refusal = (code: string, message: string) =>
  expect.objectContaining({ code, status: 400, message });

describe('a ping with a session and a timeout', () => {
  it('keeps both, and nothing else', () => {
    const ping = parsePing({ id: 'a', status: 'busy', session: 'phone', timeout: 30.5, x: 1 });
    expect(ping).toStrictEqual({ id: 'a', status: 'busy', session: 'phone', timeout: 30.5 });
  });

  it('has no session key for "default" or none, and no timeout key without one', () => {
    for (const input of [
      { id: 'a', status: 'busy' },
      { id: 'a', status: 'busy', session: 'default' },
    ]) {
      const ping = parsePing(input);
      expect(Object.keys(ping)).toEqual(['id', 'status']);
    }
    expect(parsePing({ id: 'a', status: 'busy', timeout: 1 })).toStrictEqual({
      id: 'a',
      status: 'busy',
      timeout: 1,
    });
  });

  it('takes a session of 1 to 128 characters, counted as characters', () => {
    for (const session of ['p', 'x'.repeat(128), '😀'.repeat(128), 'Ana’s phone']) {
      expect(parsePing({ id: 'a', status: 'busy', session }).session).toBe(session);
      expect(parseSessionName(session)).toBe(session);
    }
    expect(parseSessionName('default')).toBeUndefined();
  });

  it.each([
    ['empty', ''],
    ['129 characters', 'x'.repeat(129)],
    ['129 characters beyond the BMP', '😀'.repeat(129)],
    ['a control character', 'ph\none'],
    ['a number', 7],
    ['null', null],
  ])('refuses a session that is %s, saying the rule', (_name, session) => {
    expect(() => parsePing({ id: 'a', status: 'busy', session })).toThrow(
      refusal('invalid_session', SESSION_RULE),
    );
  });

  it('refuses a session that is not valid Unicode, saying so', () => {
    expect(() => parsePing({ id: 'a', status: 'busy', session: 'a\udc00' })).toThrow(
      refusal('invalid_session', 'session must be valid Unicode'),
    );
    expect(() => parseSessionName('a\udc00')).toThrow(refusal('invalid_session', SESSION_RULE));
  });

  it('takes a timeout from 1 to 86400 seconds, and refuses others', () => {
    for (const timeout of [1, 1.5, 86_400]) {
      expect(parsePing({ id: 'a', status: 'busy', timeout }).timeout).toBe(timeout);
    }
    for (const timeout of [0.999, 0, -1, 86_400.5, '30', null, Number.NaN]) {
      expect(() => parsePing({ id: 'a', status: 'busy', timeout })).toThrow(
        refusal('invalid_timeout', TIMEOUT_RULE),
      );
    }
  });

  it('is invalid_body when two fields are wrong, with both rules', () => {
    expect(() => parsePing({ id: 'a', status: 'busy', session: '', timeout: 0 })).toThrow(
      refusal('invalid_body', `${SESSION_RULE}; ${TIMEOUT_RULE}`),
    );
  });
});

describe('{"users": [id, ...]}', () => {
  it.each([
    ['an array', ['a']],
    ['null', null],
    ['a string', 'a'],
    ['an object without users', { ids: ['a'] }],
    ['users that is not an array', { users: 'a' }],
    ['users that is an object', { users: { 0: 'a', length: 1 } }],
  ])('refuses %s as invalid_body, saying the shape', (_name, body) => {
    expect(() => parseUserIds(body, 10)).toThrow(refusal('invalid_body', USER_IDS_SHAPE));
  });

  it('holds 1 to max ids, and says how many it got', () => {
    expect(() => parseUserIds({ users: [] }, 3)).toThrow(
      refusal('invalid_body', 'users must hold 1 to 3 ids, not 0'),
    );
    expect(() => parseUserIds({ users: ['a', 'b', 'c', 'd'] }, 3)).toThrow(
      refusal('invalid_body', 'users must hold 1 to 3 ids, not 4'),
    );
    expect(parseUserIds({ users: ['a', 2, 'a'] }, 3)).toEqual(['a', '2', 'a']);
    expect(parseUserIds({ users: ['a'] }, 1)).toEqual(['a']);
  });

  it('names the first bad id by its index, each rule once', () => {
    expect(() => parseUserIds({ users: ['a', '', 1.5] }, 10)).toThrow(
      refusal('invalid_id', `users[1]: ${ID_RULE}; id must not be only whitespace`),
    );
    expect(() => parseUserIds({ users: ['a', 'b', true] }, 10)).toThrow(
      refusal('invalid_id', `users[2]: ${ID_RULE}`),
    );
  });
});

describe('{"pings": [ping, ...]}', () => {
  it.each([
    ['an array', [{ id: 'a', status: 'busy' }]],
    ['null', null],
    ['an object without pings', { ping: { id: 'a', status: 'busy' } }],
    ['pings that is an object', { pings: { id: 'a', status: 'busy' } }],
  ])('refuses %s as invalid_body, saying the shape', (_name, body) => {
    expect(() => parsePings(body)).toThrow(refusal('invalid_body', PINGS_SHAPE));
  });

  it(`holds 1 to ${MAX_BULK_PINGS} pings, and says how many it got`, () => {
    const ping = { id: 'a', status: 'busy' };
    expect(() => parsePings({ pings: [] })).toThrow(
      refusal('invalid_body', 'pings must hold 1 to 1000 pings, not 0'),
    );
    expect(() => parsePings({ pings: Array(1_001).fill(ping) })).toThrow(
      refusal('invalid_body', 'pings must hold 1 to 1000 pings, not 1001'),
    );
    expect(parsePings({ pings: Array(1_000).fill(ping) })).toHaveLength(1_000);
  });

  it('keeps each ping as parsePing reads it, in order', () => {
    const pings = [
      { id: 1, status: 'busy', session: 'default' },
      { id: 'b', status: 'available', session: 'phone', timeout: 9 },
    ];
    expect(parsePings({ pings })).toStrictEqual([
      { id: '1', status: 'busy' },
      { id: 'b', status: 'available', session: 'phone', timeout: 9 },
    ]);
  });

  it("refuses the first bad ping with its own code and index, and the ping's message", () => {
    const pings = [
      { id: 'a', status: 'busy' },
      { id: 'b', status: 'busy', timeout: 0 },
      { id: 'c', status: 'away' },
    ];
    expect(() => parsePings({ pings })).toThrow(
      refusal('invalid_timeout', `pings[1]: ${TIMEOUT_RULE}`),
    );
    expect(() => parsePings({ pings: [7] })).toThrow(
      refusal(
        'invalid_body',
        'pings[0]: the body must be a JSON object {"id": ..., "status": ...}',
      ),
    );
  });
});

describe('list prefixes', () => {
  it('are 1 to 128 characters, counted as characters, blanks allowed', () => {
    for (const prefix of ['a', ' ', 'x'.repeat(128), '😀'.repeat(128)]) {
      expect(parsePrefix(prefix)).toBe(prefix);
    }
  });

  it.each([
    ['empty', ''],
    ['129 characters', 'x'.repeat(129)],
    ['129 characters beyond the BMP', '😀'.repeat(129)],
    ['a lone surrogate', 'a\ud800'],
    ['a zero-width space', 'a\u200b'],
    ['a control character', 'a\u0001'],
  ])('refuse %s, saying the rule', (_name, prefix) => {
    expect(() => parsePrefix(prefix)).toThrow(refusal('invalid_prefix', PREFIX_RULE));
  });
});

describe('the upper bound of a prefix (ids that start with it are those below it)', () => {
  it.each([
    ['a', 'b'],
    ['ab', 'ac'],
    ['a\u{10FFFF}', 'b'],
    ['a\u{10FFFF}\u{10FFFF}', 'b'],
    ['a😀', 'a😁'],
    ['\ud7ff', '\ue000'],
    ['a\ud7fe', 'a\ud7ff'],
    ['\uffff', '\u{10000}'],
  ])('of %j is %j', (prefix, upper) => {
    expect(prefixUpperBound(prefix)).toBe(upper);
  });

  it('is none for a prefix of U+10FFFF only, or an empty one', () => {
    expect(prefixUpperBound('\u{10FFFF}')).toBeUndefined();
    expect(prefixUpperBound('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
    expect(prefixUpperBound('')).toBeUndefined();
  });

  it('is above every id that starts with the prefix and below every other above it', () => {
    const prefix = 'ab\ud7ff';
    const upper = prefixUpperBound(prefix) as string;
    const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    for (const id of [prefix, `${prefix}\u{10FFFF}`, `${prefix}z`]) {
      expect(byCodePoint(id, upper)).toBeLessThan(0);
    }
    for (const id of ['ab\ue000', 'ac', 'ab\u{10000}']) {
      expect(byCodePoint(id, upper)).toBeGreaterThanOrEqual(0);
    }
  });
});
