import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { Broadcaster } from './broadcaster.js';
import type { Peer, PeerSocket, SocketHub } from './hub.js';
import { resume } from './resume.js';
import type { Watch } from './watch.js';

export interface ConnectDeps {
  db: Kysely<Database>;
  hub: SocketHub;
  broadcaster: Broadcaster;
  logger: Logger;
}

/**
 * A socket of any transport joins the core: registered with the hub, following what it asked
 * for, then given its snapshots at once, or first the changes it missed after `since`. Undefined
 * when the hub is closing (the socket is closed).
 */
export function connectPeer(
  deps: ConnectDeps,
  socket: PeerSocket,
  options: { since: number | undefined; watch: Watch },
): Peer | undefined {
  const { hub, broadcaster } = deps;
  const peer = hub.add(socket);
  if (!peer) return undefined;
  broadcaster.follow(peer, options.watch);
  if (options.since === undefined) broadcaster.welcome(peer);
  else hub.track(resume(deps, peer, options.since));
  return peer;
}
