import { hc } from 'hono/client';
import type { App } from '../../../src/http/app.js';

// `presently-client`: the typed clients of presently. REST through Hono's RPC client, typed by
// the service's own routes (the App type, read from the service's sources when this package is
// built: only types come from the server, nothing of it runs in a client), and the socket
// through createPresenceSocket (also alone, for browsers, as `presently-client/socket`).

export * from './socket.js';
export type { App };

/** A REST client whose routes, parameters and answers are typed from the app's own routes. */
export function createRestClient(baseUrl: string, key: string) {
  return hc<App>(baseUrl, { headers: { Authorization: `Bearer ${key}` } });
}

export type RestClient = ReturnType<typeof createRestClient>;
