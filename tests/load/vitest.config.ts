import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The engine check and the fixture images.
    globalSetup: ['../../fixtures/src/global-setup.ts'],
    // The load run itself lasts 60 s, plus warm-up and sampling.
    testTimeout: 180_000,
    // One run at a time: each measures the machine (sockets, memory, latency) while it loads it.
    fileParallelism: false,
    hookTimeout: 120_000,
  },
});
