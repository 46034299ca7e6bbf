import { defineConfig } from 'tsup';

// Published as ESM + CommonJS. Explicit .mjs/.cjs extensions make each file's format unambiguous to Node
// and TypeScript whatever package.json "type" says. The declarations come out as .d.ts/.d.cts: tsup drops
// `outExtension` for its declaration worker (tsup issue #939), so the build script renames the ESM one
// to .d.mts, the declaration file TypeScript pairs with index.mjs.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  outExtension: ({ format }) => ({ js: format === 'cjs' ? '.cjs' : '.mjs' }),
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
});
