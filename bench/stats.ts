/** The p-th percentile (nearest rank) of sorted values, rounded to 0.1; 0 when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return round(sorted[rank - 1] ?? 0, 1);
}

export function round(n: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(n * scale) / scale;
}

/** Runs named steps, logging each and keeping how long each took, in seconds. */
export function phaseClock(log: (line: string) => void) {
  const seconds: Record<string, number> = {};
  return {
    seconds,
    async run<T>(name: string, step: () => Promise<T>): Promise<T> {
      log(name);
      const began = performance.now();
      try {
        return await step();
      } finally {
        seconds[name] = round((performance.now() - began) / 1000, 1);
      }
    },
  };
}
