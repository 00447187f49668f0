import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { readChangesAfter, readLogState } from '../presence/changes.js';
import { readHistoryHorizon } from '../presence/history.js';
import type { Broadcaster } from './broadcaster.js';
import { encodeChange, encodeFrame } from './frames.js';
import { CLOSE_TRY_AGAIN_LATER, type Peer, type PeerSocket, type SocketHub } from './hub.js';

/** `?since=`: a position from a `presence-change` or `presence-cleared` frame. */
export function parseSince(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d{1,15}$/.test(text)) return Number(text);
  // (socketRouteDocs in endpoint.ts documents the same rule.)
  throw new AppError(
    'invalid_since',
    400,
    'since must be a position (a whole number) from a presence-change or presence-cleared event',
  );
}

/** Further behind than this, a socket is sent a `resync` rather than every change. */
export const MAX_REPLAY_CHANGES = 100_000;
const REPLAY_BATCH = 1_000;
/** Between batches, a catching-up socket's unsent bytes must fall under this. */
const REPLAY_BUFFER_BYTES = 256 * 1024;
const DRAIN_POLL_MS = 20;

/**
 * `unknown_position`: past the end of the log, as a position from a log that since moved (an
 * older copy restored, another database) is. `log_moved` is sent to every live socket when the
 * instance finds that the log moved under it (src/realtime/resync.ts).
 */
export type ResyncReason = 'pruned' | 'unknown_position' | 'too_far_behind' | 'log_moved';

export interface ResumeDeps {
  db: Kysely<Database>;
  hub: SocketHub;
  broadcaster: Broadcaster;
  logger: Logger;
  /** MAX_REPLAY_CHANGES unless given (tests). */
  maxReplayChanges?: number;
}

/**
 * A socket that connects with `?since=<position>` gets every change after that position, in
 * order, then live ones, none twice and none missing: live changes are held while the log is
 * read, and released once the reading has caught up with them (the log is in commit order, see
 * migrations/0002). When the position can no longer be served (pruned, unknown, or too far
 * behind), the socket gets a `resync` event, then live changes, then fresh snapshots.
 */
export async function resume(deps: ResumeDeps, peer: Peer, since: number): Promise<void> {
  const { db, hub, broadcaster, logger } = deps;
  peer.held = [];
  peer.heldBytes = 0;
  peer.droppedThrough = 0;
  try {
    // The log's real end (migrations/0008): pruning may have emptied the log, and positions up
    // to the horizon were all valid once.
    const [horizon, { end: latest }] = await Promise.all([
      readHistoryHorizon(db),
      readLogState(db),
    ]);
    const reason = resyncReason(since, horizon, latest, deps.maxReplayChanges);
    if (reason) hub.send(peer, encodeFrame('resync', { position: latest, reason }));
    const position = await replay(deps, peer, reason ? latest : since, !reason);
    if (position === undefined) return;
    release(broadcaster, peer, position);
    broadcaster.welcome(peer);
  } catch (error) {
    // The client keeps its position: it reconnects with it and loses nothing.
    logger.warn({ reason: (error as Error).message }, 'could not resume a socket');
    peer.held = peer.heldBytes = peer.droppedThrough = undefined;
    peer.socket.close(CLOSE_TRY_AGAIN_LATER, 'could not read the change log; reconnect');
  }
}

/**
 * Sends the log after `after`, in batches, waiting for the socket to drain in between, and
 * answers the last position sent (undefined if the socket went). It reads to the end of the log
 * when `toEnd`, and always at least as far as any live change let go from `held`.
 */
async function replay(
  { db, hub, broadcaster }: ResumeDeps,
  peer: Peer,
  after: number,
  toEnd: boolean,
): Promise<number | undefined> {
  let position = after;
  let more = toEnd;
  while (more || position < (peer.droppedThrough ?? 0)) {
    const batch = await readChangesAfter(db, position, REPLAY_BATCH);
    if (!isOpen(peer)) return undefined;
    for (const change of batch) {
      if (broadcaster.concerns(peer, change)) hub.send(peer, encodeChange(change));
    }
    const last = batch.at(-1);
    // Nothing left: what was let go is not in the log (deleted meanwhile, or the log moved).
    if (!last) break;
    position = last.position;
    more = batch.length === REPLAY_BATCH;
    if (more) await drained(peer.socket);
  }
  return position;
}

function resyncReason(
  since: number,
  horizon: number,
  latest: number,
  maxReplayChanges = MAX_REPLAY_CHANGES,
): ResyncReason | undefined {
  if (since < horizon) return 'pruned';
  if (since > latest) return 'unknown_position';
  if (latest - since > maxReplayChanges) return 'too_far_behind';
  return undefined;
}

/** Live again: what was held meanwhile goes out, less what the catch-up already sent. */
function release(broadcaster: Broadcaster, peer: Peer, position: number): void {
  const held = peer.held ?? [];
  peer.held = peer.heldBytes = peer.droppedThrough = undefined;
  peer.deliveredThrough = Math.max(peer.deliveredThrough, position);
  for (const change of held) broadcaster.deliver(peer, change.position, change.frame);
}

const isOpen = (peer: Peer) => !peer.dropped && peer.socket.readyState === peer.socket.OPEN;

/** Waits until the socket has sent most of what it was given, or has closed. */
async function drained(socket: PeerSocket): Promise<void> {
  while (socket.readyState === socket.OPEN && socket.bufferedAmount > REPLAY_BUFFER_BYTES) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
}
