// Query-string cases shared by the tests of the paged routes (history, reports).

/** A cursor as the routes encode one: base64url JSON. */
export const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** [query, code] cases: the queries as given, or each value as `name=value`. */
export const refusals = (code: string, values: string[], name?: string): [string, string][] =>
  values.map((value) => [name ? `${name}=${encodeURIComponent(value)}` : value, code]);
