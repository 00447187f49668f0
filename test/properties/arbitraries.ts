import fc from 'fast-check';

// Generators shared by the REST and socket properties: ids, statuses and ping bodies of every
// shape, from plausible to hostile.

export const SQL_STRINGS = [
  "'; drop table presently.presence; --",
  '1 or 1=1',
  "1' or '1'='1",
  "x'); truncate presently.status_changes; --",
  '"; select pg_sleep(10); --',
  '1; delete from presently.presence',
  "' union select user_id, status, last_ping from presently.presence --",
  '$$; drop schema presently cascade; $$',
  '\\x00',
  '%',
  '_',
  '\\',
  "''",
  'null',
  'NULL',
];

/** Users stored before the properties run, so that lookups find someone sometimes. */
export const KNOWN_IDS = [
  'alice',
  '1',
  '42',
  'list',
  'history',
  'status',
  'a b',
  'x/y',
  '%41',
  'é😀',
  "'; drop table presently.presence; --",
  '1 or 1=1',
];

const loneSurrogate = fc
  .integer({ min: 0xd800, max: 0xdfff })
  .map((unit) => String.fromCharCode(unit));
const control = fc
  .oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f }))
  .map((code) => String.fromCharCode(code));
/** Characters of every kind: ASCII, any code point, controls, lone surrogates, odd ones. */
export const anyCharacter = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }), weight: 2 },
  { arbitrary: control, weight: 1 },
  { arbitrary: loneSurrogate, weight: 1 },
  {
    arbitrary: fc.constantFrom(
      '\u00a0',
      '\u200b',
      '\u2028',
      '\u2029',
      '\ufeff',
      '\ufffd',
      '\u{10ffff}',
    ),
    weight: 1,
  },
  { arbitrary: unicodeCategories(), weight: 2 },
);

/**
 * One character from each Unicode category that could make an id look like another: format
 * (Cf), separators (Zs, Zl, Zp), blanks that are letters or symbols, combining marks (Mn,
 * allowed), private use (Co, allowed).
 */
function unicodeCategories(): fc.Arbitrary<string> {
  return fc.constantFrom(
    // Cf: soft hyphen, Arabic letter mark, zero-width space, joiners, direction marks,
    // embeddings and overrides, isolates, invisible operators, BOM, interlinear annotation, a tag.
    '\u00ad',
    '\u061c',
    '\u200b',
    '\u200c',
    '\u200d',
    '\u200e',
    '\u200f',
    '\u202a',
    '\u202e',
    '\u2066',
    '\u2069',
    '\u2062',
    '\u2064',
    '\ufeff',
    '\ufff9',
    '\u{e0041}',
    // Zs, Zl, Zp.
    ' ',
    '\u1680',
    '\u2003',
    '\u202f',
    '\u3000',
    '\u2028',
    '\u2029',
    // Fillers that render as nothing (Lo, So).
    '\u3164',
    '\u115f',
    '\u2800',
    // Mn and Co: allowed.
    '\u0301',
    '\ue000',
  );
}

/** Strings of 0 to 140 characters: every rule on ids, and the boundary of 128. */
export const anyString = fc.oneof(
  { arbitrary: fc.string({ unit: anyCharacter, maxLength: 20 }), weight: 5 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }), weight: 2 },
  {
    // Around 128 characters, counted as code points (astral ones are two UTF-16 units).
    arbitrary: fc
      .tuple(
        fc.integer({ min: 120, max: 132 }),
        fc.constantFrom('x', 'é', '😀', '\u0000', '\ud800'),
        fc.nat(131),
      )
      .map(([length, odd, at]) => {
        const characters = Array.from({ length }, (_, i) => (i === at ? odd : i % 2 ? '😀' : 'a'));
        return characters.join('');
      }),
    weight: 2,
  },
  { arbitrary: fc.constantFrom(...SQL_STRINGS), weight: 2 },
  { arbitrary: fc.constantFrom(...KNOWN_IDS), weight: 2 },
  { arbitrary: fc.constantFrom('', ' ', '0', '-0', '01', '1.0', '9007199254740993'), weight: 1 },
  // Only blanks, or blanks around a visible character.
  {
    arbitrary: fc
      .tuple(
        fc.string({ unit: fc.constantFrom(' ', '\t', '\u00a0', '\u3000', '\u3164'), maxLength: 6 }),
        fc.constantFrom('', 'x', '\u200b'),
      )
      .map(([blanks, middle]) => `${blanks}${middle}${blanks}`),
    weight: 1,
  },
);

/** Numbers an id might be: exact integers, the edges of 2^53, fractions, huge and tiny ones. */
export const anyNumber = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    2 ** 53,
    -(2 ** 53),
    2 ** 53 + 2,
    1e21,
    1e308,
    -1e308,
    5e-324,
    0.5,
    1.5,
    -1.5,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

export const anyStatus = fc.oneof(
  { arbitrary: fc.constantFrom('available', 'busy'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      'away',
      'all',
      'BUSY',
      'Available',
      ' busy',
      'busy ',
      'busy\u0000',
      '',
    ),
    weight: 2,
  },
  { arbitrary: fc.constantFrom(...SQL_STRINGS), weight: 1 },
  { arbitrary: anyString, weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 },
);

export const anyId = fc.oneof(
  { arbitrary: anyString, weight: 6 },
  { arbitrary: anyNumber, weight: 3 },
  { arbitrary: fc.constantFrom(true, false, null), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
);

/** `{"id", "status"}` with either missing, and extra fields now and then. */
export const pingObject = fc
  .tuple(
    fc.record({ id: anyId, status: anyStatus }, { requiredKeys: [] }),
    fc.option(
      fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      {
        freq: 4,
      },
    ),
  )
  .map(([ping, extra]) => ({ ...extra, ...ping }));

/** Any body a client might send as a ping, as a JSON value. */
export const pingValue = fc.oneof(
  { arbitrary: pingObject, weight: 4 },
  { arbitrary: fc.jsonValue(), weight: 1 },
  { arbitrary: fc.jsonValue({ stringUnit: 'binary' }), weight: 1 },
);

/** Printable ASCII, the only characters a header value may hold here. */
export const headerText = (maxLength = 40) => fc.string({ unit: 'grapheme-ascii', maxLength });

export const anyContentType = fc.option(
  fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      'application/xml',
      '*/*',
      '',
    ),
    headerText(),
  ),
);
