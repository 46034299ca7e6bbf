import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Runs the real `changeset version` (what `pnpm version-packages` runs) on a copy of the workspace's
// manifests and changeset config, so the repository itself is never touched.
const ROOT = new URL('../../../', import.meta.url).pathname;
const CHANGESET_BIN = join(ROOT, 'node_modules/.bin/changeset');
const run = promisify(execFile);

type Manifest = { name: string; version: string; dependencies?: Record<string, string> };
let workspace: string;

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(workspace, 'packages', dir, 'package.json'), 'utf8')) as Manifest;
}

beforeAll(() => {
  workspace = mkdtempSync(join(tmpdir(), 'versioning-'));
  cpSync(join(ROOT, 'package.json'), join(workspace, 'package.json'));
  writeFileSync(join(workspace, 'pnpm-workspace.yaml'), 'packages:\n  - packages/*\n');
  mkdirSync(join(workspace, '.changeset'));
  cpSync(join(ROOT, '.changeset/config.json'), join(workspace, '.changeset/config.json'));
  for (const dir of readdirSync(join(ROOT, 'packages'))) {
    mkdirSync(join(workspace, 'packages', dir), { recursive: true });
    cpSync(join(ROOT, 'packages', dir, 'package.json'), join(workspace, 'packages', dir, 'package.json'));
  }
});

afterAll(() => {
  rmSync(workspace, { recursive: true, force: true });
});

describe('changeset version', () => {
  it('bumps the changed package and every internal dependent, rewriting their ranges', async () => {
    const before = Object.fromEntries(
      readdirSync(join(workspace, 'packages')).map((dir) => [dir, manifest(dir)]),
    );
    writeFileSync(
      join(workspace, '.changeset/fix-error-body.md'),
      '---\n"@sandbox/error-contract": minor\n---\n\nA new error row.\n',
    );
    await run(CHANGESET_BIN, ['version'], { cwd: workspace });

    const bump = (version: string, part: 'minor' | 'patch') => {
      const [major, minor, patch] = version.split('.').map(Number) as [number, number, number];
      return part === 'minor' ? `${major}.${minor + 1}.0` : `${major}.${minor}.${patch + 1}`;
    };
    const after = (dir: string) => manifest(dir);
    const errorContract = after('error-contract');
    expect(errorContract.version).toBe(bump(before['error-contract']?.version ?? '', 'minor'));
    // Direct dependents get a patch bump and the new range; so do their dependents in turn. Every
    // package depends on error-contract, which holds the contract's names as well as its errors.
    for (const dir of ['container-resolver', 'preview-registry', 'proxy-core', 'preview-core']) {
      expect(after(dir).version, dir).toBe(bump(before[dir]?.version ?? '', 'patch'));
      expect(after(dir).dependencies?.['@sandbox/error-contract'], dir).toBe('workspace:^');
    }
    const changelog = readFileSync(join(workspace, 'packages/error-contract/CHANGELOG.md'), 'utf8');
    expect(changelog).toContain('A new error row.');
    expect(readFileSync(join(workspace, 'packages/preview-core/CHANGELOG.md'), 'utf8')).toContain(
      `@sandbox/error-contract@${errorContract.version}`,
    );
  });

  it('leaves alone a package that does not depend on the changed one', async () => {
    const before = Object.fromEntries(
      readdirSync(join(workspace, 'packages')).map((dir) => [dir, manifest(dir)]),
    );
    writeFileSync(
      join(workspace, '.changeset/registry-change.md'),
      '---\n"@sandbox/preview-registry": minor\n---\n\nA registry change.\n',
    );
    await run(CHANGESET_BIN, ['version'], { cwd: workspace });
    // The resolver validates with error-contract's names, not the registry's: it is not a dependent.
    for (const dir of ['container-resolver', 'error-contract', 'proxy-core'])
      expect(manifest(dir).version, dir).toBe(before[dir]?.version);
    expect(manifest('preview-core').dependencies?.['@sandbox/preview-registry']).toBe('workspace:^');
    expect(manifest('preview-core').version).not.toBe(before['preview-core']?.version);
  });
});

describe("the repository's pending changesets", () => {
  it('all parse, so a release can be cut from main', async () => {
    // A formatter that reflows the front matter (turning it into a heading) breaks `changeset version`
    // at release time only; `status` reads every pending changeset the same way.
    const { stdout } = await run(CHANGESET_BIN, ['status', '--verbose'], { cwd: ROOT });
    for (const file of readdirSync(join(ROOT, '.changeset')).filter((name) => name.endsWith('.md'))) {
      if (file === 'README.md') continue;
      expect(stdout, file).toContain(file.replace(/\.md$/, ''));
    }
  });
});
