import { defineConfig } from 'tsup';

// The app ships as one bundle of its own code and the workspace packages; npm dependencies stay external.
export default defineConfig({
  entry: ['src/main.ts'],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  noExternal: [/^@sandbox\//],
});
