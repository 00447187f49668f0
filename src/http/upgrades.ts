import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

/**
 * A WebSocket upgrade reaches the app through the server's upgrade path, which drops the body of
 * any answer but a socket (and always says GET). A REST route asked for an upgrade would run and
 * its answer be lost, so only the socket path may be asked: anything else is refused unrun.
 */
export function refuseUpgradesExcept(socketPath: string): MiddlewareHandler {
  return async (c, next) => {
    const upgrade = c.req.header('Upgrade');
    if (
      upgrade !== undefined &&
      upgrade.toLowerCase() === 'websocket' &&
      c.req.path !== socketPath
    ) {
      throw new AppError(
        'upgrade_not_supported',
        400,
        `only ${socketPath} accepts WebSocket upgrades`,
      );
    }
    await next();
  };
}
