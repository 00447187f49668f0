import type { Peer } from './hub.js';

/**
 * Holds a live change for a socket catching up, within the bound of what a socket may have
 * waiting (`maxBytes`). Past it, everything held is let go: every live change was read from the
 * log (see change-feed.ts), so the catch-up reads it there instead, in order, before what is
 * held from then on is released. Nothing is lost or sent twice, and memory stays bounded.
 */
export function hold(peer: Peer, position: number, frame: Buffer, maxBytes: number): void {
  if (!peer.held) return;
  const bytes = (peer.heldBytes ?? 0) + frame.length;
  if (bytes <= maxBytes) {
    peer.held.push({ position, frame });
    peer.heldBytes = bytes;
    return;
  }
  peer.held = [];
  peer.heldBytes = 0;
  peer.droppedThrough = position;
}
