import type { StatusChange } from '../presence/changes.js';
import { encodeChange } from './frames.js';
import type { Peer, SocketHub } from './hub.js';
import { hold } from './resume.js';
import type { SnapshotPump } from './snapshots.js';

export interface Broadcaster {
  /** Changes read from the log, in order: deltas now, snapshots coalesced. */
  publish(changes: StatusChange[]): void;
  /** Sends a change to one socket, unless it already has it; held while it catches up. */
  deliver(peer: Peer, position: number, frame: Buffer): void;
  welcome(peer: Peer): void;
  /** A socket closed: nothing is kept for it. */
  forget(peer: Peer): void;
}

/**
 * Every change goes out as it is read, as a `presence-change` (or `presence-cleared`) frame
 * encoded once for all sockets; the seed's snapshots follow through the pump.
 */
export function createBroadcaster({
  hub,
  snapshots,
}: {
  hub: SocketHub;
  snapshots: SnapshotPump;
}): Broadcaster {
  const deliver = (peer: Peer, position: number, frame: Buffer) => {
    if (peer.held) {
      hold(peer, position, frame, hub.maxBufferedBytes);
    } else if (position > peer.deliveredThrough) {
      peer.deliveredThrough = position;
      hub.send(peer, frame);
    }
  };
  return {
    publish(changes) {
      if (changes.length === 0) return;
      // Snapshots first: they must follow whatever becomes of the deltas.
      snapshots.changed();
      if (hub.size === 0) return;
      for (const change of changes) {
        const frame = encodeChange(change);
        for (const peer of hub.peers()) deliver(peer, change.position, frame);
      }
    },
    deliver,
    welcome: (peer) => snapshots.welcome(peer),
    forget: (peer) => snapshots.forget(peer),
  };
}
