import type { BackoffOptions } from './backoff.js';
import type {
  Counts,
  ErrorPayload,
  OnlineUser,
  PingStatus,
  PresenceChange,
  PresenceCleared,
  Resync,
  ServerFrame,
  Watch,
} from './protocol.js';
import type { WebSocketConstructor } from './websocket.js';

// The socket client's interface; its behaviour is in socket-client.ts.

/** `waiting`: dropped, and a reconnection is due in `retryInMs`. `closed`: by `close()`. */
export type ConnectionState = 'connecting' | 'open' | 'waiting' | 'closed';

export interface ConnectionInfo {
  state: ConnectionState;
  /** Reconnections tried since the last complete welcome (a snapshot). */
  attempt: number;
  retryInMs?: number;
  /** Close code of the connection that dropped, when there was one. */
  closeCode?: number;
}

/** What a presence socket tells its listeners, by name. */
export interface PresenceSocketEvents {
  list: OnlineUser[];
  counts: Counts;
  change: PresenceChange;
  cleared: PresenceCleared;
  resync: Resync;
  error: ErrorPayload;
  state: ConnectionInfo;
}

export type PresenceSocketListeners = {
  [E in keyof PresenceSocketEvents]?: (data: PresenceSocketEvents[E]) => void;
};

export interface PresenceSocketOptions {
  /** The service (`http://host:3000`) or its socket (`ws://host:3000/ws`). */
  url: string;
  key: string;
  /** Needed where there is no global WebSocket (Node 20): pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /**
   * What to follow from the start (default `all`). A list is sent as a `subscribe` once each
   * connection opens (so that it never makes a long address), after `users=none`.
   */
  users?: Watch;
  /** A position kept from an earlier session, to resume from. */
  since?: number;
  backoff?: BackoffOptions;
  on?: PresenceSocketListeners;
  /** Every frame from the server, as it is, before the typed listeners. */
  onEvent?: (frame: ServerFrame) => void;
}

export interface PresenceSocket {
  readonly state: ConnectionState;
  /** The last position received: the next connection resumes from it. */
  readonly position: number | undefined;
  /** Sends a ping when connected, and says whether it did; nothing is queued while offline. */
  ping(id: string | number, status: PingStatus): boolean;
  /**
   * Follows these users (or everyone, or nobody) from now on, on this connection and the next
   * ones; answered with their list, then the counts. Says whether it was sent now (else it
   * will be on connecting).
   */
  subscribe(users: Watch): boolean;
  /** What the socket follows. */
  readonly users: Watch;
  on<E extends keyof PresenceSocketEvents>(
    event: E,
    listener: (data: PresenceSocketEvents[E]) => void,
  ): () => void;
  /** Drops the connection, if any, and connects again now (the network came back, say). */
  reconnect(): void;
  close(): void;
}
