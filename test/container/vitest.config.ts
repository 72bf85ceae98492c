import { defineConfig } from 'vitest/config';

/** The container-image test (scripts/test-container): podman + testcontainers, outside ./scripts/test. */
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/container/**/*.ctest.ts'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 900_000,
    maxWorkers: 1,
  },
});
