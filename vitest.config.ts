import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspace packages (presently-client) are run from their sources, as typecheck reads them; the
// client's README test runs its examples on the built package.
export default defineConfig({
  ssr: { resolve: { conditions: ['presently-source', ...defaultServerConditions] } },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // The failover cluster has a run of its own (npm run test:ha, vitest.ha.config.ts).
    exclude: ['test/ha/**', '**/node_modules/**'],
    // One PostgreSQL server for the run, a migrated template database cloned per test file.
    globalSetup: ['test/setup/database-server.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
