import WebSocket from 'ws';

// WebSocket clients for the benchmark. Frames from the service are looked at as bytes first:
// snapshots (the whole user list) are never parsed, only the frames a measurement waits for.

const PRESENCE_CHANGE = Buffer.from('{"event":"presence-change"');
const ERROR = Buffer.from('{"event":"error"');

export const startsWith = (data: Buffer, prefix: Buffer) =>
  data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

export interface Change {
  user: string;
  status: string | null;
  position: number;
}

export interface ClientSocket {
  socket: WebSocket;
  /** Called with every presence-change whose frame names `watch` (when set). */
  onChange?: (change: Change) => void;
  watch?: Buffer;
}

export interface SocketCounters {
  frames: number;
  bytes: number;
  errors: Map<string, number>;
  closed: number;
}

export const newCounters = (): SocketCounters => ({
  frames: 0,
  bytes: 0,
  errors: new Map(),
  closed: 0,
});

/** Opens `count` sockets, `concurrency` connecting at a time; rejects if any fails. */
export async function openSockets(
  url: string,
  count: number,
  counters: SocketCounters,
  concurrency = 100,
): Promise<ClientSocket[]> {
  const opened: ClientSocket[] = [];
  let next = 0;
  const connectOne = async () => {
    while (next < count) {
      next += 1;
      opened.push(await connect(url, counters));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, connectOne));
  } catch (error) {
    closeSockets(opened);
    throw error;
  }
  return opened;
}

function connect(url: string, counters: SocketCounters): Promise<ClientSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const client: ClientSocket = { socket };
    socket.on('message', (data: Buffer) => {
      counters.frames += 1;
      counters.bytes += data.length;
      if (startsWith(data, PRESENCE_CHANGE)) {
        if (!client.onChange || (client.watch && !data.includes(client.watch))) return;
        const { data: change } = JSON.parse(data.toString()) as { data: Change };
        client.onChange(change);
      } else if (startsWith(data, ERROR)) {
        const { data: error } = JSON.parse(data.toString()) as { data: { code: string } };
        counters.errors.set(error.code, (counters.errors.get(error.code) ?? 0) + 1);
      }
    });
    socket.once('open', () => resolve(client));
    socket.once('error', reject);
    socket.once('close', () => {
      counters.closed += 1;
    });
  });
}

export function closeSockets(sockets: ClientSocket[]): void {
  for (const { socket } of sockets) socket.terminate();
}

/** `"user":"<id>"` as it appears in a frame: a cheap test before parsing. */
export const userNeedle = (user: string) => Buffer.from(`"user":${JSON.stringify(user)},`);

export const pingFrame = (id: number | string, status: string) =>
  `{"event":"user-ping","data":{"id":${JSON.stringify(id)},"status":"${status}"}}`;

export const errorCount = (counters: SocketCounters) =>
  [...counters.errors.values()].reduce((sum, n) => sum + n, 0);
