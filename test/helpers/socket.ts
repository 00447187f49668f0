import { WebSocket } from 'ws';

export interface Frame {
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: frames are checked field by field in tests
  data: any;
}

export interface TestSocket {
  socket: WebSocket;
  /** Every frame received so far, in order. */
  frames: Frame[];
  send(event: string, data: unknown): void;
  /** Resolves with the first frame from `from` on that matches; rejects after `timeoutMs`. */
  next(match: (frame: Frame) => boolean, timeoutMs?: number, from?: number): Promise<Frame>;
  /** Frames of one event received so far. */
  all(event: string): Frame[];
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/** A socket client that records everything it receives. */
export async function openSocket(
  url: string,
  options: ConstructorParameters<typeof WebSocket>[2] = {},
): Promise<TestSocket> {
  const socket = new WebSocket(url, options);
  const frames: Frame[] = [];
  const listeners = new Set<() => void>();
  socket.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const listener of listeners) listener();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) =>
      reject(new Error(`upgrade refused: ${response.statusCode}`)),
    );
  });
  return {
    socket,
    frames,
    send: (event, data) => socket.send(JSON.stringify({ event, data })),
    next(match, timeoutMs = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        let index = from;
        const check = () => {
          for (; index < frames.length; index++) {
            const frame = frames[index] as Frame;
            if (!match(frame)) continue;
            finish();
            resolve(frame);
            return;
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(frames)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    all: (event) => frames.filter((frame) => frame.event === event),
    closed,
    async close() {
      if (socket.readyState !== socket.CLOSED) socket.close();
      await closed;
    },
  };
}

/** The status of an upgrade the server refused. */
export function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.close();
      reject(new Error('the upgrade was accepted'));
    });
    socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.once('error', () => {});
  });
}

export const isEvent =
  (event: string, where: (data: Frame['data']) => boolean = () => true) =>
  (frame: Frame) =>
    frame.event === event && where(frame.data);
