import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { StatusChange } from '../presence/changes.js';
import { encodeChange } from './frames.js';
import { hold } from './held.js';
import type { Peer, SocketHub } from './hub.js';
import type { SnapshotPump } from './snapshots.js';
import type { Watch } from './watch.js';

export interface Broadcaster {
  /**
   * Changes read from the log, in order: deltas now, to their followers; snapshots coalesced.
   * Resolves once every change is out: a large batch gives the event loop a turn every few
   * milliseconds, so that pings, answers and snapshots are not held up behind it.
   */
  publish(changes: StatusChange[]): Promise<void>;
  /** Sends a change to one socket, unless it already has it; held while it catches up. */
  deliver(peer: Peer, position: number, frame: Buffer): void;
  /** Sets what a new socket follows, before anything is sent to it. */
  follow(peer: Peer, watch: Watch): void;
  /** The snapshots a socket's watch calls for (at connect, or once caught up). */
  welcome(peer: Peer): void;
  /**
   * Replaces what a socket follows (`subscribe`), and answers with the list of the followed
   * users the service knows, then the counts.
   */
  subscribe(peer: Peer, watch: Watch): void;
  /** Whether a change is one the socket hears: a change of a user it follows, or a clear. */
  concerns(peer: Peer, change: StatusChange): boolean;
  /** A socket closed: nothing is kept for it. */
  forget(peer: Peer): void;
}

/**
 * Every change goes out as it is read, as a `presence-change` (or `presence-cleared`) frame
 * encoded once for all sockets, to the sockets that follow its user, found through the watch
 * index (work in proportion to them, not to every socket); the seed's snapshots follow through
 * the pump.
 */
/** How long a batch of changes goes out before the event loop gets a turn. */
const TURN_AFTER_MS = 10;

export function createBroadcaster({
  hub,
  snapshots,
}: {
  hub: SocketHub;
  snapshots: SnapshotPump;
}): Broadcaster {
  const { watch } = snapshots;
  const deliver = (peer: Peer, position: number, frame: Buffer) => {
    if (peer.held) {
      hold(peer, position, frame, hub.maxBufferedBytes);
    } else if (position > peer.deliveredThrough) {
      peer.deliveredThrough = position;
      hub.send(peer, frame);
    }
  };
  /** A clear concerns every socket that follows anyone. */
  const followsAnyone = (peer: Peer) => {
    const watched = watch.watchOf(peer);
    return watched === 'all' || watched.size > 0;
  };
  /** Each change to its followers, in order, with a turn of the event loop every few ms. */
  const sendDeltas = async (changes: StatusChange[]) => {
    let turnAt = performance.now() + TURN_AFTER_MS;
    for (const change of changes) {
      if (performance.now() > turnAt) {
        await yieldToEventLoop();
        turnAt = performance.now() + TURN_AFTER_MS;
      }
      const frame = encodeChange(change);
      if (change.kind === 'cleared') {
        for (const peer of hub.peers())
          if (followsAnyone(peer)) deliver(peer, change.position, frame);
      } else {
        const { position } = change;
        watch.eachFollower(change.user, (peer) => deliver(peer, position, frame));
      }
    }
  };
  return {
    async publish(changes) {
      if (changes.length === 0) return;
      try {
        if (hub.size > 0) await sendDeltas(changes);
      } finally {
        // Marked once the deltas are out (or failed): a batch gives the event loop turns, and
        // the round of snapshots this asks for must come after all of it, not between.
        snapshots.changed();
      }
    },
    deliver,
    follow: (peer, watched) => watch.set(peer, watched),
    welcome: (peer) => snapshots.welcome(peer),
    subscribe(peer, watched) {
      watch.set(peer, watched);
      // A new subscription starts its lists over: none of the old one is still to come.
      peer.listVersion = 0;
      peer.nextSnapshot = undefined;
      snapshots.welcome(peer, true);
    },
    concerns(peer, change) {
      if (change.kind === 'cleared') return followsAnyone(peer);
      const watched = watch.watchOf(peer);
      return watched === 'all' || watched.has(change.user);
    },
    forget: (peer) => snapshots.forget(peer),
  };
}
