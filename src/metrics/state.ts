import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Live state read at scrape time, so the numbers are never stale and nothing has to push them. */
export interface WatchedState {
  pool: Pick<pg.Pool, 'totalCount' | 'idleCount' | 'waitingCount'>;
  hub: { readonly size: number; peers(): Iterable<{ socket: { transport?: string } }> };
  listener: { readonly connections: number };
}

export function watchState(registry: Registry, { pool, hub, listener }: WatchedState): void {
  const registers = [registry];
  new Gauge({
    name: 'presently_sockets_open',
    help: 'Sockets open on this instance, by transport (socket: /ws; socketio: Socket.IO)',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      // At scrape time only: a walk over the sockets, never on a path a ping or change takes.
      let socketIo = 0;
      for (const peer of hub.peers()) if (peer.socket.transport === 'socketio') socketIo += 1;
      this.set({ transport: 'socket' }, hub.size - socketIo);
      this.set({ transport: 'socketio' }, socketIo);
    },
  });
  new Gauge({
    name: 'presently_db_pool_connections',
    help: 'Connections held by the database pool, busy or idle',
    registers,
    collect() {
      this.set(pool.totalCount);
    },
  });
  new Gauge({
    name: 'presently_db_pool_idle_connections',
    help: 'Pool connections waiting for work',
    registers,
    collect() {
      this.set(pool.idleCount);
    },
  });
  new Gauge({
    name: 'presently_db_pool_waiting_requests',
    help: 'Queries waiting for a pool connection (all connections busy)',
    registers,
    collect() {
      this.set(pool.waitingCount);
    },
  });
  // The listener counts its connections, the first included; a counter only goes up, so it
  // is moved by what changed since the last scrape.
  let counted = 0;
  new Counter({
    name: 'presently_listener_reconnects_total',
    help: 'Times the change listener had to connect again after losing its connection',
    registers,
    collect() {
      const reconnects = Math.max(0, listener.connections - 1);
      if (reconnects > counted) this.inc(reconnects - counted);
      counted = Math.max(counted, reconnects);
    },
  });
}
