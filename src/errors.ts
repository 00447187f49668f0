/**
 * The one error type that reaches clients: a stable code, an HTTP status and a message written
 * for the caller. Anything else thrown is an internal error and is reported without details.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 426 | 429 | 500 | 503,
    message: string,
    /** For a 503 or 429: seconds the client should wait before retrying (else a default). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AppError';
  }
}
