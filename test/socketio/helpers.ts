import type { Socket } from 'socket.io-client';

// biome-ignore lint/suspicious/noExplicitAny: payloads are checked field by field in tests
type Payload = any;

export interface Recorded {
  socket: Socket;
  /** Every event received so far, in order. */
  events: { event: string; payload: Payload }[];
  /** The first payload of `event` from `from` on that matches; rejects after `timeoutMs`. */
  next(
    event: string,
    match?: (payload: Payload) => boolean,
    timeoutMs?: number,
    from?: number,
  ): Promise<Payload>;
  all(event: string): Payload[];
  /** The connect_error, if the connection is refused. */
  refused(): Promise<Error & { data?: { code: string; message: string } }>;
}

/** A socket.io-client socket that records every event it receives. */
export function recorder(socket: Socket): Recorded {
  const events: Recorded['events'] = [];
  const listeners = new Set<() => void>();
  socket.onAny((event: string, payload: Payload) => {
    events.push({ event, payload });
    for (const listener of listeners) listener();
  });
  return {
    socket,
    events,
    next(event, match = () => true, timeoutMs = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        let index = from;
        const check = () => {
          for (; index < events.length; index++) {
            const received = events[index];
            if (received?.event !== event || !match(received.payload)) continue;
            finish();
            resolve(received.payload);
            return;
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `no ${event} in ${timeoutMs} ms; got ${JSON.stringify(events).slice(0, 2000)}`,
            ),
          );
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    all: (event) => events.filter((received) => received.event === event).map((r) => r.payload),
    refused: () =>
      new Promise((resolve, reject) => {
        socket.once('connect_error', (error) =>
          resolve(error as Error & { data?: { code: string; message: string } }),
        );
        socket.once('connect', () => reject(new Error('the connection was accepted')));
      }),
  };
}
