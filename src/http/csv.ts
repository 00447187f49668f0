/**
 * RFC 4180 CSV: a header line, then one line per row, CRLF line ends. Fields holding a comma, a
 * quote or a line break are quoted, quotes doubled.
 */
export function toCsv<T extends object>(columns: (keyof T & string)[], rows: T[]): string {
  const line = (fields: unknown[]) => `${fields.map(csvField).join(',')}\r\n`;
  return line(columns) + rows.map((row) => line(columns.map((column) => row[column]))).join('');
}

function csvField(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
