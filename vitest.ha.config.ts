import { defineConfig } from 'vitest/config';

// npm run test:ha: presently on a Patroni cluster it builds on loopback (test/ha). Not part of
// npm test: it needs root, Debian's packages (scripts/ha/install.sh) and a few minutes.
export default defineConfig({
  test: {
    include: ['test/ha/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 240_000,
  },
});
