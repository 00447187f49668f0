import { AppError } from '../errors.js';
import type { StatusChange } from '../presence/changes.js';

// Every frame either way is JSON text, {"event": "<name>", "data": <payload>}.

/** Frames go out as Buffers: encoded once, then written to every socket as they are. */
export function encodeFrame(event: string, data: unknown): Buffer {
  return Buffer.from(JSON.stringify({ event, data }));
}

/** A frame around a payload that is already JSON text (built by PostgreSQL). */
export function encodeJsonFrame(event: string, json: string): Buffer {
  return Buffer.from(`{"event":${JSON.stringify(event)},"data":${json}}`);
}

export function encodeError(error: AppError): Buffer {
  return encodeFrame('error', { code: error.code, message: error.message });
}

/** A change read from the log: `presence-change`, or `presence-cleared` for a clear. */
export function encodeChange(change: StatusChange): Buffer {
  if (change.kind === 'cleared') {
    return encodeFrame('presence-cleared', { position: change.position, time: change.time });
  }
  const { user, status, previous, time, position, message } = change;
  // `message` only while one is set: a change without it says the user has none (a message
  // cleared is a change whose status may equal its previous one).
  return encodeFrame(
    'presence-change',
    message === null
      ? { user, status, previous, time, position }
      : { user, status, previous, time, position, message },
  );
}

export interface ClientFrame {
  event: string;
  data: unknown;
  /** The client's acknowledgement id, echoed in the answer (absent: no answer for a ping). */
  ack?: Ack;
}

/** A string of 1 to 64 characters, or an integer. */
export type Ack = string | number;

const MAX_EVENT_NAME_SHOWN = 64;
const MAX_ACK_LENGTH = 64;

/** Whether `value` may be a frame's `ack`. */
export const isAck = (value: unknown): value is Ack =>
  (typeof value === 'string' && value.length >= 1 && value.length <= MAX_ACK_LENGTH) ||
  Number.isSafeInteger(value);

/** Reads a client frame; throws an AppError saying what is wrong with it. */
export function parseClientFrame(raw: string | ArrayBuffer): ClientFrame {
  if (typeof raw !== 'string') {
    throw new AppError('invalid_frame', 400, 'frames must be JSON text, not binary');
  }
  let frame: unknown;
  try {
    frame = JSON.parse(raw);
  } catch {
    throw new AppError('invalid_json', 400, 'the frame must be valid JSON');
  }
  if (
    typeof frame !== 'object' ||
    frame === null ||
    Array.isArray(frame) ||
    typeof (frame as { event?: unknown }).event !== 'string'
  ) {
    throw new AppError(
      'invalid_frame',
      400,
      'a frame is a JSON object {"event": "...", "data": ...}',
    );
  }
  const { event, data, ack } = frame as { event: string; data?: unknown; ack?: unknown };
  if (ack === undefined) return { event, data };
  if (!isAck(ack)) {
    throw new AppError(
      'invalid_frame',
      400,
      `ack must be a string of 1 to ${MAX_ACK_LENGTH} characters or an integer`,
    );
  }
  return { event, data, ack };
}

/** An event name fit to repeat in a message: bounded, in JSON quotes. */
export function showEventName(event: string): string {
  const shown =
    event.length > MAX_EVENT_NAME_SHOWN ? `${event.slice(0, MAX_EVENT_NAME_SHOWN)}…` : event;
  return JSON.stringify(shown);
}
