import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` (Stryker, stryker.config.mjs) runs against each mutant: those that
 * exercise the mutated modules in process. Tests that spawn the real service (src/main.ts) never
 * see Stryker's mutants, and the property, fault and browser tests are too slow to run hundreds
 * of times; they stay in `npm test`. Otherwise as vitest.config.ts.
 */
export default defineConfig({
  test: {
    // MUTATE_TESTS (comma-separated globs) narrows the set, e.g. for one module's static mutants.
    include: process.env.MUTATE_TESTS?.split(',') ?? [
      'test/presence/{change-feed,change-log,change-log-races,periodic,ping-writer,sessions,validation,validation-bodies}.test.ts',
      'test/http/{bulk-pings,bulk-status,csv,list-pages,openapi,request-logs,reports,security,sessions,unavailable,users}.test.ts',
      'test/edge/{auth,rate-limit,socket-limit-rules}.test.ts',
      'test/realtime/{hub,resume,resume-bounds,slices,snapshot-rounds,snapshots,watch}.test.ts',
      'test/db/listener.test.ts',
      'test/keys.test.ts',
      'test/shutdown-rules.test.ts',
    ],
    globalSetup: ['test/setup/database-server.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
