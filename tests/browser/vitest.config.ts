import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fixture images (and the engine check), then the Vite image; both idempotent and quick when built.
    globalSetup: ['../../fixtures/src/global-setup.ts', './test/vite-image-setup.ts'],
    // Each file runs its own Chromium and container-manager; one at a time keeps a 2-core machine calm.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
