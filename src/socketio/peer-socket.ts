import { EventEmitter } from 'node:events';
import type { Socket } from 'socket.io';
import type { PeerSocket } from '../realtime/hub.js';

const OPEN = 1;
const CLOSED = 3;

/**
 * A Socket.IO socket as the realtime core's hub sees any socket (PeerSocket). Frames come from
 * the core encoded for /ws, `{"event":"E","data":P}`; here they become Socket.IO event packets,
 * `2["E",{"data":P}]` (the seed's events carry their payload under `data`), converted once per
 * frame for every Socket.IO socket, and written to the Engine.IO connection as they are, so a
 * list of a million users is never parsed and serialised again per socket.
 */
export function createSocketIoPeer(socket: Socket): PeerSocket {
  const events = new EventEmitter();
  let queued = 0;
  let readyState = OPEN;
  socket.on('disconnect', () => {
    readyState = CLOSED;
    events.emit('close');
  });
  return {
    transport: 'socketio',
    get readyState() {
      return readyState;
    },
    OPEN,
    CLOSED,
    get bufferedAmount() {
      return queued;
    },
    send(frame, _options, callback) {
      if (readyState !== OPEN) {
        callback?.(new Error('the socket is closed'));
        return;
      }
      const packet = toSocketIoPacket(frame);
      queued += packet.length;
      // Engine.IO calls back once the packet has been flushed to the transport.
      socket.conn.write(packet, {}, () => {
        queued -= packet.length;
        callback?.();
      });
    },
    close() {
      socket.disconnect(true);
    },
    terminate() {
      socket.disconnect(true);
    },
    // Over a websocket, reading stops at the TCP socket, as on /ws; a long-polling client
    // cannot be slowed down message by message (it is refused instead).
    pause() {
      const raw = webSocketOf(socket);
      raw?.pause();
      return raw !== undefined;
    },
    resume() {
      webSocketOf(socket)?.resume();
    },
    // Engine.IO checks the connection itself (pingInterval, pingTimeout): the hub's heartbeat
    // is answered at once.
    ping() {
      queueMicrotask(() => events.emit('pong'));
    },
    on(event, listener) {
      events.on(event, listener);
      return this;
    },
    once(event, listener) {
      events.once(event, listener);
      return this;
    },
  };
}

/** The `ws` socket under Engine.IO's websocket transport, if that is the transport. */
function webSocketOf(socket: Socket): { pause(): void; resume(): void } | undefined {
  const transport = socket.conn.transport as {
    name: string;
    socket?: { pause(): void; resume(): void };
  };
  return transport.name === 'websocket' ? transport.socket : undefined;
}

const packets = new WeakMap<Buffer, string>();
const PREFIX = /^\{"event":("(?:[^"\\]|\\.)*"),"data":/;

/** `{"event":"E","data":P}` → `2["E",{"data":P}]`, once per frame. */
export function toSocketIoPacket(frame: Buffer): string {
  let packet = packets.get(frame);
  if (packet === undefined) {
    const text = frame.toString('utf8');
    const prefix = PREFIX.exec(text.slice(0, 256));
    if (!prefix) throw new Error('not a frame of the realtime core');
    packet = `2[${prefix[1]},{"data":${text.slice(prefix[0].length, -1)}}]`;
    packets.set(frame, packet);
  }
  return packet;
}
