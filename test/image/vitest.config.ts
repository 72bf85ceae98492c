import { defineConfig } from 'vitest/config';

/** The image's fast checks (scripts/test-image-checks): root and a Debian tree, outside ./scripts/test. */
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/image/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 25 * 60_000,
    maxWorkers: 1,
  },
});
