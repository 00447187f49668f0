import type { Logger } from '../logger.js';

/**
 * What the hub needs of a connection, whatever its transport: the subset of the `ws` package's
 * PeerSocket that it uses, which a `ws` socket is as it stands and a Socket.IO socket is through
 * an adapter (src/socketio/peer-socket.ts).
 */
export interface PeerSocket {
  /** For metrics: `socketio` for Socket.IO; absent for /ws. */
  readonly transport?: 'socketio';
  readonly readyState: number;
  readonly OPEN: number;
  readonly CLOSED: number;
  /** Bytes given to `send` not yet handed to the network. */
  readonly bufferedAmount: number;
  /** `callback` runs once the frame has left (or could not). */
  send(frame: Buffer, options: { binary: false }, callback?: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  /**
   * Stops reading from the client (TCP back-pressure), if the transport can: returns false when
   * it cannot (anything else: paused). Absent: it cannot.
   */
  pause?(): unknown;
  resume?(): void;
  on(event: 'close' | 'pong', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** A connected socket and what the service tracks about it. */
export interface Peer {
  readonly socket: PeerSocket;
  /** The version of the last list snapshot given to it (0: none yet). */
  listVersion: number;
  /** The version of the last counts snapshot sent to it (0: none yet). */
  countsVersion: number;
  /** The bytes of the list snapshot being written to it (0: none); see `offer`. */
  snapshotBytes: number;
  /** The newest list snapshot waiting for the one being written, replacing any older. */
  nextSnapshot?: Buffer;
  /** Unsent bytes at the last heartbeat: less now means the client is reading. */
  bufferedAtBeat: number;
  /** Answered the last protocol ping. */
  alive: boolean;
  /** Closed by the hub (too slow), waiting for the close to complete: sent nothing more. */
  dropped: boolean;
  /** The position of the last change sent to it: a change is never sent twice. */
  deliveredThrough: number;
  /**
   * Present while the socket is catching up from a position (see resume.ts): live changes wait
   * here, in order, until the catch-up has caught up with them.
   */
  held?: HeldChange[];
  /** The bytes of `held`, bounded like unsent bytes (see resume.ts `hold`). */
  heldBytes?: number;
  /**
   * The highest position let go from `held` to keep it within the bound: the catch-up reads the
   * log at least this far before it releases what is held.
   */
  droppedThrough?: number;
}

export interface HeldChange {
  position: number;
  frame: Buffer;
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
  /**
   * Registers a socket until it closes; undefined (and the socket closed) when the hub is
   * closing.
   */
  add(socket: PeerSocket): Peer | undefined;
  /**
   * Sends unless the socket is too far behind on such frames (changes, counts, answers), in
   * which case it is closed (1013). A list snapshot being written does not count as behind.
   */
  send(peer: Peer, frame: Buffer): void;
  /**
   * Gives a socket a list snapshot, latest wins: written at once if none is being written to
   * it, otherwise kept (a reference, replacing an older one kept) until the one being written
   * is out. However large, a snapshot never closes a socket, and never queues behind another.
   */
  offer(peer: Peer, version: number, frame: Buffer): void;
  broadcast(frame: Buffer): void;
  /** Open sockets that are sent to. */
  peers(): Generator<Peer>;
  readonly size: number;
  /** The bound on what one socket may have waiting in memory (unsent bytes, held changes). */
  readonly maxBufferedBytes: number;
  /** Work started for a socket (a ping being stored) that closing waits for. */
  track(work: Promise<unknown>): void;
  /**
   * Refuses new sockets, closes every socket (1001), terminates those that do not close in
   * time, and waits for their work, within the same bound again.
   */
  close(timeoutMs?: number): Promise<void>;
}

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN_LATER = 1013;
const SLOW_CLOSE_GRACE_MS = 2_000;
const LATE_CLOSE_GRACE_MS = 1_000;

export function createSocketHub(options: SocketHubOptions): SocketHub {
  const { logger } = options;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  // Every socket until its 'close' event, dropped ones included: an upgraded connection keeps
  // the HTTP server from closing, so none may be forgotten while it lives.
  const sockets = new Map<PeerSocket, Peer>();
  const work = new Set<Promise<unknown>>();
  let closing = false;
  let dropped = 0;

  const drop = (peer: Peer) => {
    peer.dropped = true;
    dropped += 1;
    peer.socket.close(CLOSE_TRY_AGAIN_LATER, 'too slow to keep up');
    // A client that has stopped reading never reads the close frame either: let its backlog go.
    setTimeout(() => peer.socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  };

  function* live() {
    for (const peer of sockets.values()) if (!peer.dropped) yield peer;
  }

  // A peer is dropped when it has not answered the previous ping and has read nothing since:
  // a client reading a large snapshot slowly gets the ping only behind it, and is kept.
  const heartbeat = setInterval(() => {
    for (const peer of live()) {
      const buffered = peer.socket.bufferedAmount;
      const reading = buffered > 0 && buffered < peer.bufferedAtBeat;
      peer.bufferedAtBeat = buffered;
      if (!peer.alive && !reading) {
        logger.debug('socket dropped: no answer to ping');
        peer.socket.terminate();
        continue;
      }
      peer.alive = false;
      peer.socket.ping();
    }
  }, options.heartbeatMs ?? 30_000);

  const writeSnapshot = (peer: Peer, frame: Buffer) => {
    peer.snapshotBytes = frame.length;
    // Called once the frame has left for the network (or could not): the next may go.
    peer.socket.send(frame, { binary: false }, () => {
      peer.snapshotBytes = 0;
      const next = peer.nextSnapshot;
      peer.nextSnapshot = undefined;
      if (next && !peer.dropped && peer.socket.readyState === peer.socket.OPEN) {
        writeSnapshot(peer, next);
      }
    });
  };
  heartbeat.unref();

  const hub: SocketHub = {
    add(socket) {
      const peer: Peer = {
        socket,
        listVersion: 0,
        countsVersion: 0,
        snapshotBytes: 0,
        bufferedAtBeat: 0,
        alive: true,
        dropped: closing,
        deliveredThrough: 0,
      };
      sockets.set(socket, peer);
      if (closing) dropped += 1;
      // `on`, not `once`: ws emits 'close' once, and `once` would add a wrapper to every socket.
      socket.on('close', () => {
        sockets.delete(socket);
        if (peer.dropped) dropped -= 1;
      });
      if (closing) {
        socket.close(CLOSE_GOING_AWAY, 'the server is shutting down');
        // A client that never answers the close must not hold the server open.
        setTimeout(() => socket.terminate(), LATE_CLOSE_GRACE_MS).unref();
        return undefined;
      }
      socket.on('pong', () => {
        peer.alive = true;
      });
      return peer;
    },
    send(peer, frame) {
      const { socket } = peer;
      if (peer.dropped || socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount - peer.snapshotBytes > maxBufferedBytes) {
        logger.warn({ buffered: socket.bufferedAmount }, 'socket closed: too slow to keep up');
        drop(peer);
        return;
      }
      socket.send(frame, { binary: false });
    },
    offer(peer, version, frame) {
      const { socket } = peer;
      if (version <= peer.listVersion) return;
      peer.listVersion = version;
      if (peer.dropped || socket.readyState !== socket.OPEN) return;
      if (peer.snapshotBytes > 0) peer.nextSnapshot = frame;
      else writeSnapshot(peer, frame);
    },
    broadcast(frame) {
      for (const peer of sockets.values()) hub.send(peer, frame);
    },
    peers: live,
    get size() {
      return sockets.size - dropped;
    },
    maxBufferedBytes,
    track(promise) {
      const settled = promise.then(
        () => {},
        () => {},
      );
      work.add(settled);
      void settled.then(() => work.delete(settled));
    },
    async close(timeoutMs = 3_000) {
      closing = true;
      clearInterval(heartbeat);
      const all = [...sockets.keys()];
      const closed = all.map((socket) =>
        socket.readyState === socket.CLOSED
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              socket.once('close', () => resolve());
              socket.close(CLOSE_GOING_AWAY, 'the server is shutting down');
            }),
      );
      const timer = setTimeout(() => {
        for (const socket of sockets.keys()) socket.terminate();
      }, timeoutMs);
      await Promise.all(closed);
      clearTimeout(timer);
      // Pings already taken are stored if the database answers in time; with the database
      // away they would each wait for their own timeout, so the wait is bounded too.
      const drained = await Promise.race([
        Promise.all(work).then(() => true),
        new Promise<false>((resolve) => setTimeout(resolve, timeoutMs, false).unref()),
      ]);
      if (!drained) logger.warn({ pending: work.size }, 'stopped waiting for socket pings');
    },
  };
  return hub;
}
