import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The failover cluster has a run of its own (npm run test:ha, vitest.ha.config.ts).
    exclude: ['test/ha/**', '**/node_modules/**'],
    // One PostgreSQL server for the run, a migrated template database cloned per test file.
    globalSetup: ['test/setup/database-server.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
