import { defineConfig } from 'tsup';

// The app ships as one bundle of its own code and the workspace packages; npm dependencies (listed in
// this package.json) stay external, so native extras such as dockerode's ssh2 are never bundled.
export default defineConfig({
  entry: ['src/main.ts'],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node22',
  noExternal: [/^@sandbox\//],
  external: [/^(?!@sandbox\/)[a-z@]/],
});
