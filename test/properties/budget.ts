import type fc from 'fast-check';

/**
 * How much the property tests (fast-check) try, and from which seed.
 *
 * By default every property runs DEFAULT_RUNS cases from DEFAULT_SEED, so that CI, and anyone
 * running `npm test`, runs exactly the same cases every time. For a larger budget on demand:
 *
 *   PROPERTY_RUNS=<n>       cases per property (default 100); the socket properties, which
 *                           send several frames a case, scale with it
 *   PROPERTY_SEED=<n>       another fixed seed (a 32-bit integer)
 *   PROPERTY_SEED=random    a fresh seed for this run, printed at the start
 *
 *   PROPERTY_RUNS=2000 PROPERTY_SEED=random npx vitest run test/properties
 *
 * A failing property names its seed (and the `path` of the shrunk counterexample) in its error,
 * `{ seed: ..., path: "..." }`: run again with PROPERTY_SEED=<that seed> (and the same
 * PROPERTY_RUNS) to replay it.
 */
export const DEFAULT_SEED = 20261127;
export const DEFAULT_RUNS = 100;

function readRuns(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_RUNS;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) {
    throw new Error(`PROPERTY_RUNS must be a whole number of at least 1, not ${text}`);
  }
  return Number(text);
}

function readSeed(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_SEED;
  if (text === 'random') return (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0;
  if (!/^-?\d{1,10}$/.test(text) || Number(text) !== (Number(text) | 0)) {
    throw new Error(`PROPERTY_SEED must be a 32-bit integer or "random", not ${text}`);
  }
  return Number(text);
}

export const RUNS = readRuns(process.env.PROPERTY_RUNS);
export const SEED = readSeed(process.env.PROPERTY_SEED);

if (RUNS !== DEFAULT_RUNS || SEED !== DEFAULT_SEED) {
  // Also in any failure's message; printed here so that a passing random run can be repeated.
  console.info(`property tests: PROPERTY_SEED=${SEED} PROPERTY_RUNS=${RUNS}`);
}

/**
 * fast-check's parameters for one property: `share` of the budget (at least one case), from the
 * seed. Every property starts from the same seed, so each is reproducible on its own.
 */
export function budget<T>(share = 1): fc.Parameters<T> {
  return { seed: SEED, numRuns: runsFor(share) };
}

export function runsFor(share = 1): number {
  return Math.max(1, Math.round(RUNS * share));
}

/**
 * The test's timeout for a property of `share` of the budget whose cases take about `msPerRun`:
 * room for the runs and for shrinking a failure, never below the default 30 s.
 */
export function timeoutFor(share: number, msPerRun: number): number {
  return Math.max(30_000, runsFor(share) * msPerRun * 4 + 20_000);
}
