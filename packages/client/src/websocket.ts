// The little of the WebSocket API the client uses, so that it runs on the browser's WebSocket,
// Node's global one (Node 22 and later) and the `ws` package alike, without DOM or Node types.

/**
 * Handlers are declared as methods, whose parameters TypeScript compares both ways: the DOM's
 * and `ws`'s handlers, which take richer events, then fit.
 */
interface Handler<E> {
  bivariant(event: E): void;
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown>['bivariant'] | null;
  onmessage: Handler<{ data: unknown }>['bivariant'] | null;
  onerror: Handler<unknown>['bivariant'] | null;
  onclose: Handler<{ code: number }>['bivariant'] | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export function globalWebSocket(): WebSocketConstructor {
  const Socket = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Socket) {
    throw new Error(
      'no global WebSocket here (Node 20): pass one, e.g. createPresenceSocket({ WebSocket, ... }) with WebSocket from the ws package',
    );
  }
  return Socket;
}

/**
 * The socket's address: `?key=` (browsers cannot send headers), `since` when resuming, and
 * `users=none` for a socket that follows nobody or a list (sent as a `subscribe` once open).
 */
export function socketUrl(
  base: string,
  key: string,
  since?: number,
  users: 'all' | 'none' | readonly string[] = 'all',
): string {
  const url = new URL(base);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (!url.pathname.endsWith('/ws')) url.pathname = `${url.pathname.replace(/\/$/, '')}/ws`;
  url.searchParams.set('key', key);
  if (since === undefined) url.searchParams.delete('since');
  else url.searchParams.set('since', String(since));
  if (users === 'all') url.searchParams.delete('users');
  else url.searchParams.set('users', 'none');
  return url.toString();
}
