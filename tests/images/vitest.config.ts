import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The engine check and the fixture images; the app images are built by the test file's beforeAll.
    globalSetup: ['../../fixtures/src/global-setup.ts'],
    testTimeout: 60_000,
    // A cold scripts/build-images.sh (base image, two bundles, two docker builds) takes about half a minute.
    hookTimeout: 600_000,
  },
});
