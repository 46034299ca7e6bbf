import { readdirSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// Every test/*-image-setup.ts builds one fixture image (Vite, Next.js, Jupyter...) when its inputs changed.
const imageSetups = readdirSync(new URL('./test/', import.meta.url))
  .filter((name) => name.endsWith('-image-setup.ts'))
  .sort()
  .map((name) => `./test/${name}`);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fixture images (and the engine check), then the dev-server images; all idempotent and quick when built.
    globalSetup: ['../../fixtures/src/global-setup.ts', ...imageSetups],
    // Each file runs its own Chromium and container-manager; one at a time keeps a 2-core machine calm.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
