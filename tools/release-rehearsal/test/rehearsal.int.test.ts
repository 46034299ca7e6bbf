import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeCreatedContainers, startSessionContainer } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRegistry, startRegistry } from './registry.js';

// The release rehearsal: a real npm registry (verdaccio) on loopback, every package published to it by the
// release script itself (`node scripts/release.mjs`, as `pnpm release` runs it), then a fresh project that
// installs @sandbox/preview-core from it and uses it as ESM, as CommonJS and from TypeScript. Each step
// needs the one before it; a failure fails the rest, nothing is ever skipped.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONSUMER_SOURCES = fileURLToPath(new URL('../consumer/', import.meta.url));
const PUBLISHED_PACKAGES = 10;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
}

/** The workspace's public packages (packages/*), as the release script will publish them. */
const packages = readdirSync(join(ROOT, 'packages'))
  .filter((dir) => existsSync(join(ROOT, 'packages', dir, 'package.json')))
  .map((dir) => ({
    dir,
    manifest: JSON.parse(readFileSync(join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as Manifest,
  }))
  .filter(({ manifest }) => manifest.private !== true);
const previewCore = packages.find(({ manifest }) => manifest.name === '@sandbox/preview-core')?.manifest;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never rejects on a non-zero exit, the test asserts on the code. */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { ...options, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 4 * 60_000 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          if (error.killed) resolve({ code: null, stdout, stderr: `${stderr}\n(killed: ${error.message})` });
          else reject(error);
          return;
        }
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

function describeRun(label: string, result: RunResult): string {
  return `${label} exited ${result.code}\n--- stdout\n${result.stdout.slice(-8000)}\n--- stderr\n${result.stderr.slice(-8000)}`;
}

/** git status of the whole working tree (untracked files one by one) and its tags. */
async function repositoryState(): Promise<string> {
  const env = cleanEnv();
  const status = await run('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ROOT, env });
  const tags = await run('git', ['tag', '--list'], { cwd: ROOT, env });
  if (status.code !== 0 || tags.code !== 0) throw new Error(describeRun('git status / git tag', status));
  return `${status.stdout}--- tags\n${tags.stdout}`;
}

/**
 * This process's environment without npm or pnpm settings (the pnpm and turbo that started the test may
 * have set some), so that only the settings below decide where packages come from and go to.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^p?npm_config_/i.test(key)) env[key] = value;
  }
  return env;
}

let work: string;
let registry: LocalRegistry;
let userconfig: string;
let consumerDir: string;

/**
 * Environment of every npm/pnpm call: a user config of our own (never ~/.npmrc) holding the token for
 * the local registry; pnpm (since 11) reads its own variables, so it gets the same file as its auth file.
 */
function registryEnv(): NodeJS.ProcessEnv {
  return {
    ...cleanEnv(),
    npm_config_userconfig: userconfig,
    pnpm_config_npmrc_auth_file: userconfig,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'release-rehearsal-'));
  mkdirSync(join(work, 'registry'));
  registry = await startRegistry(join(work, 'registry'));
  const token = await registry.addUser('rehearsal', `pw-${process.pid}-${Date.now()}`);
  userconfig = join(work, 'npmrc');
  writeFileSync(userconfig, `${registry.nerfDart}:_authToken=${token}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await registry?.stop();
  await removeCreatedContainers();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('release rehearsal against a local registry', () => {
  it('finds the ten public packages in the workspace', () => {
    expect(packages.map(({ manifest }) => manifest.name).sort()).toEqual([
      '@sandbox/container-resolver',
      '@sandbox/error-contract',
      '@sandbox/preview-cli',
      '@sandbox/preview-core',
      '@sandbox/preview-registry',
      '@sandbox/preview-routes',
      '@sandbox/preview-server',
      '@sandbox/preview-state-redis',
      '@sandbox/proxy-core',
      '@sandbox/session-manager',
    ]);
    expect(packages).toHaveLength(PUBLISHED_PACKAGES);
  });

  it('publishes every package with the release script, leaving the working tree as it was', async () => {
    const before = await repositoryState();
    const release = await run(
      process.execPath,
      ['scripts/release.mjs', '--skip-tests', '--registry', registry.url, '--no-git-tag'],
      { cwd: ROOT, env: registryEnv() },
    );
    const after = await repositoryState();
    expect(release.code, describeRun('node scripts/release.mjs', release)).toBe(0);
    expect(release.stdout).toContain(`publishing @sandbox/* to ${registry.url}`);
    expect(after, 'git status and tags after the release script').toBe(before);

    for (const { manifest } of packages) {
      const view = await run(
        'npm',
        ['view', `${manifest.name}@${manifest.version}`, '--json', '--registry', registry.url],
        {
          cwd: work,
          env: registryEnv(),
        },
      );
      expect(view.code, describeRun(`npm view ${manifest.name}`, view)).toBe(0);
      const published = JSON.parse(view.stdout) as Manifest & { 'dist-tags': Record<string, string> };
      expect(published.version, manifest.name).toBe(manifest.version);
      expect(published['dist-tags'].latest, manifest.name).toBe(manifest.version);
      // pnpm rewrites workspace: ranges on publish; one left behind would make the package uninstallable.
      for (const [name, range] of Object.entries(published.dependencies ?? {})) {
        expect(range, `${manifest.name} -> ${name}`).not.toMatch(/^(workspace|link|file):/);
      }
    }
  });

  it('packs CHANGELOG.md into a tarball exactly when the package has one', async () => {
    const packDir = join(work, 'tarballs');
    mkdirSync(packDir);
    const seen: string[] = [];
    for (const { dir, manifest } of packages) {
      const pack = await run(
        'npm',
        [
          'pack',
          `${manifest.name}@${manifest.version}`,
          '--json',
          '--pack-destination',
          packDir,
          '--registry',
          registry.url,
        ],
        { cwd: work, env: registryEnv() },
      );
      expect(pack.code, describeRun(`npm pack ${manifest.name}`, pack)).toBe(0);
      const [packed] = JSON.parse(pack.stdout) as [{ files: { path: string }[] }];
      const files = packed.files.map(({ path }) => path);
      expect(files, manifest.name).toContain('package.json');
      const hasChangelog = existsSync(join(ROOT, 'packages', dir, 'CHANGELOG.md'));
      expect(files.includes('CHANGELOG.md'), `${manifest.name}: CHANGELOG.md in the tarball`).toBe(
        hasChangelog,
      );
      seen.push(
        `${manifest.name}: CHANGELOG.md ${hasChangelog ? 'packed' : 'absent (the package has none yet)'}`,
      );
    }
    console.log(seen.join('\n'));
  });

  it('installs @sandbox/preview-core (and the command line) from the registry into a fresh project', async () => {
    expect(previewCore, 'packages/preview-core/package.json').toBeDefined();
    const previewCli = packages.find(({ manifest }) => manifest.name === '@sandbox/preview-cli')?.manifest;
    expect(previewCli, 'packages/preview-cli/package.json').toBeDefined();
    consumerDir = mkdtempSync(join(work, 'consumer-'));
    cpSync(CONSUMER_SOURCES, consumerDir, { recursive: true });
    writeFileSync(
      join(consumerDir, 'package.json'),
      `${JSON.stringify(
        {
          name: 'release-rehearsal-consumer',
          version: '0.0.0',
          private: true,
          type: 'module',
          dependencies: {
            '@sandbox/preview-core': previewCore?.version,
            '@sandbox/preview-cli': previewCli?.version,
            express: '^5.1.0',
          },
          devDependencies: { '@types/express': '^5.0.0', '@types/node': '^22.15.0', typescript: '~5.9.0' },
        },
        null,
        2,
      )}\n`,
    );
    // Only the @sandbox scope comes from the local registry; everything else from the default one.
    writeFileSync(join(consumerDir, '.npmrc'), `@sandbox:registry=${registry.url}\n`);

    const install = await run('npm', ['install', '--no-audit', '--no-fund'], {
      cwd: consumerDir,
      env: registryEnv(),
    });
    expect(install.code, describeRun('npm install', install)).toBe(0);

    const lock = JSON.parse(readFileSync(join(consumerDir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; resolved?: string }>;
    };
    for (const { manifest } of packages) {
      const entry = lock.packages[`node_modules/${manifest.name}`];
      expect(entry?.version, `${manifest.name} installed`).toBe(manifest.version);
      expect(entry?.resolved, `${manifest.name} comes from the local registry`).toMatch(
        new RegExp(`^${registry.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      );
    }
    expect(lock.packages['node_modules/express']?.resolved).toMatch(/^https:\/\/registry\.npmjs\.org\//);
    // npm linked the command, and it runs.
    const version = await run(join(consumerDir, 'node_modules/.bin/sandbox-preview'), ['--version'], {
      cwd: consumerDir,
      env: cleanEnv(),
    });
    expect(version.code, describeRun('sandbox-preview --version', version)).toBe(0);
    expect(version.stdout.trim()).toBe(previewCli?.version);
  });

  it('ESM: mounts the routes in Express and proxies to a real container', async () => {
    const box = await startSessionContainer();
    const result = await run(process.execPath, ['consumer.mjs'], {
      cwd: consumerDir,
      env: { ...cleanEnv(), PREVIEW_SESSION_ID: box.sessionId },
    });
    expect(result.code, describeRun('node consumer.mjs', result)).toBe(0);
    expect(result.stdout.trim()).toBe('OK');
  });

  it('CommonJS: require() gets a working package', async () => {
    const result = await run(process.execPath, ['consumer.cjs'], { cwd: consumerDir, env: cleanEnv() });
    expect(result.code, describeRun('node consumer.cjs', result)).toBe(0);
    expect(result.stdout.trim()).toBe('OK');
  });

  it.each([
    ['node16 (ESM consumer.ts and CommonJS consumer.cts)', 'tsconfig.node16.json'],
    ['bundler (module esnext)', 'tsconfig.bundler.json'],
  ])('TypeScript: strict tsc --noEmit with moduleResolution %s', async (_label, tsconfig) => {
    const tsc = join(consumerDir, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', tsconfig], { cwd: consumerDir, env: cleanEnv() });
    expect(result.code, describeRun(`tsc -p ${tsconfig}`, result)).toBe(0);
  });
});
