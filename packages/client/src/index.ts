import { hc } from 'hono/client';
import type { App } from '../http/app.js';

// The typed clients of presently: REST through Hono's RPC client, typed by the app itself, and
// the socket through createPresenceSocket. Only types come from the server: nothing of it runs
// in a client.

export * from './backoff.js';
export * from './presence-state.js';
export * from './protocol.js';
export * from './socket-client.js';
export { socketUrl, type WebSocketConstructor, type WebSocketLike } from './websocket.js';
export type { App };

/** A REST client whose routes, parameters and answers are typed from the app's own routes. */
export function createRestClient(baseUrl: string, key: string) {
  return hc<App>(baseUrl, { headers: { Authorization: `Bearer ${key}` } });
}

export type RestClient = ReturnType<typeof createRestClient>;
