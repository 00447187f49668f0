import { io, type Socket } from 'socket.io-client';
import { ACCESS_KEY } from './service.js';
import type { Change, SocketCounters } from './sockets.js';

// Socket.IO clients for the benchmark, as the service's Socket.IO clients connect: socket.io-
// client v4 to /socket.io/ on the service's port, the key in `auth`, the WebSocket transport
// only (no long-polling first), one Engine.IO connection per socket (`forceNew`: no two sockets
// share a connection, as no two clients would), no reconnection. socket.io-client decodes every
// packet it receives (snapshots included); that work is the client's, as it is for any client.

export interface SioClient {
  socket: Socket;
  /** Called with every presence-change (its `data`). */
  onChange?: (change: Change) => void;
}

/** Opens `count` Socket.IO sockets, `concurrency` connecting at a time; rejects if any fails. */
export async function openSioSockets(
  url: string,
  count: number,
  counters: SocketCounters,
  concurrency = 100,
): Promise<SioClient[]> {
  const opened: SioClient[] = [];
  let next = 0;
  const connectOne = async () => {
    while (next < count) {
      next += 1;
      opened.push(await connectSio(url, counters));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, connectOne));
  } catch (error) {
    closeSioSockets(opened);
    throw error;
  }
  return opened;
}

function connectSio(url: string, counters: SocketCounters): Promise<SioClient> {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      auth: { key: ACCESS_KEY },
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 60_000,
    });
    const client: SioClient = { socket };
    // Every message packet the Engine.IO connection received, as it came (before decoding).
    socket.io.engine.on('data', (data: unknown) => {
      counters.frames += 1;
      counters.bytes += typeof data === 'string' ? Buffer.byteLength(data) : 0;
    });
    socket.on('presence-change', (payload: { data: Change }) => client.onChange?.(payload.data));
    socket.on('error', (payload: { data?: { code?: string } }) => {
      const code = payload?.data?.code ?? 'unknown';
      counters.errors.set(code, (counters.errors.get(code) ?? 0) + 1);
    });
    socket.once('connect', () => {
      socket.off('connect_error');
      socket.on('disconnect', () => {
        counters.closed += 1;
      });
      resolve(client);
    });
    socket.once('connect_error', (error) => {
      socket.close();
      reject(new Error(`Socket.IO connect_error: ${error.message}`));
    });
  });
}

export function closeSioSockets(sockets: SioClient[]): void {
  for (const { socket } of sockets) {
    socket.removeAllListeners('disconnect');
    socket.close();
  }
}
