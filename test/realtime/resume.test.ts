import { type Kysely, type KyselyPlugin, sql } from 'kysely';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/schema.js';
import { AppError } from '../../src/errors.js';
import { latestPosition, readChangesAfter } from '../../src/presence/changes.js';
import { readHistoryHorizon } from '../../src/presence/history.js';
import { type Broadcaster, createBroadcaster } from '../../src/realtime/broadcaster.js';
import { createSocketHub, type Peer } from '../../src/realtime/hub.js';
import { parseSince, resume } from '../../src/realtime/resume.js';
import { createSnapshotPump } from '../../src/realtime/snapshots.js';
import { logPositionsAfter, silentLogger, useTestDatabase } from '../helpers/database.js';
import { onFirstResult, useLoopbackHub } from '../helpers/loopback-hub.js';
import { RecordingSocket } from '../helpers/recording-socket.js';
import { type Frame, isEvent } from '../helpers/socket.js';
import { waitFor } from '../helpers/wait.js';

// Catching up with `?since=` (src/realtime/resume.ts) in process, against real PostgreSQL: which
// positions are served, what is replayed, how the log is read (in batches, never past what is
// needed, never for a socket that went), and the wait for a slow socket between batches.
// resume-bounds.test.ts covers the memory bound on held changes and `too_far_behind`.

const database = useTestDatabase();
const loopback = useLoopbackHub();

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
});

describe('parseSince', () => {
  it('is undefined without ?since=, and reads a whole number of up to 15 digits', () => {
    expect(parseSince(undefined)).toBeUndefined();
    expect(parseSince('0')).toBe(0);
    expect(parseSince('42')).toBe(42);
    expect(parseSince('123456789012345')).toBe(123456789012345);
  });

  it('refuses anything else with a 400 that says what a position is', () => {
    for (const bad of ['', 'abc', '-1', '1.5', '1e3', '12a', 'a12', ' 1', '1234567890123456']) {
      let refusal: unknown;
      try {
        parseSince(bad);
      } catch (error) {
        refusal = error;
      }
      expect(refusal, bad).toBeInstanceOf(AppError);
      expect(refusal).toMatchObject({
        code: 'invalid_since',
        status: 400,
        message:
          'since must be a position (a whole number) from a presence-change or presence-cleared event',
      });
    }
  });
});

/** The hub, snapshot pump and broadcaster as main.ts wires them, over loopback sockets. */
async function start() {
  const hub = await loopback.start();
  const snapshots = createSnapshotPump({
    db: database.db,
    hub,
    logger: silentLogger,
    intervalMs: 50,
  });
  loopback.onStop(() => snapshots.stop());
  const broadcaster = createBroadcaster({ hub, snapshots });
  const connect = async () => {
    const connected = await loopback.connect();
    broadcaster.follow(connected.peer, 'all');
    return connected;
  };
  return { hub, broadcaster, connect };
}

/** Resumes with these deps (the database may carry a plugin), as the endpoint does. */
function deps(hub: Awaited<ReturnType<typeof start>>['hub'], broadcaster: Broadcaster) {
  return (db: Kysely<Database> = database.db) => ({ db, hub, broadcaster, logger: silentLogger });
}

/** `count` users' first pings, one change each, in one transaction. */
async function addUsers(prefix: string, count: number): Promise<void> {
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    select ${prefix} || g, 'available', now() from generate_series(1, ${count}) g
  `.execute(database.db);
}

const positions = (frames: Frame[]) =>
  frames.filter((f) => f.event === 'presence-change').map((f) => f.data.position as number);

/** Counts the reads of the log's changes (the only select of presently.status_changes with a
 * limit: readChangesAfter). */
function countingLogReads(db: Kysely<Database>) {
  const counter = { reads: 0 };
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      const isRead =
        node.kind === 'SelectQueryNode' &&
        node.limit !== undefined &&
        JSON.stringify(node.from).includes('status_changes');
      if (isRead) counter.reads += 1;
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  return { db: db.withPlugin(plugin), counter };
}

describe('the position a socket resumes from', () => {
  it('is served at the history horizon, and gets a resync (pruned) before it', async () => {
    await sql`
      select presently.append_change('old', 'busy', null, now() - interval '10 days'),
             presently.append_change('old', 'away', 'busy', now() - interval '9 days')
    `.execute(database.db);
    await addUsers('now-', 2);
    await sql`select presently.prune_history(interval '1 day', 100)`.execute(database.db);
    const horizon = await readHistoryHorizon(database.db);
    expect(horizon).toBeGreaterThan(0);
    const { hub, broadcaster, connect } = await start();
    const resumeWith = deps(hub, broadcaster);

    const atHorizon = await connect();
    await resume(resumeWith(), atHorizon.peer, horizon);
    await atHorizon.client.next(isEvent('online-users-count'));
    expect(atHorizon.client.all('resync')).toEqual([]);
    expect(positions(atHorizon.client.frames)).toEqual(
      await logPositionsAfter(database.db, horizon),
    );

    const before = await connect();
    await resume(resumeWith(), before.peer, horizon - 1);
    const resync = await before.client.next(isEvent('resync'));
    expect(resync.data).toEqual({
      position: await latestPosition(database.db),
      reason: 'pruned',
    });
    await before.client.next(isEvent('online-users-count'));
    expect(positions(before.client.frames)).toEqual([]);
  });

  it('is served at the end of the log (nothing to replay), and gets a resync past it', async () => {
    await addUsers('u-', 3);
    const latest = await latestPosition(database.db);
    const { hub, broadcaster, connect } = await start();
    const resumeWith = deps(hub, broadcaster);

    const atEnd = await connect();
    await resume(resumeWith(), atEnd.peer, latest);
    await atEnd.client.next(isEvent('online-users-count'));
    expect(atEnd.client.all('resync')).toEqual([]);
    expect(positions(atEnd.client.frames)).toEqual([]);

    const past = await connect();
    await resume(resumeWith(), past.peer, latest + 1);
    const resync = await past.client.next(isEvent('resync'));
    expect(resync.data).toEqual({ position: latest, reason: 'unknown_position' });
  });
});

describe('the catch-up', () => {
  it('replays only the changes of the users the socket follows', async () => {
    const since = await latestPosition(database.db);
    await addUsers('u-', 3);
    const { hub, broadcaster, connect } = await start();
    const { peer, client } = await connect();
    broadcaster.follow(peer, new Set(['u-2']));
    await resume(deps(hub, broadcaster)(), peer, since);
    await client.next(isEvent('online-users-count'));
    const users = client.frames
      .filter((f) => f.event === 'presence-change')
      .map((f) => f.data.user);
    expect(users).toEqual(['u-2']);
  });

  it('sends once a change it read that the change feed published meanwhile', async () => {
    const since = await latestPosition(database.db);
    await addUsers('u-', 3);
    const { hub, broadcaster, connect } = await start();
    const { peer, client } = await connect();
    // The feed publishes the same changes while the catch-up's read is on its way: they are
    // held, and let go on release as already sent.
    const publishDuringRead = async () => {
      broadcaster.publish(await readChangesAfter(database.db, since, 100));
    };
    const db = database.db.withPlugin(onFirstResult(['user_id', 'position'], publishDuringRead));
    await resume(deps(hub, broadcaster)(db), peer, since);
    await addUsers('later-', 1);
    const expected = await logPositionsAfter(database.db, since);
    broadcaster.publish(await readChangesAfter(database.db, since + 3, 100));
    await client.next(isEvent('presence-change', (d) => d.position === expected.at(-1)));
    expect(positions(client.frames)).toEqual(expected);
  });

  it('reads the log in batches of 1000, to its end and no further', async () => {
    const since = await latestPosition(database.db);
    await addUsers('u-', 2_500);
    const { hub, broadcaster, connect } = await start();
    const { peer, client } = await connect();
    const { db, counter } = countingLogReads(database.db);
    await resume(deps(hub, broadcaster)(db), peer, since);
    const expected = await logPositionsAfter(database.db, since);
    await client.next(isEvent('presence-change', (d) => d.position === expected.at(-1)));
    expect(positions(client.frames)).toEqual(expected);
    // 1000, 1000, then 500: fewer than a batch, so the end.
    expect(counter.reads).toBe(3);
  });

  it('stops reading for a socket that closed, and does not welcome it', async () => {
    const since = await latestPosition(database.db);
    await addUsers('u-', 2_500);
    const { hub, broadcaster, connect } = await start();
    const { peer } = await connect();
    const welcomed: Peer[] = [];
    const recording = { ...broadcaster, welcome: (p: Peer) => welcomed.push(p) };
    const counting = countingLogReads(database.db);
    // Closed by the server (its state changes at once) while the first batch is on its way.
    const closeDuringRead = async () => peer.socket.close();
    const db = counting.db.withPlugin(onFirstResult(['user_id', 'position'], closeDuringRead));
    await resume({ db, hub, broadcaster: recording, logger: silentLogger }, peer, since);
    expect(counting.counter.reads).toBe(1);
    expect(welcomed).toEqual([]);
  });

  it('reads as far as a live change it let go, and welcomes the socket even when the log does not have it', async () => {
    const since = await latestPosition(database.db);
    await addUsers('u-', 2);
    const { hub, broadcaster, connect } = await start();
    const { peer, client } = await connect();
    // A live change larger than what a socket may have held is let go, to be read from the log;
    // this one is past the log's end (the log moved, or it was deleted meanwhile).
    const ghost = {
      kind: 'change' as const,
      position: since + 1_000,
      user: 'ghost',
      status: 'busy' as const,
      previous: null,
      time: 0,
      message: 'x'.repeat(hub.maxBufferedBytes),
      age: 0,
    };
    const publishDuringRead = async () => broadcaster.publish([ghost]);
    const db = database.db.withPlugin(onFirstResult(['user_id', 'position'], publishDuringRead));
    await resume(deps(hub, broadcaster)(db), peer, since);
    expect(peer.held).toBeUndefined();
    await client.next(isEvent('online-users-count'));
    expect(positions(client.frames)).toEqual(await logPositionsAfter(database.db, since));
  });
});

/** A hub with one slow socket following everyone, and a catch-up of `changes` changes started. */
async function slowCatchUp(changes: number, unsent: number) {
  const since = await latestPosition(database.db);
  await addUsers('u-', changes);
  const hub = createSocketHub({ logger: silentLogger });
  const snapshots = createSnapshotPump({
    db: database.db,
    hub,
    logger: silentLogger,
    intervalMs: 50,
  });
  const broadcaster = createBroadcaster({ hub, snapshots });
  loopback.onStop(() => {
    snapshots.stop();
    void hub.close(100);
  });
  const socket = new RecordingSocket();
  socket.unsent = unsent;
  const peer = hub.add(socket) as Peer;
  broadcaster.follow(peer, 'all');
  const resumed = resume({ db: database.db, hub, broadcaster, logger: silentLogger }, peer, since);
  return { socket, resumed, expected: await logPositionsAfter(database.db, since) };
}

const KIB = 1024;

describe('a socket slow to read its catch-up', () => {
  it('is sent the next batch only once its unsent bytes fall to 256 KiB', async () => {
    const { socket, resumed, expected } = await slowCatchUp(2_500, 512 * KIB);
    // Waiting: the first batch is out, and its unsent bytes are looked at again and again.
    await waitFor('the catch-up to wait', () => socket.pollsAtEnd >= 3);
    expect(positions(socket.frames)).toEqual(expected.slice(0, 1_000));
    socket.unsent = 256 * KIB;
    await resumed;
    expect(positions(socket.frames)).toEqual(expected);
  });

  it('is not waited for once it closes', async () => {
    const { socket, resumed, expected } = await slowCatchUp(2_500, 512 * KIB);
    await waitFor('the catch-up to wait', () => socket.pollsAtEnd >= 3);
    socket.close();
    await resumed;
    expect(positions(socket.frames)).toEqual(expected.slice(0, 1_000));
  });

  it('is not waited for after the last batch', async () => {
    const { socket, resumed, expected } = await slowCatchUp(500, 512 * KIB);
    await resumed;
    expect(positions(socket.frames)).toEqual(expected);
  });
});

describe('a catch-up that cannot read the log', () => {
  it('closes the socket with 1013 so that it reconnects with its position, and says why in the log', async () => {
    const since = await latestPosition(database.db);
    const { hub, broadcaster, connect } = await start();
    const { peer, client } = await connect();
    const lines: { level: number; msg: string; reason?: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const failing: KyselyPlugin = {
      transformQuery: ({ node }) => node,
      transformResult: async () => {
        throw new Error('the log is away');
      },
    };
    const db = database.db.withPlugin(failing);
    await resume({ db, hub, broadcaster, logger }, peer, since);
    expect(await client.closed).toEqual({
      code: 1013,
      reason: 'could not read the change log; reconnect',
    });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'could not resume a socket',
        reason: 'the log is away',
      }),
    ]);
    expect(peer.held).toBeUndefined();
  });
});
