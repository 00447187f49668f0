import type { PeerSocket } from '../../src/realtime/hub.js';
import type { Frame } from './socket.js';

/**
 * A socket whose unsent bytes the test sets: how slow a client is cannot be made exact over a
 * real connection. It records the frames given to it; `pollsAtEnd` counts the times its unsent
 * bytes were looked at since the last frame.
 */
export class RecordingSocket implements PeerSocket {
  readonly OPEN = 1;
  readonly CLOSED = 3;
  readyState = 1;
  unsent = 0;
  pollsAtEnd = 0;
  /** Runs at each frame given: a test on a fake clock moves it, as a slow write would take. */
  onSend: (() => void) | undefined;
  readonly frames: Frame[] = [];
  private readonly closeListeners: (() => void)[] = [];
  get bufferedAmount() {
    this.pollsAtEnd += 1;
    return this.unsent;
  }
  send(frame: Buffer, _options: { binary: false }, callback?: (error?: Error) => void) {
    this.frames.push(JSON.parse(frame.toString()));
    this.pollsAtEnd = 0;
    this.onSend?.();
    callback?.();
  }
  close() {
    this.readyState = this.CLOSED;
    for (const listener of this.closeListeners.splice(0)) listener();
  }
  terminate() {
    this.close();
  }
  ping() {}
  on(event: string, listener: () => void) {
    if (event === 'close') this.closeListeners.push(listener);
    return this;
  }
  once(event: string, listener: () => void) {
    return this.on(event, listener);
  }
}
