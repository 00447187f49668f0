// @ts-check
/**
 * Mutation testing (`npm run mutate`; docs/testing.md). Not part of CI: it runs the in-process
 * tests (vitest.mutate.config.ts, against real PostgreSQL as `npm test` does) once per mutant.
 * `npm run mutate -- --mutate src/http/csv.ts` runs one module.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  // Only the tests that reach a mutant run against it.
  coverageAnalysis: 'perTest',
  // Where a silent bug costs most.
  mutate: [
    'src/presence/ping-writer.ts',
    'src/presence/validation.ts',
    'src/keys.ts',
    'src/edge/auth.ts',
    'src/edge/rate-limit.ts',
    'src/edge/socket-limits.ts',
    'src/presence/change-feed.ts',
    'src/realtime/snapshots.ts',
    'src/realtime/slices.ts',
    'src/pacing.ts',
    'src/realtime/resume.ts',
    'src/http/csv.ts',
    'src/shutdown.ts',
  ],
  concurrency: 2,
  timeoutMS: 20_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // Later runs test again only the mutants whose code or tests changed.
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 85, break: null },
};
