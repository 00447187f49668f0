import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { pacedInterval, typicalCost } from '../pacing.js';
import { readSnapshotJson } from '../presence/repository.js';
import { readCountsJson } from '../presence/snapshots.js';
import { encodeJsonFrame } from './frames.js';
import type { Peer, SocketHub } from './hub.js';
import { inSlices } from './slices.js';
import { createWatchIndex, type WatchIndex } from './watch.js';
import { type ListRequest, listedUsers, readWatchLists } from './watch-lists.js';

export interface SnapshotPump {
  /** Changes were read from the log: snapshots follow, coalesced, one after the last change. */
  changed(): void;
  /**
   * A socket needs the snapshots its watch calls for: just connected, caught up, or subscribed
   * (`answer`: a list even when it follows nobody, the answer to `subscribe`).
   */
  welcome(peer: Peer, answer?: boolean): void;
  /** A socket closed: stop waiting for it, and forget what it followed. */
  forget(peer: Peer): void;
  stop(): void;
  /** Who follows whom; a socket never subscribed follows everyone. */
  readonly watch: WatchIndex<Peer>;
}

export interface SnapshotPumpOptions {
  db: Kysely<Database>;
  hub: SocketHub;
  /** Who follows whom (default: a new index). */
  watch?: WatchIndex<Peer>;
  logger: Logger;
  /** The shortest time between two rounds of snapshots. */
  intervalMs: number;
  retryMs?: number;
}

interface ListSnapshot {
  version: number;
  readAt: number;
  list: Buffer;
  counts: Buffer;
}

/**
 * The seed's `online-users-list` and `online-users-count`, coalesced. Counts are global and
 * follow every change. The whole list goes to the sockets that follow everyone: read once a
 * round as JSON built by PostgreSQL, framed once, held once, and given latest-wins (hub.offer),
 * so it never queues up or closes a socket. A socket that follows a list gets the list of its
 * users whenever one of them changed, all such lists read in one query. Versions keep a socket
 * from receiving an older snapshot after a newer one. Each kind of snapshot is paced by its cost
 * (src/pacing.ts): a list of a thousand users costs a millisecond and follows changes every
 * interval; a million users' list costs seconds and comes every tens of seconds, while counts
 * and changes keep flowing.
 */
export function createSnapshotPump(options: SnapshotPumpOptions): SnapshotPump {
  const { db, hub, logger, intervalMs } = options;
  const watch = options.watch ?? createWatchIndex<Peer>();
  const retryMs = options.retryMs ?? 1_000;
  /** Sockets owed their first snapshots: counts, and what their watch calls for. */
  const waiting = new Set<Peer>();
  /** Of those, sockets following everyone that no list could be given to at once. */
  const waitingForList = new Set<Peer>();
  /** Of those, sockets owed a list even if empty (the answer to a `subscribe`). */
  const answering = new Set<Peer>();
  /** Sockets the round being read welcomes, and those of them welcomed again meanwhile. */
  let welcoming = new Set<Peer>();
  const welcomedAgain = new Set<Peer>();
  let countsDirty = false;
  let listDirty = false;
  let version = 0;
  let latest: ListSnapshot | undefined;
  let listCostMs = 0;
  let countsCostMs = 0;
  let lastListAt = Number.NEGATIVE_INFINITY;
  let lastRoundAt = Number.NEGATIVE_INFINITY;
  let reading = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failing = false;

  const listInterval = () => pacedInterval(intervalMs, listCostMs);
  const countsInterval = () => pacedInterval(intervalMs, countsCostMs);
  const followsEveryone = (peer: Peer) => watch.watchOf(peer) === 'all';

  /** When the next round is due, or undefined when there is nothing to do. */
  const nextRoundAt = (): number | undefined => {
    if (waiting.size > waitingForList.size) return Date.now();
    const due: number[] = [];
    if (waitingForList.size > 0) due.push(lastListAt + listInterval());
    if (countsDirty) due.push(lastRoundAt + countsInterval());
    if (listDirty && watch.everyone.size > 0) due.push(lastListAt + listInterval());
    return due.length > 0 ? Math.min(...due) : undefined;
  };

  const schedule = (delay?: number) => {
    if (stopped || reading || timer) return;
    const at = delay === undefined ? nextRoundAt() : Date.now() + delay;
    if (at === undefined) return;
    timer = setTimeout(round, Math.max(0, at - Date.now()));
  };

  /**
   * The watch lists to read this round: those of newcomers and new subscriptions. After that a
   * socket following a list is kept current by the `presence-change` frames of its users, which
   * carry all a list item does: lists read again after every change would cost, for a thousand
   * followers of each of fifty changes a second, fifty thousand lists a second.
   */
  const listRequests = (): ListRequest<Peer>[] => {
    const requests: ListRequest<Peer>[] = [];
    for (const peer of waiting) {
      const users = listedUsers(watch.watchOf(peer));
      if (!users || peer.held || (users.size === 0 && !answering.has(peer))) continue;
      requests.push({ subscriber: peer, users });
    }
    return requests;
  };

  const round = async () => {
    timer = undefined;
    reading = true;
    const startedAt = Date.now();
    const withList =
      (waitingForList.size > 0 || (listDirty && watch.everyone.size > 0)) &&
      startedAt >= lastListAt + listInterval();
    const broadcastCounts = countsDirty;
    const requests = listRequests();
    // Newcomers following everyone are welcomed with the list (and its counts), not before it.
    const welcomed = [...waiting].filter((peer) => withList || !waitingForList.has(peer));
    welcoming = new Set(welcomed);
    // Taken now: whatever changes from here on marks the pump again, and another round follows.
    countsDirty = false;
    if (withList) listDirty = false;
    let read: Awaited<ReturnType<typeof readRound>>;
    try {
      read = await readRound(withList, requests);
      if (failing) logger.info('snapshots read again');
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ reason: (error as Error).message }, 'could not read snapshots');
      failing = true;
      countsDirty ||= broadcastCounts;
      listDirty ||= withList;
      welcoming = new Set();
      welcomedAgain.clear();
      reading = false;
      return schedule(retryMs);
    }
    const readMs = Date.now() - startedAt;
    // Still a round in progress while it is handed out in slices: none other may start.
    const deliveryMs = stopped
      ? 0
      : await deliver({ withList, broadcastCounts, welcomed, ...read });
    reading = false;
    if (stopped) return;
    const costMs = readMs + deliveryMs;
    lastRoundAt = startedAt;
    if (withList) {
      lastListAt = startedAt;
      listCostMs = typicalCost(listCostMs, costMs, intervalMs);
    } else {
      countsCostMs = typicalCost(countsCostMs, costMs, intervalMs);
    }
    schedule();
  };

  /** Reads a round's snapshots; the whole list and its counts in one statement, so they agree. */
  const readRound = async (withList: boolean, requests: ListRequest<Peer>[]) => {
    const [snapshot, lists] = await Promise.all([
      withList ? readSnapshotJson(db) : readCountsJson(db),
      readWatchLists(db, requests),
    ]);
    version += 1;
    let counts: Buffer;
    if (typeof snapshot === 'string') {
      counts = encodeJsonFrame('online-users-count', snapshot);
    } else {
      latest = {
        version,
        readAt: Date.now(),
        list: encodeJsonFrame('online-users-list', snapshot.list),
        counts: encodeJsonFrame('online-users-count', snapshot.counts),
      };
      counts = latest.counts;
    }
    return {
      version,
      counts,
      lists: new Map(requests.map((r) => [r.subscriber, r])),
      frames: lists,
    };
  };

  /** Hands a round out; answers the time it took, the turns between slices left out. */
  const deliver = async (round: {
    withList: boolean;
    broadcastCounts: boolean;
    welcomed: Peer[];
    version: number;
    counts: Buffer;
    lists: Map<Peer, ListRequest<Peer>>;
    frames: Map<Peer, Buffer>;
  }): Promise<number> => {
    const give = (peer: Peer) => {
      // Sockets catching up get theirs once caught up (welcome), after the changes it follows.
      if (peer.held) return;
      if (followsEveryone(peer)) {
        // The seed's pair: the whole list, then the counts read with it; never counts alone.
        if (!round.withList || !latest) return;
        hub.offer(peer, latest.version, latest.list);
      } else {
        const frame = round.frames.get(peer);
        // Only for the list it still follows: a subscribe during the read asked for another.
        if (frame && round.lists.get(peer)?.users === watch.watchOf(peer)) {
          hub.offer(peer, round.version, frame);
        }
      }
      if (peer.countsVersion >= round.version) return;
      peer.countsVersion = round.version;
      hub.send(peer, round.counts);
    };
    let spent = 0;
    if (round.broadcastCounts) {
      spent += await inSlices(hub.peers(), give);
    } else {
      spent += await inSlices(round.frames.keys(), give);
      if (round.withList) spent += await inSlices(watch.everyone, give);
    }
    const started = Date.now();
    for (const peer of round.welcomed) {
      if (peer.held) continue;
      give(peer);
      // Subscribed again while this round was read: that one is answered by the next round.
      if (welcomedAgain.has(peer)) continue;
      waiting.delete(peer);
      waitingForList.delete(peer);
      answering.delete(peer);
    }
    welcoming = new Set();
    welcomedAgain.clear();
    return spent + Date.now() - started;
  };

  return {
    changed() {
      countsDirty = true;
      listDirty = true;
      // Nobody to send to: read nothing now; the next socket to arrive gets a fresh one.
      if (hub.size > 0) schedule();
    },
    welcome(peer, answer = false) {
      if (!watch.has(peer)) watch.set(peer, 'all');
      if (welcoming.has(peer)) welcomedAgain.add(peer);
      if (answer) answering.add(peer);
      // A socket catching up is welcomed once caught up (resume.ts).
      if (peer.held) return;
      waiting.add(peer);
      if (followsEveryone(peer)) welcomeToEveryone(peer);
      schedule();
    },
    forget(peer) {
      watch.remove(peer);
      waiting.delete(peer);
      waitingForList.delete(peer);
      answering.delete(peer);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      waiting.clear();
      waitingForList.clear();
      answering.clear();
    },
    watch,
  };

  /**
   * The latest whole list (with its counts) goes at once while it is current: nothing changed or
   * is being read since, and it is younger than the list interval (heartbeats move times).
   * Otherwise the newcomer waits for the next list: at once when the last one is old enough,
   * never sooner than the cost rule allows, so a crowd of newcomers costs one read.
   */
  function welcomeToEveryone(peer: Peer): void {
    const current = latest && !listDirty && !reading && Date.now() - latest.readAt < listInterval();
    if (!latest || !current) {
      waitingForList.add(peer);
      return;
    }
    hub.offer(peer, latest.version, latest.list);
    hub.send(peer, latest.counts);
    peer.countsVersion = latest.version;
    waiting.delete(peer);
  }
}
