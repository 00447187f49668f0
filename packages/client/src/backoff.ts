export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  initialMs?: number;
  /** No delay exceeds this, jitter included. */
  maxMs?: number;
  factor?: number;
  /** A number in [0, 1): Math.random unless a test wants the delays fixed. */
  random?: () => number;
}

const DEFAULTS = { initialMs: 500, maxMs: 30_000, factor: 2 };

/**
 * The delay before retry number `attempt` (0 for the first): exponential and capped, with
 * "equal jitter": half of it fixed, half random. Clients dropped together (a server restart)
 * then spread their returns instead of all coming back at once, and none retries at once.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { initialMs, maxMs, factor } = { ...DEFAULTS, ...options };
  const random = options.random ?? Math.random;
  // The exponent is bounded so that a long outage never overflows to Infinity.
  const ceiling = Math.min(maxMs, initialMs * factor ** Math.min(attempt, 64));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
