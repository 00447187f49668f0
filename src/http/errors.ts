import type { Context } from 'hono';
import { isDatabaseUnavailable, isStatementTimeout } from '../db/errors.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { requestLogger } from './request-context.js';

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Seconds a client should wait before retrying while the database is unreachable. */
const RETRY_AFTER_SECONDS = 2;
/** After a report that took too long: the same report is no cheaper a moment later. */
const REPORT_RETRY_AFTER_SECONDS = 10;

/**
 * The one place where anything thrown becomes an HTTP answer. AppErrors speak for themselves;
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

export function errorResponse(c: Context, error: AppError): Response {
  if (error.status === 401) c.header('WWW-Authenticate', 'Bearer');
  if (error.status === 503) {
    c.header('Retry-After', String(error.retryAfterSeconds ?? RETRY_AFTER_SECONDS));
  }
  if (error.status === 429) c.header('Retry-After', String(error.retryAfterSeconds ?? 1));
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  return c.json(body, error.status);
}

export function onError(appLogger: Logger) {
  return (error: unknown, c: Context): Response => {
    const logger = requestLogger(c, appLogger);
    const appError = toAppError(error, { report: c.get('report') === true });
    const request = { method: c.req.method, path: c.req.path };
    if (appError.status === 503) {
      // Expected while the database is away or busy, and repeated for every request meanwhile.
      const reason = (error as Error).message;
      const what =
        appError.code === 'database_unavailable' ? 'database unavailable' : appError.code;
      logger.warn({ ...request, code: appError.code, reason }, what);
    } else if (appError.status >= 500) {
      logger.error({ ...request, err: error }, 'request failed');
    }
    return errorResponse(c, appError);
  };
}

export function notFound(c: Context): Response {
  return errorResponse(c, new AppError('not_found', 404, `no route ${c.req.method} ${c.req.path}`));
}

/** For a known path asked with a method it does not take. */
export function methodNotAllowed(allow: string) {
  return (c: Context): Response => {
    c.header('Allow', allow);
    const message = `${c.req.method} is not allowed on ${c.req.path}; use ${allow}`;
    return errorResponse(c, new AppError('method_not_allowed', 405, message));
  };
}
