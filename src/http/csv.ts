/**
 * RFC 4180 CSV: a header line, then one line per row, CRLF line ends. Fields holding a comma, a
 * quote or a line break are quoted, quotes doubled.
 *
 * Reports hold client-chosen text (user ids), and spreadsheets run a field that starts with
 * `=`, `+`, `-`, `@`, a tab or a carriage return as a formula. As OWASP advises ("CSV
 * Injection"), such a field is quoted and a single quote put before it, so that it is read as
 * text. Numbers are written as they are: they are ours, and `-1.5` is a number, not a formula.
 */
export function toCsv<T extends object>(columns: (keyof T & string)[], rows: T[]): string {
  const line = (fields: unknown[]) => `${fields.map(csvField).join(',')}\r\n`;
  return line(columns) + rows.map((row) => line(columns.map((column) => row[column]))).join('');
}

const FORMULA_START = new Set(['=', '+', '-', '@', '\t', '\r']);

function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const text = String(value);
  if (FORMULA_START.has(text.charAt(0))) return quoted(`'${text}`);
  return /[",\r\n]/.test(text) ? quoted(text) : text;
}

const quoted = (text: string) => `"${text.replaceAll('"', '""')}"`;
