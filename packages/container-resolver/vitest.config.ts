import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration tests start and stop real containers.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
