#!/usr/bin/env node
// `pnpm release`: builds every package (turbo), runs the whole test suite, then `changeset publish`, which
// publishes every public package whose current version is not on the registry yet (it never changes a
// version: `pnpm version-packages` does that beforehand).
//
//   node scripts/release.mjs [--skip-tests] [--registry <url>] [changeset publish options...]
//
//   --skip-tests       skip `pnpm test` (the release rehearsal uses it: it runs inside `pnpm test` already)
//   --registry <url>   publish to this registry instead of the configured one, e.g. a local verdaccio
//   anything else      goes to `changeset publish`, e.g. --no-git-tag, --otp <code>, --tag next
//
// changeset publish asks npm (`npm info`) which versions exist, but publishes with pnpm. Since pnpm 11 the
// two read different environment variables (npm_config_* for npm, pnpm_config_* for pnpm), so a bare
// npm_config_registry would make changesets look at one registry and pnpm publish to another (the public
// one). --registry sets both, and the script refuses to publish while npm and pnpm disagree.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCOPE = '@sandbox';

function fail(message) {
  console.error(`release: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { skipTests: false, registry: undefined, publishArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--skip-tests') options.skipTests = true;
    else if (arg === '--registry' || arg.startsWith('--registry=')) {
      const value = arg === '--registry' ? argv[++i] : arg.slice('--registry='.length);
      if (!value || !/^https?:\/\//.test(value)) fail(`--registry needs an http(s) URL, got ${value}`);
      options.registry = value.endsWith('/') ? value : `${value}/`;
    } else options.publishArgs.push(arg);
  }
  return options;
}

function run(command, args, env) {
  console.log(`\nrelease: $ ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: ROOT, env, stdio: 'inherit' });
  if (result.error) fail(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0)
    fail(`${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
}

function configGet(command, key, env) {
  const result = spawnSync(command, ['config', 'get', key], { cwd: ROOT, env, encoding: 'utf8' });
  if (result.status !== 0) fail(`${command} config get ${key} failed: ${result.stderr || result.error}`);
  const value = result.stdout.trim();
  return value === '' || value === 'undefined' || value === 'null' ? undefined : value;
}

/** The registry a tool sends @sandbox/* to: the scoped setting when there is one, else the default. */
function scopeRegistry(command, env) {
  const value = configGet(command, `${SCOPE}:registry`, env) ?? configGet(command, 'registry', env);
  if (value === undefined) fail(`${command} has no registry configured`);
  return value.endsWith('/') ? value : `${value}/`;
}

const options = parseArgs(process.argv.slice(2));
const env = { ...process.env };
if (options.registry !== undefined) {
  for (const prefix of ['npm_config_', 'pnpm_config_']) {
    env[`${prefix}registry`] = options.registry;
    env[`${prefix}${SCOPE}:registry`] = options.registry;
  }
}

run('pnpm', ['run', 'build'], env);
if (options.skipTests) console.log('\nrelease: tests skipped (--skip-tests)');
else run('pnpm', ['test'], env);

const npmRegistry = scopeRegistry('npm', env);
const pnpmRegistry = scopeRegistry('pnpm', env);
if (npmRegistry !== pnpmRegistry) {
  fail(
    `npm and pnpm disagree on the registry of ${SCOPE}/*: npm says ${npmRegistry}, pnpm says ${pnpmRegistry}. ` +
      'changeset publish checks with npm and publishes with pnpm; pass --registry <url> or configure both.',
  );
}
console.log(`\nrelease: publishing ${SCOPE}/* to ${pnpmRegistry}`);
run(join(ROOT, 'node_modules/.bin/changeset'), ['publish', ...options.publishArgs], env);
