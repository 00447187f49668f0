// Errors that mean "the database cannot be reached right now", as opposed to a query that is
// wrong. The first kind is answered 503 with Retry-After; the second is a bug.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

// SQLSTATE classes and codes: 08 connection exception, 57P01-57P03 shutdown and start-up,
// 53300 too many connections, 25006 read-only transaction: behind a failover proxy, a
// connection made just before its health check noticed a switchover can land on the demoted
// primary, now a standby, for a moment (see isOnStandby). Not 57014: a statement the server
// cancelled came from a server that answers (see isStatementTimeout).
const READ_ONLY = '25006';
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', READ_ONLY]);

/** A write refused by a standby: the connection leads to the wrong server, and must go. */
export function isOnStandby(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === READ_ONLY;
}

/** SQLSTATE 57014 query_canceled: here, a statement that ran past statement_timeout. */
export function isStatementTimeout(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === '57014';
}

const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection terminated due to connection timeout',
  'Query read timeout',
];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08')) {
      return true;
    }
  }
  if (UNAVAILABLE_MESSAGES.some((message) => error.message.includes(message))) return true;
  return error instanceof AggregateError && error.errors.some(isDatabaseUnavailable);
}
