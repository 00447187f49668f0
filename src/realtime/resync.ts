import type { Broadcaster } from './broadcaster.js';
import { encodeFrame } from './frames.js';
import { CLOSE_TRY_AGAIN_LATER, type SocketHub } from './hub.js';

/**
 * The change log moved under the service (see change-feed.ts): every socket is told `resync`
 * with the log's real end, then given fresh snapshots, and will take changes after that
 * position, lower than some it has had. A socket still catching up from `?since=` is closed
 * instead (1013): its catch-up read the old log, and reconnecting with its position gets it a
 * `resync` from the new one.
 */
export function resyncAll(hub: SocketHub, broadcaster: Broadcaster, position: number): void {
  const frame = encodeFrame('resync', { position, reason: 'log_moved' });
  for (const peer of [...hub.peers()]) {
    if (peer.held) {
      peer.socket.close(CLOSE_TRY_AGAIN_LATER, 'the change log moved; reconnect');
      continue;
    }
    peer.deliveredThrough = position;
    hub.send(peer, frame);
    broadcaster.welcome(peer);
  }
}
