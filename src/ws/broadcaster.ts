import type { StatusChange } from '../presence/changes.js';
import { encodeFrame } from './frames.js';
import type { Peer, SocketHub } from './hub.js';
import type { SnapshotPump } from './snapshots.js';

export interface Broadcaster {
  /** Changes read from the log, in order: deltas now, snapshots coalesced. */
  publish(changes: StatusChange[]): void;
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
  return {
    publish(changes) {
      if (changes.length === 0) return;
      // Snapshots first: they must follow whatever becomes of the deltas.
      snapshots.changed();
      if (hub.size > 0) for (const change of changes) hub.broadcast(changeFrame(change));
    },
    welcome: (peer) => snapshots.welcome(peer),
    forget: (peer) => snapshots.forget(peer),
  };
}

function changeFrame(change: StatusChange): Buffer {
  if (change.kind === 'cleared') {
    return encodeFrame('presence-cleared', { position: change.position, time: change.time });
  }
  const { user, status, previous, time, position } = change;
  return encodeFrame('presence-change', { user, status, previous, time, position });
}
