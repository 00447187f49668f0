import { backoffDelay } from './backoff.js';
import { encodeClientFrame, parseServerFrame, type ServerFrame, type Watch } from './protocol.js';
import type {
  ConnectionInfo,
  ConnectionState,
  PresenceSocket,
  PresenceSocketEvents,
  PresenceSocketOptions,
} from './socket-types.js';
import { globalWebSocket, socketUrl, type WebSocketLike } from './websocket.js';

export type * from './socket-types.js';

const OPEN = 1;
const NORMAL_CLOSURE = 1000;

const SHORT_NAMES = {
  'online-users-list': 'list',
  'online-users-count': 'counts',
  'presence-change': 'change',
  'presence-cleared': 'cleared',
  resync: 'resync',
  error: 'error',
} as const;

/**
 * A socket to `GET /ws` that stays connected: dropped, it reconnects with exponential backoff
 * and jitter, resuming from the last position it received (`?since=`), so that a listener sees
 * every change once. After a `resync`, listeners should drop what they hold and take the
 * snapshots that follow (createPresenceState does).
 */
export function createPresenceSocket(options: PresenceSocketOptions): PresenceSocket {
  const Socket = options.WebSocket ?? globalWebSocket();
  const listeners = new Map<keyof PresenceSocketEvents, Set<(data: never) => void>>();
  let position = options.since;
  let watch: Watch = options.users ?? 'all';
  let state: ConnectionState = 'connecting';
  let attempt = 0;
  let current: WebSocketLike | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const emit = <E extends keyof PresenceSocketEvents>(event: E, data: PresenceSocketEvents[E]) => {
    for (const listener of listeners.get(event) ?? []) {
      try {
        (listener as (data: PresenceSocketEvents[E]) => void)(data);
      } catch (error) {
        // Reported as any uncaught error, but after the other listeners and this frame's
        // bookkeeping have run: one faulty listener does not break the socket.
        setTimeout(() => {
          throw error;
        });
      }
    }
  };
  const on: PresenceSocket['on'] = (event, listener) => {
    const set = listeners.get(event) ?? new Set();
    listeners.set(event, set);
    set.add(listener as (data: never) => void);
    return () => set.delete(listener as (data: never) => void);
  };
  const setState = (next: ConnectionState, extra: Partial<ConnectionInfo> = {}) => {
    state = next;
    emit('state', { state, attempt, ...extra });
  };

  const receive = (frame: ServerFrame) => {
    options.onEvent?.(frame);
    if (frame.event === 'presence-change' || frame.event === 'presence-cleared') {
      position = frame.data.position;
    } else if (frame.event === 'resync') {
      // Set, not raised: a database since replaced starts its positions over.
      position = frame.data.position;
    } else if (
      frame.event === 'online-users-list' ||
      (frame.event === 'online-users-count' && watch === 'none')
    ) {
      // Served in full: the connection works, so the next drop starts the backoff over.
      attempt = 0;
    }
    // Own names only: an event from a newer server (or `constructor`) is no listener's.
    if (Object.hasOwn(SHORT_NAMES, frame.event))
      emit(SHORT_NAMES[frame.event], frame.data as never);
  };

  const connect = () => {
    timer = undefined;
    setState('connecting');
    let socket: WebSocketLike;
    try {
      socket = new Socket(socketUrl(options.url, options.key, position, watch));
    } catch {
      retry(undefined);
      return;
    }
    current = socket;
    socket.onopen = () => {
      if (socket !== current) return;
      // A list is followed by a subscribe: answered with a fresh list of those users.
      if (Array.isArray(watch)) sendSubscribe(socket, watch);
      setState('open');
    };
    socket.onmessage = (event) => {
      if (socket !== current || typeof event.data !== 'string') return;
      const frame = parseServerFrame(event.data);
      if (frame) receive(frame);
    };
    // Every failure, a refused upgrade included, ends in a close, where it is handled.
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (socket !== current) return;
      current = undefined;
      retry(event.code);
    };
  };

  const retry = (closeCode: number | undefined) => {
    const retryInMs = backoffDelay(attempt, options.backoff);
    attempt += 1;
    timer = setTimeout(connect, retryInMs);
    setState('waiting', { retryInMs, ...(closeCode === undefined ? {} : { closeCode }) });
  };

  const sendSubscribe = (socket: WebSocketLike, users: Watch) => {
    const data = { users: users === 'none' ? [] : users === 'all' ? ('all' as const) : [...users] };
    socket.send(encodeClientFrame({ event: 'subscribe', data }));
  };

  /** Forgets the current socket, so that its late events are ignored, and closes it. */
  const drop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const socket = current;
    current = undefined;
    socket?.close(NORMAL_CLOSURE);
  };

  for (const [event, listener] of Object.entries(options.on ?? {})) {
    on(event as keyof PresenceSocketEvents, listener as never);
  }
  // Connecting waits a turn, so that listeners added right after creation see the first state.
  timer = setTimeout(connect, 0);

  return {
    get state() {
      return state;
    },
    get position() {
      return position;
    },
    ping(id, status) {
      if (current?.readyState !== OPEN) return false;
      current.send(encodeClientFrame({ event: 'user-ping', data: { id, status } }));
      return true;
    },
    get users() {
      return watch;
    },
    subscribe(users) {
      watch = Array.isArray(users) ? [...users] : users;
      if (current?.readyState !== OPEN) return false;
      sendSubscribe(current, watch);
      return true;
    },
    on,
    reconnect() {
      if (state === 'closed') return;
      drop();
      connect();
    },
    close() {
      drop();
      setState('closed');
    },
  };
}
