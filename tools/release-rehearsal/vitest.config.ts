import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run when the Docker engine is unreachable, builds the fixture images, removes leftovers.
    globalSetup: ['../../fixtures/src/global-setup.ts'],
    // Building, publishing and installing from the registry take minutes on a 2-core machine.
    testTimeout: 5 * 60_000,
    hookTimeout: 2 * 60_000,
  },
});
