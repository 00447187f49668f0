import WebSocket from 'ws';
import { type ChurnState, type Client, connect, newSlot, type Slot } from './slot.js';
import type { FrameCounters } from './view.js';

export type { ChurnCounters, Client } from './slot.js';

// A fixed number of socket slots (slot.ts), each holding one client at a time. A client lives a
// random few seconds to a minute, then drops (a clean close or a terminate, half each) and its
// slot connects again: half the time as the same client resuming with `?since=<last position>`
// (keeping its view, as a real client would), otherwise as a new client. A share of clients
// ping a user of their own while they live; when such a client drops, its user times out.

export function startChurn(options: {
  wsUrl: string;
  sockets: number;
  frames: FrameCounters;
  /** Users the pinging clients take, one each. */
  users: string[];
  pingingShare: number;
  flipShare: number;
  lifeS: [number, number];
  resumeShare: number;
}) {
  const slots: Slot[] = [];
  const state: ChurnState = {
    options,
    counters: {
      ...{ connects: 0, resumes: 0, cleanCloses: 0, terminates: 0, connectErrors: 0, pings: 0 },
      serverCloses: new Map(),
      connectErrorExamples: [],
    },
    free: [...options.users],
    paused: false,
    hold: false,
    stopping: false,
    keys: 0,
    schedule(slot) {
      slot.lifeStartedAt = performance.now();
      slot.lifeTimer = setTimeout(() => {
        slot.lifeTimer = undefined;
        slot.drop();
      }, slot.lifeLeftMs);
    },
  };

  return {
    counters: state.counters,
    /** Opens every slot's first socket, `batch` at a time, a tenth of a second apart. */
    async open(batch = 50): Promise<void> {
      for (let i = 0; i < options.sockets; i++) {
        const slot = newSlot();
        slots.push(slot);
        connect(state, slot);
        if (i % batch === batch - 1) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    /** Clients with an open socket. */
    live: (): Client[] =>
      slots.flatMap((s) => (s.client?.ws.readyState === WebSocket.OPEN ? [s.client] : [])),
    /** No socket connecting or closing. */
    quiet: () => slots.every((s) => !s.client || s.client.ws.readyState === WebSocket.OPEN),
    /** Lives stop running out and nothing connects; socket pings become heartbeats only. */
    pause(): void {
      state.paused = true;
      state.hold = true;
      for (const slot of slots) {
        if (!slot.lifeTimer) continue;
        clearTimeout(slot.lifeTimer);
        slot.lifeTimer = undefined;
        slot.lifeLeftMs = Math.max(0, slot.lifeLeftMs - (performance.now() - slot.lifeStartedAt));
      }
    },
    resume(): void {
      state.paused = false;
      state.hold = false;
      for (const slot of slots) {
        const waiting = slot.waiting;
        slot.waiting = undefined;
        if (waiting) waiting();
        else if (slot.client?.ws.readyState === WebSocket.OPEN && !slot.lifeTimer) {
          state.schedule(slot);
        }
      }
    },
    /** Closes every socket (cleanly) and waits for them to be closed. */
    async stop(timeoutMs = 10_000): Promise<void> {
      state.stopping = true;
      const closing = slots.flatMap((slot) => {
        clearTimeout(slot.lifeTimer);
        const ws = slot.client?.ws;
        if (!ws || ws.readyState === WebSocket.CLOSED) return [];
        const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000);
        return [closed];
      });
      const timer = setTimeout(() => {
        for (const slot of slots) slot.client?.ws.terminate();
      }, timeoutMs);
      await Promise.all(closing);
      clearTimeout(timer);
    },
  };
}

export type Churn = ReturnType<typeof startChurn>;
