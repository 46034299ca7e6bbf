import { defineConfig } from 'tsup';
import shared from '../../tsup.package.config.js';

// The library builds as every package does; the command is one more ESM file, dist/bin.mjs, with its
// shebang (npm makes it executable when it links the bin).
// dist is emptied by the build script, not by tsup: the two builds run side by side.
export default defineConfig([
  { ...shared, clean: false },
  {
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    outExtension: () => ({ js: '.mjs' }),
    sourcemap: true,
    clean: false,
    target: 'node22',
  },
]);
