import { once } from 'node:events';
import type net from 'node:net';
import { type KyselyPlugin, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { latestPosition, readChangesAfter } from '../../src/presence/changes.js';
import { createBroadcaster } from '../../src/ws/broadcaster.js';
import { createSocketHub, type Peer, type SocketHub } from '../../src/ws/hub.js';
import { resume } from '../../src/ws/resume.js';
import { createSnapshotPump } from '../../src/ws/snapshots.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { type Frame, isEvent, openSocket, type TestSocket } from '../helpers/socket.js';

// The bounds of a socket catching up with `?since=` (src/ws/resume.ts), in process: the hub,
// broadcaster and catch-up as main.ts wires them, a real socket over loopback, and changes
// published from the log by hand where the change feed would publish them.

const database = useTestDatabase();
const BOUND = 1024 * 1024;

let server: WebSocketServer | undefined;
let hub: SocketHub | undefined;
let client: TestSocket | undefined;
let stopSnapshots = () => {};

afterEach(async () => {
  client?.socket.terminate();
  stopSnapshots();
  await hub?.close(100);
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = hub = client = undefined;
});

/** The hub and broadcaster, and a client whose server side (its peer) is registered. */
async function connect() {
  const { db } = database;
  hub = createSocketHub({ logger: silentLogger, maxBufferedBytes: BOUND });
  const snapshots = createSnapshotPump({ db, hub, logger: silentLogger, intervalMs: 250 });
  stopSnapshots = () => snapshots.stop();
  const broadcaster = createBroadcaster({ hub, snapshots });
  server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  client = await openSocket(`ws://127.0.0.1:${port}`);
  const [socket] = await accepted;
  const peer = hub.add(socket) as Peer;
  return { hub, broadcaster, peer, client };
}

/** `count` changes in one transaction, with ids as long as allowed (large frames). */
async function addUsers(prefix: string, count: number): Promise<void> {
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    select rpad(${prefix} || g, 128, '.'), 'available', now() from generate_series(1, ${count}) g
  `.execute(database.db);
}

async function logPositionsAfter(position: number): Promise<number[]> {
  const { rows } = await sql<{ position: string }>`
    select position from presently.status_changes where position > ${position} order by position
  `.execute(database.db);
  return rows.map((row) => Number(row.position));
}

const positions = (frames: Frame[]) =>
  frames.filter((f) => f.event === 'presence-change').map((f) => f.data.position as number);

const heldBytes = (peer: Peer) =>
  (peer.held ?? []).reduce((sum, change) => sum + change.frame.length, 0);

/** Runs `hook` once, when the first read of the change log has been answered. */
function afterFirstLogRead(hook: () => Promise<void>): KyselyPlugin {
  let done = false;
  return {
    transformQuery: (args) => args.node,
    async transformResult({ result }) {
      const [row] = result.rows as Record<string, unknown>[];
      if (!done && row && 'user_id' in row && 'position' in row) {
        done = true;
        await hook();
      }
      return result;
    },
  };
}

describe('the live changes held for a catching-up socket', () => {
  it('stay within the memory bound of unsent bytes, and none is lost or sent twice', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    const since = await latestPosition(database.db);
    await addUsers('missed-', 10);

    // Live changes arrive while the catch-up's read is on its way: more than the bound, in
    // batches as the change feed reads them, each committed (in the log) before it is published.
    let published = await latestPosition(database.db);
    let mostHeld = 0;
    const stream = async () => {
      for (let i = 0; i < 8; i++) {
        await addUsers(`live-${i}-`, 1_000);
        for (;;) {
          const changes = await readChangesAfter(database.db, published, 1_000);
          if (changes.length === 0) break;
          published = changes.at(-1)?.position ?? published;
          broadcaster.publish(changes);
          mostHeld = Math.max(mostHeld, heldBytes(peer));
        }
      }
    };
    const db = database.db.withPlugin(afterFirstLogRead(stream));
    await resume({ db, hub, broadcaster, logger: silentLogger }, peer, since);

    const expected = await logPositionsAfter(since);
    expect(expected.length).toBe(10 + 8_000);
    await client.next(
      isEvent('presence-change', (d) => d.position === expected.at(-1)),
      20_000,
    );
    expect(positions(client.frames)).toEqual(expected);
    expect(mostHeld).toBeGreaterThan(0);
    expect(mostHeld).toBeLessThanOrEqual(BOUND);
    expect(peer.held).toBeUndefined();
  });
});
