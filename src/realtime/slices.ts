import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** Sockets handed a snapshot between two turns of the event loop. */
export const SLICE = 500;

/**
 * Runs `each` over `items`, giving the event loop a turn after every `size` of them, so that a
 * snapshot for tens of thousands of sockets (a hundred milliseconds of writes) does not hold up
 * the changes read meanwhile: they go out between slices. Answers the time spent in `each`,
 * the turns between slices left out.
 */
export async function inSlices<T>(
  items: Iterable<T>,
  each: (item: T) => void,
  size = SLICE,
): Promise<number> {
  let spent = 0;
  let started = Date.now();
  let inSlice = 0;
  for (const item of items) {
    // A turn only before an item that is left: a set that fits one slice takes none.
    if (inSlice === size) {
      spent += Date.now() - started;
      await yieldToEventLoop();
      started = Date.now();
      inSlice = 0;
    }
    each(item);
    inSlice += 1;
  }
  return spent + Date.now() - started;
}
