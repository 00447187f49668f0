import { describe, expect, it } from 'vitest';
import { parsePing, parseUserId } from '../../src/presence/validation.js';

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
