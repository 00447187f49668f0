import type { Context } from 'hono';
import { toAppError } from '../edge/errors.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { requestLogger } from './request-context.js';

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Seconds a client should wait before retrying while the database is unreachable. */
const RETRY_AFTER_SECONDS = 2;

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
