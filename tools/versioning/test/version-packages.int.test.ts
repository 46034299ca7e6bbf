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
    // Direct dependents get a patch bump and the new range; so do their dependents in turn.
    for (const dir of ['container-resolver', 'proxy-core', 'preview-core']) {
      expect(after(dir).version, dir).toBe(bump(before[dir]?.version ?? '', 'patch'));
      expect(after(dir).dependencies?.['@sandbox/error-contract'], dir).toBe('workspace:^');
    }
    // A package that does not depend on error-contract stays as it was.
    expect(after('preview-registry').version).toBe(before['preview-registry']?.version);
    const changelog = readFileSync(join(workspace, 'packages/error-contract/CHANGELOG.md'), 'utf8');
    expect(changelog).toContain('A new error row.');
    expect(readFileSync(join(workspace, 'packages/preview-core/CHANGELOG.md'), 'utf8')).toContain(
      `@sandbox/error-contract@${errorContract.version}`,
    );
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
