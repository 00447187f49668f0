import { isDatabaseUnavailable, isStatementTimeout } from '../db/errors.js';
import { AppError } from '../errors.js';

// The error mapping every edge shares (HTTP routes and both socket transports): anything thrown
// becomes an AppError, with a code, a status and a message fit for a client.

/** After a report that took too long: the same report is no cheaper a moment later. */
const REPORT_RETRY_AFTER_SECONDS = 10;

/**
 * The one place where anything thrown becomes an answer. AppErrors speak for themselves;
 * an unreachable database is a 503; a statement the server cancelled after its timeout is a 503
 * too, said as it is: for a report (`report`, set by the report gate), the report was too
 * expensive; elsewhere, the database was too slow. Anything else is logged and reported without
 * details.
 */
export function toAppError(error: unknown, context: { report?: boolean } = {}): AppError {
  if (error instanceof AppError) return error;
  if (isStatementTimeout(error)) {
    return context.report
      ? new AppError(
          'report_too_expensive',
          503,
          'the report took too long; ask for a shorter period or a smaller page',
          REPORT_RETRY_AFTER_SECONDS,
        )
      : new AppError('database_unavailable', 503, 'the database took too long; retry shortly');
  }
  if (isDatabaseUnavailable(error)) {
    return new AppError('database_unavailable', 503, 'the database is unreachable; retry shortly');
  }
  return new AppError('internal', 500, 'internal error');
}
