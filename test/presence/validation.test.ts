import { describe, expect, it } from 'vitest';
import {
  isUserId,
  parseListFilter,
  parsePing,
  parseUserId,
} from '../../src/presence/validation.js';

// Ids are shown to people (lists, the dashboard, CSV): one that is invisible, or that changes
// the direction of the text around it, could pass for another user. The rule, as the README
// states it: 1 to 128 characters of valid Unicode, none of them a control character (Cc), a
// format character (Cf: soft hyphen, zero-width and direction marks, BOM...) or a line or
// paragraph separator (Zl, Zp), and not only blanks (whitespace, or the Hangul and Braille
// fillers that render as nothing).

const refused: [string, string][] = [
  ['a C1 control character', 'a\u0085b'],
  ['a C1 control character (CSI)', '\u009b31m'],
  ['a right-to-left override', 'ad\u202emin'],
  ['a left-to-right mark', '\u200ealice'],
  ['a zero-width space', 'ali\u200bce'],
  ['a zero-width joiner', 'a\u200db'],
  ['a byte order mark', '\ufeffbob'],
  ['a soft hyphen alone', '\u00ad'],
  ['an invisible separator', '1\u2063000'],
  ['a language tag', 'bob\u{e0041}'],
  ['a line separator', 'a\u2028b'],
  ['a paragraph separator', 'a\u2029b'],
  ['separators and an override only', '\u2028\u202e'],
  ['one space', ' '],
  ['spaces and a tab', '  \t'],
  ['no-break and ideographic spaces', '\u00a0\u3000'],
  ['a Hangul filler', '\u3164'],
  ['Braille blanks', '\u2800\u2800'],
];

const taken = ['alice', 'ad min', ' bob', 'José', '日本語', 'ℵ₀', '😀', 'é', '-1', 'a\u0301'];

describe('user ids', () => {
  it.each(refused)('refuses %s', (_name, id) => {
    expect(() => parseUserId(id)).toThrow(expect.objectContaining({ code: 'invalid_id' }));
    expect(() => parsePing({ id, status: 'busy' })).toThrow(
      expect.objectContaining({ code: 'invalid_id', status: 400 }),
    );
  });

  it.each(taken)('takes %j', (id) => {
    expect(parseUserId(id)).toBe(id);
    expect(parsePing({ id, status: 'busy' })).toEqual({ id, status: 'busy' });
  });
});

// The messages are the API's: a client shows them, so each rule says its own.
const ID_RULE = 'id must be a string of 1 to 128 characters or an integer';
const UNSAFE_ID_RULE =
  'integer ids must be between -9007199254740991 and 9007199254740991; send larger ones as strings';
const INVISIBLE_RULE =
  'id must not contain control, format (such as zero-width or direction) or separator characters';
const STATUS_RULE = 'status must be "available" or "busy" (away is derived from time, never set)';

describe('what a refused ping is told', () => {
  it.each([
    [
      'an empty id',
      { id: '', status: 'busy' },
      'invalid_id',
      `${ID_RULE}; id must not be only whitespace`,
    ],
    ['129 characters', { id: '😀'.repeat(129), status: 'busy' }, 'invalid_id', ID_RULE],
    ['a fraction', { id: 1.5, status: 'busy' }, 'invalid_id', ID_RULE],
    ['a boolean id', { id: true, status: 'busy' }, 'invalid_id', ID_RULE],
    ['no id', { status: 'busy' }, 'invalid_id', 'id is required'],
    ['an unsafe integer', { id: 2 ** 53, status: 'busy' }, 'invalid_id', UNSAFE_ID_RULE],
    [
      'a lone surrogate',
      { id: 'a\ud800', status: 'busy' },
      'invalid_id',
      'id must be valid Unicode (no lone surrogates)',
    ],
    ['a zero-width space', { id: 'a\u200bb', status: 'busy' }, 'invalid_id', INVISIBLE_RULE],
    ['blanks', { id: ' \u3164', status: 'busy' }, 'invalid_id', 'id must not be only whitespace'],
    [
      'a line separator alone',
      { id: '\u2028', status: 'busy' },
      'invalid_id',
      `${INVISIBLE_RULE}; id must not be only whitespace`,
    ],
    ['status away', { id: 'a', status: 'away' }, 'invalid_status', STATUS_RULE],
    ['no status', { id: 'a' }, 'invalid_status', STATUS_RULE],
    ['both wrong', { id: false, status: 1 }, 'invalid_body', `${ID_RULE}; ${STATUS_RULE}`],
    [
      'not an object',
      'busy',
      'invalid_body',
      'the body must be a JSON object {"id": ..., "status": ...}',
    ],
  ])('%s: %s', (_name, input, code, message) => {
    expect(() => parsePing(input)).toThrow(expect.objectContaining({ code, status: 400, message }));
  });

  it('takes 128 characters, counted as characters, and integers as their decimal string', () => {
    const long = '😀'.repeat(128);
    expect(parsePing({ id: long, status: 'available' })).toEqual({ id: long, status: 'available' });
    expect(parsePing({ id: 42, status: 'busy' })).toEqual({ id: '42', status: 'busy' });
    expect(parsePing({ id: -(2 ** 53 - 1), status: 'busy' }).id).toBe('-9007199254740991');
  });
});

describe('ids from a path or a query', () => {
  it('follow the same rules, and say each that is broken', () => {
    expect(isUserId('alice')).toBe(true);
    expect(isUserId('')).toBe(false);
    expect(isUserId('a\u200bb')).toBe(false);
    expect(() => parseUserId('\u2028')).toThrow(
      expect.objectContaining({
        code: 'invalid_id',
        status: 400,
        message: `${INVISIBLE_RULE}; id must not be only whitespace`,
      }),
    );
  });
});

describe('list filters', () => {
  it('are a status or all', () => {
    for (const filter of ['available', 'busy', 'away', 'all']) {
      expect(parseListFilter(filter)).toBe(filter);
    }
    expect(() => parseListFilter('offline')).toThrow(
      expect.objectContaining({
        code: 'invalid_status',
        status: 400,
        message: 'status must be one of available, busy, away, all',
      }),
    );
  });
});
