import type { WebSocket } from 'ws';
import type { Logger } from '../logger.js';

/** A connected socket and what the service tracks about it. */
export interface Peer {
  readonly socket: WebSocket;
  /** The version of the last snapshot sent to it (0: none yet). */
  snapshotVersion: number;
  /** Answered the last protocol ping. */
  alive: boolean;
}

export interface SocketHubOptions {
  logger: Logger;
  /** Protocol ping interval; a peer that has not answered the previous ping is dropped. */
  heartbeatMs?: number;
  /**
   * Unsent bytes a socket may hold before the next frame, on top of twice that frame's size (so
   * a client may still be reading the previous snapshot of a large list).
   */
  maxBufferedBytes?: number;
}

export interface SocketHub {
  /** Registers a socket; undefined (and the socket closed) when the hub is closing. */
  add(socket: WebSocket): Peer | undefined;
  remove(peer: Peer): void;
  /** Sends unless the socket is too far behind, in which case it is closed (1013). */
  send(peer: Peer, frame: Buffer): void;
  broadcast(frame: Buffer): void;
  peers(): IterableIterator<Peer>;
  readonly size: number;
  /** Refuses new sockets, closes every open one (1001) and waits for them, within a bound. */
  close(timeoutMs?: number): Promise<void>;
}

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN_LATER = 1013;
const SLOW_CLOSE_GRACE_MS = 2_000;

export function createSocketHub(options: SocketHubOptions): SocketHub {
  const { logger } = options;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const peers = new Map<WebSocket, Peer>();
  let closing = false;

  /** Sockets closed for being slow: the close frame waits behind their backlog, briefly. */
  const slow = new Set<WebSocket>();
  const dropSlow = ({ socket }: Peer) => {
    peers.delete(socket);
    slow.add(socket);
    socket.once('close', () => slow.delete(socket));
    socket.close(CLOSE_TRY_AGAIN_LATER, 'too slow to keep up');
    // A client that has stopped reading never reads the close frame either: let its backlog go.
    setTimeout(() => socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  };

  const heartbeat = setInterval(() => {
    for (const peer of peers.values()) {
      if (!peer.alive) {
        logger.debug('socket dropped: no answer to ping');
        peer.socket.terminate();
        continue;
      }
      peer.alive = false;
      peer.socket.ping();
    }
  }, options.heartbeatMs ?? 30_000);
  heartbeat.unref();

  const hub: SocketHub = {
    add(socket) {
      if (closing) {
        socket.close(CLOSE_GOING_AWAY, 'the server is shutting down');
        return undefined;
      }
      const peer: Peer = { socket, snapshotVersion: 0, alive: true };
      socket.on('pong', () => {
        peer.alive = true;
      });
      peers.set(socket, peer);
      return peer;
    },
    remove(peer) {
      peers.delete(peer.socket);
    },
    send(peer, frame) {
      const { socket } = peer;
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > maxBufferedBytes + 2 * frame.length) {
        logger.warn({ buffered: socket.bufferedAmount }, 'socket closed: too slow to keep up');
        dropSlow(peer);
        return;
      }
      socket.send(frame, { binary: false });
    },
    broadcast(frame) {
      for (const peer of peers.values()) hub.send(peer, frame);
    },
    peers: () => peers.values(),
    get size() {
      return peers.size;
    },
    async close(timeoutMs = 3_000) {
      closing = true;
      clearInterval(heartbeat);
      const sockets = [...peers.keys()];
      const closed = sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === socket.CLOSED) return resolve();
            socket.once('close', () => resolve());
            socket.close(CLOSE_GOING_AWAY, 'the server is shutting down');
          }),
      );
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.terminate();
      }, timeoutMs);
      for (const socket of slow) socket.terminate();
      await Promise.all(closed);
      clearTimeout(timer);
      peers.clear();
    },
  };
  return hub;
}
