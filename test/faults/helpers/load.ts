import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { socketUrl } from '../../helpers/realtime.js';
import type { RunningService } from '../../helpers/service.js';
import { type Frame, isEvent, openSocket, type TestSocket } from '../../helpers/socket.js';

// A steady ping load on a running service, recording the fate of every ping, for the fault
// tests: HTTP loops ping a few users each over and over, socket loops ping a fresh user each
// time and wait for what tells them what became of it.

export type Status = 'available' | 'busy';

/**
 * - `ok`: answered 200 (HTTP), or acknowledged (socket: an `ack` frame, sent once stored);
 * - `unavailable`: 503 with Retry-After and `database_unavailable` (HTTP), or an `error` frame
 *   `database_unavailable` (socket): the service said it did not take the ping;
 * - `failed`: anything else (another status or code, no Retry-After, no answer in time, a
 *   connection refused or reset, a socket closed).
 */
export type Outcome = 'ok' | 'unavailable' | 'failed';

export interface PingRecord {
  via: 'http' | 'socket';
  loop: number;
  user: string;
  status: Status;
  /** Wall clock (Date.now()) just before sending, comparable with the database's clock. */
  sentAt: number;
  /** performance.now() when sent and when answered. */
  sentMark: number;
  answeredMark: number;
  outcome: Outcome;
  /** What the answer was, for failures: HTTP status and code, error frame, exception. */
  detail: string;
}

export interface LoadOptions {
  service: RunningService;
  key: string;
  /** Prefix of every user id: unique per test. */
  tag: string;
  httpLoops?: number;
  usersPerHttpLoop?: number;
  socketLoops?: number;
  /** Pause between two pings of one loop. */
  pauseMs?: number;
  /** A ping not answered after this is recorded `failed` (default GIVE_UP_MS). */
  giveUpMs?: number;
}

export interface Load {
  records: PingRecord[];
  /** The sockets of the socket loops, open before the first ping. */
  sockets: TestSocket[];
  /**
   * Resolves once every loop has had a ping sent at or after `mark` (performance.now()) end
   * well (`ok`), with the time that took from `mark`; rejects after `timeoutMs`.
   */
  recovered(mark: number, timeoutMs: number): Promise<number>;
  /** Waits until every loop has had `count` more pings answered (any outcome) than now. */
  settle(count?: number, timeoutMs?: number): Promise<void>;
  /** Stops the loops after their current ping and resolves with every record. */
  stop(): Promise<PingRecord[]>;
}

/**
 * No answer after this is a hang: the ping is recorded `failed` and the loop goes on. For a
 * socket ping, no answer is neither an `error` frame nor its `presence-change`.
 */
export const GIVE_UP_MS = 20_000;

export async function startLoad(options: LoadOptions): Promise<Load> {
  const { service, key, tag } = options;
  const httpLoops = options.httpLoops ?? 3;
  const usersPerHttpLoop = options.usersPerHttpLoop ?? 4;
  const socketLoops = options.socketLoops ?? 2;
  const pauseMs = options.pauseMs ?? 15;
  const giveUpMs = options.giveUpMs ?? GIVE_UP_MS;
  const records: PingRecord[] = [];
  const answered = new Array<number>(httpLoops + socketLoops).fill(0);
  let stopping = false;

  const sockets = await Promise.all(
    Array.from({ length: socketLoops }, async () => {
      const socket = await openSocket(socketUrl(service, key));
      await socket.next(isEvent('online-users-count'));
      return socket;
    }),
  );

  const httpLoop = async (loop: number) => {
    const users = Array.from({ length: usersPerHttpLoop }, (_, i) => `${tag}-h${loop}-${i}`);
    for (let seq = 0; !stopping; seq++) {
      const user = users[seq % users.length] as string;
      const status: Status = Math.random() < 0.5 ? 'available' : 'busy';
      records.push(await httpPing(service, key, loop, user, status, giveUpMs));
      answered[loop] = (answered[loop] ?? 0) + 1;
      await sleep(pauseMs);
    }
  };

  const socketLoop = async (index: number, socket: TestSocket) => {
    const loop = httpLoops + index;
    let closed = false;
    void socket.closed.then(() => {
      closed = true;
    });
    for (let seq = 0; !stopping && !closed; seq++) {
      const user = `${tag}-s${index}-${seq}`;
      const status: Status = seq % 2 === 0 ? 'available' : 'busy';
      records.push(await socketPing(socket, loop, user, status, giveUpMs));
      answered[loop] = (answered[loop] ?? 0) + 1;
      await sleep(pauseMs);
    }
  };

  const loops = [
    ...Array.from({ length: httpLoops }, (_, loop) => httpLoop(loop)),
    ...sockets.map((socket, index) => socketLoop(index, socket)),
  ];

  return {
    records,
    sockets,
    async recovered(mark, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const pending = answered
          .map((_, loop) => loop)
          .filter(
            (loop) =>
              !records.some(
                (record) =>
                  record.loop === loop && record.outcome === 'ok' && record.sentMark >= mark,
              ),
          );
        if (pending.length === 0) {
          const firsts = answered.map((_, loop) =>
            Math.min(
              ...records
                .filter((r) => r.loop === loop && r.outcome === 'ok' && r.sentMark >= mark)
                .map((r) => r.answeredMark),
            ),
          );
          return Math.max(...firsts) - mark;
        }
        if (performance.now() > deadline) {
          throw new Error(`loops ${pending.join(', ')} had no ping answered ok ${timeoutMs} ms on`);
        }
        await sleep(50);
      }
    },
    async settle(count = 3, timeoutMs = 10_000) {
      const target = answered.map((n) => n + count);
      const deadline = performance.now() + timeoutMs;
      while (answered.some((n, loop) => n < (target[loop] ?? 0))) {
        if (performance.now() > deadline) throw new Error('the load did not go on');
        await sleep(20);
      }
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return records;
    },
  };
}

/** Records the outcome of a ping sent now: when it was sent, and when its outcome came. */
function recorder(via: PingRecord['via'], loop: number, user: string, status: Status) {
  const sentAt = Date.now();
  const sentMark = performance.now();
  return (outcome: Outcome, detail = ''): PingRecord => ({
    via,
    loop,
    user,
    status,
    sentAt,
    sentMark,
    answeredMark: performance.now(),
    outcome,
    detail,
  });
}

/** One `POST /users/ping`, recorded. */
export async function httpPing(
  service: RunningService,
  key: string,
  loop: number,
  user: string,
  status: Status,
  giveUpMs = GIVE_UP_MS,
): Promise<PingRecord> {
  const record = recorder('http', loop, user, status);
  try {
    const {
      status: code,
      retryAfter,
      body,
    } = await post(
      service.port,
      '/users/ping',
      key,
      JSON.stringify({ id: user, status }),
      giveUpMs,
    );
    if (code === 200) return record('ok');
    const errorCode = safeCode(body);
    if (code === 503 && errorCode === 'database_unavailable' && Number(retryAfter) > 0) {
      return record('unavailable');
    }
    return record('failed', `${code} ${errorCode} retry-after=${retryAfter}`);
  } catch (error) {
    return record('failed', (error as Error).message);
  }
}

/**
 * A POST on a connection of its own (no keep-alive): a connection the server closes as idle
 * just as the client reuses it would fail the request for a reason that has nothing to do with
 * the faults under test.
 */
function post(
  port: number,
  path: string,
  key: string,
  body: string,
  giveUpMs: number,
): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        timeout: giveUpMs,
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: response.headers['retry-after'],
            body: text,
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer in ${giveUpMs} ms`)));
    request.on('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code ? `${error.code} ${error.message}` : error.message)),
    );
    request.end(body);
  });
}

/**
 * One ping for a new user, so that storing it is a change, announced to every socket: the
 * `presence-change` for it says it was stored, an `error` frame that it was not. Pings from one
 * socket are handled in order and this one is the only one waiting, so the error is its own.
 */
let acks = 0;

/** A socket ping with an `ack`: `ok` once the service acknowledges it, stored. */
async function socketPing(
  socket: TestSocket,
  loop: number,
  user: string,
  status: Status,
  giveUpMs = GIVE_UP_MS,
): Promise<PingRecord> {
  const from = socket.frames.length;
  const record = recorder('socket', loop, user, status);
  if (socket.socket.readyState !== socket.socket.OPEN) return record('failed', 'socket not open');
  acks += 1;
  const ack = acks;
  socket.socket.send(JSON.stringify({ event: 'user-ping', data: { id: user, status }, ack }));
  const answer = socket.next(
    (frame) => (frame.event === 'ack' || frame.event === 'error') && frame.data.ack === ack,
    giveUpMs,
    from,
  );
  answer.catch(() => undefined);
  const closed = socket.closed.then(() => 'closed' as const);
  const frame: Frame | 'closed' | undefined = await Promise.race([answer, closed]).catch(
    () => undefined,
  );
  if (frame === undefined) return record('failed', `no answer in ${giveUpMs} ms`);
  if (frame === 'closed') return record('failed', 'socket closed');
  if (frame.event === 'ack') return record('ok');
  if (frame.data.code === 'database_unavailable') return record('unavailable');
  return record('failed', `error frame ${JSON.stringify(frame.data)}`);
}

function safeCode(text: string): string {
  try {
    return String(JSON.parse(text)?.error?.code);
  } catch {
    return `non-JSON body ${JSON.stringify(text.slice(0, 80))}`;
  }
}

/** Positions of every change a socket received, in the order received. */
export function positionsReceived(socket: TestSocket): number[] {
  return socket.frames
    .filter((frame) => frame.event === 'presence-change' || frame.event === 'presence-cleared')
    .map((frame) => frame.data.position as number);
}
