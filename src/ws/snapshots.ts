import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { readSnapshotJson } from '../presence/repository.js';
import { encodeJsonFrame } from './frames.js';
import type { Peer, SocketHub } from './hub.js';

export interface SnapshotPump {
  /** Something changed: every socket gets fresh snapshots, at most once per interval. */
  changed(): void;
  /**
   * A new socket: it gets snapshots at once, the latest ones if nothing changed since and they
   * are recent (heartbeats change no status, but they do move users' `time`).
   */
  welcome(peer: Peer): void;
  /** A socket closed before its first snapshot: stop waiting for it. */
  forget(peer: Peer): void;
  stop(): void;
}

interface Snapshot {
  version: number;
  readAt: number;
  frames: Buffer[];
}

/**
 * The seed's `online-users-list` and `online-users-count`, coalesced: however many changes arrive,
 * snapshots go out at most once per `intervalMs`, and one more always follows the last change, so
 * the final state is always delivered. Each snapshot is read once, as JSON built by PostgreSQL,
 * and framed once for all sockets. Versions keep a socket from ever receiving an older snapshot
 * after a newer one.
 */
export function createSnapshotPump(options: {
  db: Kysely<Database>;
  hub: SocketHub;
  logger: Logger;
  intervalMs: number;
  retryMs?: number;
}): SnapshotPump {
  const { db, hub, logger, intervalMs } = options;
  const retryMs = options.retryMs ?? 1_000;
  const waiting = new Set<Peer>();
  let version = 0;
  let dirty = false;
  let latest: Snapshot | undefined;
  let reading = false;
  let lastBroadcastAt = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failing = false;

  const sendTo = (peer: Peer, snapshot: Snapshot) => {
    if (peer.snapshotVersion >= snapshot.version) return;
    peer.snapshotVersion = snapshot.version;
    for (const frame of snapshot.frames) hub.send(peer, frame);
  };

  const schedule = (delay?: number) => {
    if (stopped || reading || timer) return;
    if (delay === undefined) {
      if (dirty) delay = Math.max(0, lastBroadcastAt + intervalMs - Date.now());
      else if (waiting.size > 0) delay = 0;
      else return;
    }
    timer = setTimeout(read, delay);
  };

  const read = async () => {
    timer = undefined;
    reading = true;
    const broadcast = dirty;
    dirty = false;
    const snapshotVersion = ++version;
    let snapshot: Snapshot | undefined;
    try {
      const json = await readSnapshotJson(db);
      snapshot = {
        version: snapshotVersion,
        readAt: Date.now(),
        frames: [
          encodeJsonFrame('online-users-list', json.list),
          encodeJsonFrame('online-users-count', json.counts),
        ],
      };
      if (failing) logger.info('snapshots read again');
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ reason: (error as Error).message }, 'could not read a snapshot');
      failing = true;
      dirty ||= broadcast;
    }
    reading = false;
    if (stopped) return;
    if (!snapshot) return schedule(retryMs);

    // Sockets that arrived during the read get it too: anything that changed after the read
    // began has marked the pump dirty, and a newer snapshot follows.
    latest = snapshot;
    if (broadcast) {
      lastBroadcastAt = Date.now();
      // Sockets catching up get theirs once caught up (welcome), after the changes it follows.
      for (const peer of hub.peers()) if (!peer.held) sendTo(peer, snapshot);
    }
    for (const peer of waiting) sendTo(peer, snapshot);
    waiting.clear();
    schedule();
  };

  return {
    changed() {
      dirty = true;
      // Nobody to send to: read nothing now; the next socket to arrive gets a fresh one.
      if (hub.size > 0) schedule();
    },
    welcome(peer) {
      // The latest snapshot is current while no change is pending or being read.
      if (latest && !dirty && !reading && Date.now() - latest.readAt < intervalMs) {
        return sendTo(peer, latest);
      }
      waiting.add(peer);
      schedule();
    },
    forget(peer) {
      waiting.delete(peer);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      waiting.clear();
    },
  };
}
