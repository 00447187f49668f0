import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../logger.js';
import { nodeResponse } from './response-headers.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** This request's id, also sent back as X-Request-Id; on every line logged about it. */
    requestId: string;
  }
}

export const REQUEST_ID_HEADER = 'X-Request-Id';

// An id from a proxy or client is kept, so one id follows a request across services, but only a
// short, plain one: it is written into every log line and echoed in a header.
const SANE_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The id of a request: the one it came with if it is plain and short, a new one otherwise. */
export const requestIdOf = (incoming: string | undefined): string =>
  incoming !== undefined && SANE_ID.test(incoming) ? incoming : randomUUID();

/** Gives every request an id. Runs first, before anything logs. */
export function requestContext(): MiddlewareHandler {
  return async (c, next) => {
    const requestId = requestIdOf(c.req.header(REQUEST_ID_HEADER));
    c.set('requestId', requestId);
    // On Node's response, every answer carries it, the error handler's included.
    const outgoing = nodeResponse(c);
    if (outgoing) {
      outgoing.setHeader(REQUEST_ID_HEADER, requestId);
      return next();
    }
    c.header(REQUEST_ID_HEADER, requestId);
    await next();
    // An error answer is built afresh by the error handler: make sure it carries the id too.
    if (!c.res.headers.has(REQUEST_ID_HEADER)) {
      try {
        c.res.headers.set(REQUEST_ID_HEADER, requestId);
      } catch {
        // Some answers (a socket's upgrade) have immutable headers and nothing to add to.
      }
    }
  };
}

/**
 * The logger for a line about this request: `logger` with the request's id. Made when a line is
 * written, not for every request: a heartbeat answered well logs nothing.
 */
export function requestLogger(c: Context, logger: Logger): Logger {
  const requestId = c.get('requestId');
  return requestId === undefined ? logger : logger.child({ requestId });
}

const SECRET_PARAMETER = /key|token|secret|auth|pass/i;

/**
 * The query string as it may be logged: without `key`, nor any parameter whose name suggests a
 * secret (a client may send its key under a wrong name). Undefined when nothing is left.
 */
export function loggableQuery(url: string): string | undefined {
  const params = new URL(url).searchParams;
  for (const name of [...new Set(params.keys())]) {
    if (SECRET_PARAMETER.test(name)) params.delete(name);
  }
  const query = params.toString();
  return query === '' ? undefined : query;
}
