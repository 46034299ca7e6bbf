import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Unit tests next to the code; integration tests (a real redis-server) under test/.
    include: ['src/**/*.test.ts', 'test/**/*.int.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
