import WebSocket from 'ws';
import { type FrameCounters, View } from './view.js';

// One socket slot of the churn (churn.ts): it holds one client at a time. A client connects
// (resuming a dropped client's view with `?since=` when given one), pings a user of its own if
// it is a pinging client, lives until the churn ends its life, and is then replaced: by the
// same client resuming or by a new one. A socket the server closes, or that fails to connect,
// is replaced after a second by the same client resuming, as a real client would.

export interface ChurnCounters {
  connects: number;
  resumes: number;
  cleanCloses: number;
  terminates: number;
  /** Closes the client did not ask for, by close code. */
  serverCloses: Map<number, number>;
  connectErrors: number;
  connectErrorExamples: string[];
  pings: number;
}

export interface Client {
  /** Unique in this process: names the client in a check. */
  key: number;
  ws: WebSocket;
  view: View;
}

export interface Slot {
  client: Client | undefined;
  lifeLeftMs: number;
  lifeTimer: NodeJS.Timeout | undefined;
  lifeStartedAt: number;
  /** Replacement waiting for the churn to resume. */
  waiting: (() => void) | undefined;
  /** Ends the current client's life: a clean close or a terminate, half each. */
  drop: () => void;
}

/** What the slots of one churn share. */
export interface ChurnState {
  options: {
    wsUrl: string;
    frames: FrameCounters;
    pingingShare: number;
    flipShare: number;
    lifeS: [number, number];
    resumeShare: number;
  };
  counters: ChurnCounters;
  /** Users free for a pinging client to take. */
  free: string[];
  /** No connecting, no lives running out. */
  paused: boolean;
  /** Socket pings are heartbeats only, once a second. */
  hold: boolean;
  stopping: boolean;
  keys: number;
  /** Starts the slot's client's life (lifeLeftMs). */
  schedule(slot: Slot): void;
}

export const between = (low: number, high: number) => low + Math.random() * (high - low);

export function newSlot(): Slot {
  const none = undefined;
  return {
    ...{ client: none, lifeTimer: none, waiting: none, lifeLeftMs: 0, lifeStartedAt: 0 },
    drop: () => {},
  };
}

export function connect(state: ChurnState, slot: Slot, previous?: View): void {
  const { options, counters } = state;
  if (state.stopping) return;
  if (state.paused) {
    slot.waiting = () => connect(state, slot, previous);
    return;
  }
  const resume = previous?.position !== undefined;
  const view = previous ?? new View(options.frames);
  const since = resume ? `&since=${view.position}` : '';
  const ws = new WebSocket(`${options.wsUrl}${since}`, {
    perMessageDeflate: false,
    skipUTF8Validation: true,
  });
  const client: Client = { key: ++state.keys, ws, view };
  slot.client = client;
  counters.connects += 1;
  if (resume) counters.resumes += 1;
  let byUs = false;
  let opened = false;
  let user: string | undefined;
  let status = Math.random() < 0.5 ? 'available' : 'busy';
  let pingTimer: NodeJS.Timeout | undefined;

  const ping = () => {
    if (!user || ws.readyState !== WebSocket.OPEN) return;
    if (!state.hold && Math.random() < options.flipShare) {
      status = status === 'busy' ? 'available' : 'busy';
    }
    ws.send(`{"event":"user-ping","data":{"id":${JSON.stringify(user)},"status":"${status}"}}`);
    counters.pings += 1;
    pingTimer = setTimeout(ping, state.hold ? 1_000 : between(800, 2_000));
  };

  ws.on('message', (data: Buffer) => view.onFrame(data));
  ws.once('open', () => {
    opened = true;
    if (Math.random() < options.pingingShare) {
      user = state.free.splice(Math.floor(Math.random() * state.free.length), 1)[0];
    }
    ping();
    slot.lifeLeftMs = between(options.lifeS[0], options.lifeS[1]) * 1000;
    if (!state.paused) state.schedule(slot);
  });
  ws.on('error', (error) => {
    if (opened || state.stopping) return;
    counters.connectErrors += 1;
    if (counters.connectErrorExamples.length < 10) {
      counters.connectErrorExamples.push(error.message);
    }
  });
  ws.once('close', (code) => {
    clearTimeout(pingTimer);
    clearTimeout(slot.lifeTimer);
    slot.lifeTimer = undefined;
    if (user) state.free.push(user); // no longer pinged: away within the timeout
    if (slot.client === client) slot.client = undefined;
    if (state.stopping) return;
    if (byUs) {
      const next = Math.random() < options.resumeShare ? view : undefined;
      setTimeout(() => connect(state, slot, next), between(0, 500));
      return;
    }
    if (opened) counters.serverCloses.set(code, (counters.serverCloses.get(code) ?? 0) + 1);
    setTimeout(() => connect(state, slot, view), 1_000);
  });
  slot.drop = () => {
    byUs = true;
    const clean = Math.random() < 0.5;
    counters[clean ? 'cleanCloses' : 'terminates'] += 1;
    if (clean) ws.close(1000);
    else ws.terminate();
  };
}
