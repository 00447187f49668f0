// The WebSocket protocol of `GET /ws`, as types only: every frame either way is JSON text,
// {"event": "<name>", "data": <payload>}. Nothing here imports server or Node code, so that
// browsers, Node clients and the server can all share these shapes.

export type Status = 'available' | 'busy' | 'away';
/** What a client may set; `away` only ever comes from the server. */
export type PingStatus = Exclude<Status, 'away'>;
/** Statuses a list can be filtered by. */
export type StatusFilter = Status | 'all';

/** One user, as in `online-users-list` and `GET /users/list/{status}`. */
export interface OnlineUser {
  user: string;
  status: Status;
  /** Unix time in whole seconds of the user's last ping (of any session). */
  time: number;
  /** The user's status message, only while one is set. */
  message?: string;
}

export interface Counts {
  available: number;
  busy: number;
  away: number;
}

export interface PresenceChange {
  user: string;
  /** null: the user's row was deleted with SQL. */
  status: Status | null;
  /** null: a new user. */
  previous: Status | null;
  /** Unix time of the change in whole seconds. */
  time: number;
  /** Place in the change log: resume from it with `?since=`. */
  position: number;
  /** The user's status message as of the change, only while one is set. */
  message?: string;
}

export interface PresenceCleared {
  position: number;
  time: number;
}

export type ResyncReason = 'pruned' | 'unknown_position' | 'too_far_behind' | 'log_moved';

export interface Resync {
  /** Where to resume from once the snapshots that follow have been taken. */
  position: number;
  reason: ResyncReason;
}

export interface ErrorPayload {
  code: string;
  message: string;
}

/** Payload of each server-to-client event, by event name. */
export interface ServerEvents {
  'online-users-list': OnlineUser[];
  'online-users-count': Counts;
  'presence-change': PresenceChange;
  'presence-cleared': PresenceCleared;
  resync: Resync;
  error: ErrorPayload;
}

/** Payload of each client-to-server event, by event name. */
export interface ClientEvents {
  'user-ping': { id: string | number; status: PingStatus };
  subscribe: { users: (string | number)[] | 'all' };
}

/**
 * What a socket follows: everyone (`all`, the default), nobody (`none`: counts only), or these
 * users (their list, their changes, and the global counts).
 */
export type Watch = 'all' | 'none' | readonly string[];

export type ServerEventName = keyof ServerEvents;

/** A frame as sent by the server: a union discriminated by `event`. */
export type ServerFrame = {
  [E in ServerEventName]: { event: E; data: ServerEvents[E] };
}[ServerEventName];

export type ClientFrame = {
  [E in keyof ClientEvents]: { event: E; data: ClientEvents[E] };
}[keyof ClientEvents];

const SERVER_EVENTS: ReadonlySet<string> = new Set<ServerEventName>([
  'online-users-list',
  'online-users-count',
  'presence-change',
  'presence-cleared',
  'resync',
  'error',
]);

/**
 * Reads a frame from the server, or undefined for text that is not one of its events (a newer
 * server may add events: an old client skips them rather than failing). The payload is trusted
 * to match its event: the server is the one writing it.
 */
export function parseServerFrame(text: string): ServerFrame | undefined {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof frame !== 'object' || frame === null) return undefined;
  const { event } = frame as { event?: unknown };
  if (typeof event !== 'string' || !SERVER_EVENTS.has(event)) return undefined;
  return frame as ServerFrame;
}

export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}
