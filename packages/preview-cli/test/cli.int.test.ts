import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AppProcess,
  docker,
  FIXTURE_NODE_IMAGE,
  freePort,
  httpRequest,
  startAppProcess,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The real `sandbox-preview` binary (the package's dist/bin.mjs, built as it is published) in a process of
// its own, against a real container-manager process on a real Docker engine.

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(PACKAGE_DIR, 'dist/bin.mjs');
const MANAGER_DIR = dirname(
  createRequire(import.meta.url).resolve('@sandbox/container-manager/package.json'),
);
const KEY = 'cli-test-key-5d1e';
const { version } = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
  version: string;
};

let manager: AppProcess;
const sessions: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'sandbox-cli-test-'));

// Built when missing or older than its sources: the test runs what npm would install.
function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    newest = Math.max(newest, name.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

beforeAll(async () => {
  const sources = Math.max(
    newestSource(join(PACKAGE_DIR, 'src')),
    statSync(join(PACKAGE_DIR, 'package.json')).mtimeMs,
  );
  if (!existsSync(BIN) || statSync(BIN).mtimeMs < sources)
    execFileSync('pnpm', ['run', 'build'], { cwd: PACKAGE_DIR, stdio: 'ignore' });
  manager = await startAppProcess({
    appDir: MANAGER_DIR,
    env: { INTERNAL_SERVICE_KEY: KEY, SESSION_MEMORY: '256m' },
  });
});

afterAll(async () => {
  await manager?.stop();
  await Promise.all(sessions.map((id) => docker(['rm', '-f', `sandbox-session-${id}`]).catch(() => {})));
  rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, [BIN, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      SANDBOX_MANAGER_URL: manager.url,
      SANDBOX_MANAGER_KEY: KEY,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = start(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A failure: one line on stderr, nothing on stdout, the exit code. */
function expectOneLineError(run: Run, code: number, pattern: RegExp) {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(pattern);
  if (code === 1) expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
}

async function until<T>(
  attempt: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('sandbox-preview', () => {
  const id = uniqueSessionId('cli');

  it('prints its usage and version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: sandbox-preview');
    for (const command of ['up IMAGE', 'ls', 'open ID', 'logs ID', 'exec ID -- CMD', 'rm ID'])
      expect(help.stdout).toContain(command);
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('up: creates and starts a session from an image, and prints its id and URL', async () => {
    sessions.push(id);
    const up = await cli(['up', FIXTURE_NODE_IMAGE, '--port', '3000', '--id', id, '-e', 'GREETING=hi there']);
    expect(up.code, up.stderr).toBe(0);
    const [first, second] = up.stdout.trimEnd().split('\n');
    expect(first).toBe(id);
    expect(second).toMatch(new RegExp(`^3000\\s+http://localhost:\\d+/previews/${id}/`));
  });

  it('ls: lists it, running, with its port once it answers', async () => {
    const listed = await until(
      () => cli(['ls']),
      (run) => run.stdout.includes(`${id}  `) && !/3000\*/.test(run.stdout),
    );
    expect(listed.code).toBe(0);
    const [header, ...rows] = listed.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^SESSION\s+STATE\s+IMAGE\s+PORTS\s+URL$/);
    const row = rows.find((line) => line.startsWith(id));
    expect(row).toMatch(new RegExp(`^${id}\\s+running\\s+${FIXTURE_NODE_IMAGE}\\s+3000\\s+http://`));
    const json = JSON.parse((await cli(['ls', '--json'])).stdout) as {
      sessionId: string;
      running: boolean;
    }[];
    expect(json.find((session) => session.sessionId === id)).toMatchObject({ running: true });
  });

  it('open: prints the preview URL and opens it in $BROWSER', async () => {
    const printed = await cli(['open', id, '--print']);
    expect(printed).toEqual({ code: 0, stdout: `${manager.url}/previews/${id}/\n`, stderr: '' });
    // The URL serves the app.
    const served = await httpRequest(manager.url, `/previews/${id}/from-open`);
    expect(served.status).toBe(200);
    const opened = join(tmp, 'opened.txt');
    const browser = join(tmp, 'browser.sh');
    writeFileSync(browser, `#!/bin/sh\necho "$1" > ${opened}\n`);
    chmodSync(browser, 0o755);
    const run = await cli(['open', id, '3000'], { BROWSER: browser });
    expect(run.code).toBe(0);
    const url = await until(
      async () => (existsSync(opened) ? readFileSync(opened, 'utf8') : ''),
      (text) => text !== '',
    );
    expect(url).toBe(`${manager.url}/previews/${id}/\n`);
    expectOneLineError(
      await cli(['open', id, '4000']),
      1,
      /Port 4000 is not registered.*\(404 PORT_NOT_REGISTERED\)/,
    );
  });

  it('logs: prints the request log, as text or JSON lines', async () => {
    await httpRequest(manager.url, `/previews/${id}/logged?token=secret-token`);
    const run = await until(
      () => cli(['logs', id]),
      (result) => result.stdout.includes('/logged'),
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  200  GET /previews/${id}/logged  [\\d.]+ ms  [\\d.]+ (B|KiB)`,
      ),
    );
    expect(run.stdout).not.toContain('secret-token');
    const lines = (await cli(['logs', id, '--json'])).stdout.trimEnd().split('\n');
    const entries = lines.map((line) => JSON.parse(line) as { path: string; status: number });
    expect(entries.find((entry) => entry.path === `/previews/${id}/logged`)).toMatchObject({ status: 200 });
  });

  it('logs -f: follows the log live until Ctrl-C', async () => {
    const child = start(['logs', id, '-f']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const closed = once(child, 'close');
    // What is kept comes first...
    await until(
      async () => stdout,
      (text) => text.includes('/logged'),
    );
    expect(stdout).toContain(`GET /previews/${id}/logged`);
    // ...then each request as it ends.
    await httpRequest(manager.url, `/previews/${id}/live-one`);
    await until(
      async () => stdout,
      (text) => text.includes('/live-one'),
    );
    expect(stdout).toMatch(new RegExp(`200  GET /previews/${id}/live-one`));
    child.kill('SIGINT');
    const [code] = (await closed) as [number | null];
    expect(code).toBe(0);
  });

  it('exec: streams the output and exits with the command’s code', async () => {
    const run = await cli(['exec', id, '--', 'sh', '-c', 'echo "out $GREETING"; echo err >&2; exit 3']);
    expect(run).toEqual({ code: 3, stdout: 'out hi there\n', stderr: 'err\n' });
    expect((await cli(['exec', id, '--', 'true'])).code).toBe(0);
  });

  it('up --keep-prefix: the app gets the whole path, as a dev server told its base wants', async () => {
    const kept = uniqueSessionId('cli');
    sessions.push(kept);
    const up = await cli(['up', FIXTURE_NODE_IMAGE, '-p', '3000', '--id', kept, '--keep-prefix']);
    expect(up.code, up.stderr).toBe(0);
    const seen = await until(
      () => httpRequest(manager.url, `/previews/${kept}/some/page`),
      (reply) => reply.status === 200,
    );
    expect(seen.json()).toMatchObject({ url: `/previews/${kept}/some/page` });
    expect((await cli(['rm', kept])).code).toBe(0);
  });

  it('rm: removes the session, and says so; a second rm is the contract’s 404', async () => {
    const run = await cli(['rm', id]);
    expect(run).toEqual({ code: 0, stdout: `removed ${id} (ports 3000)\n`, stderr: '' });
    await expect(docker(['inspect', `sandbox-session-${id}`])).rejects.toThrow();
    expectOneLineError(await cli(['rm', id]), 1, new RegExp(`${id}.*\\(404 SESSION_NOT_FOUND\\)\\n$`));
  });
});

describe('sandbox-preview errors', () => {
  it('prints the contract’s error in one line and exits 1', async () => {
    expectOneLineError(
      await cli(['ls'], { SANDBOX_MANAGER_KEY: 'wrong' }),
      1,
      /^sandbox-preview: Forbidden \(403 FORBIDDEN\)\n$/,
    );
    expectOneLineError(
      await cli(['up', 'not an image']),
      1,
      /^sandbox-preview: .*image.* \(400 INVALID_SESSION_REQUEST\)\n$/,
    );
    expectOneLineError(await cli(['up', 'sandbox-no-such-image:latest']), 1, /\(404 IMAGE_NOT_FOUND\)\n$/);
    expectOneLineError(await cli(['logs', 'bad id']), 1, /\(400 INVALID_SESSION_ID\)\n$/);
    expectOneLineError(await cli(['exec', 'nobody-here', '--', 'true']), 1, /\(404 SESSION_NOT_FOUND\)\n$/);
    expectOneLineError(
      await cli(['open', 'nobody-here']),
      1,
      /^sandbox-preview: Session nobody-here has no registered port/,
    );
  });

  it('says when the manager cannot be reached', async () => {
    const port = await freePort();
    expectOneLineError(
      await cli(['ls'], { SANDBOX_MANAGER_URL: `http://127.0.0.1:${port}` }),
      1,
      new RegExp(
        `^sandbox-preview: cannot reach the manager at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`,
      ),
    );
  });

  it('refuses a command line it cannot run, with exit code 2', async () => {
    const usage = /Run 'sandbox-preview --help' for usage\.\n$/;
    expectOneLineError(await cli([]), 2, usage);
    expectOneLineError(await cli(['frobnicate']), 2, /unknown command: frobnicate/);
    // Names every object has are not commands either.
    expectOneLineError(await cli(['toString', 'abc']), 2, /unknown command: toString/);
    expectOneLineError(await cli(['__proto__', 'abc']), 2, /unknown command: __proto__/);
    expectOneLineError(
      await cli(['ls'], { SANDBOX_MANAGER_KEY: '' }),
      2,
      /no key: pass --key or set SANDBOX_MANAGER_KEY/,
    );
    expectOneLineError(await cli(['ls', '--port', '3']), 2, /ls takes no --port/);
    expectOneLineError(await cli(['up', 'img', '--port', '70000']), 2, /not a port: 70000/);
    expectOneLineError(await cli(['exec', 'abc']), 2, /exec takes ID -- CMD/);
    expectOneLineError(await cli(['ls', '--nope']), 2, /Unknown option '--nope'/);
  });

  it('takes the key from INTERNAL_SERVICE_KEY and the URL from --url as well', async () => {
    const run = await cli(['ls', '--url', manager.url], {
      SANDBOX_MANAGER_KEY: '',
      INTERNAL_SERVICE_KEY: KEY,
      SANDBOX_MANAGER_URL: '',
    });
    expect(run.code, run.stderr).toBe(0);
  });
});
