import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/** A verdaccio started by {@link startRegistry}: loopback only, storage in a folder of the caller's. */
export interface LocalRegistry {
  /** `http://127.0.0.1:PORT/`, with the trailing slash npm and pnpm print. */
  readonly url: string;
  /** `//127.0.0.1:PORT/`: the key prefix of this registry's settings in an .npmrc. */
  readonly nerfDart: string;
  /** What verdaccio printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Creates a user through the registry's adduser endpoint and returns its token. */
  addUser(name: string, password: string): Promise<string>;
  /** SIGTERM, then SIGKILL if it is still running after 5 s. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 20_000;

function verdaccioBin(): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('verdaccio/package.json');
  const manifest = require(manifestPath) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.verdaccio;
  if (bin === undefined) throw new Error(`no verdaccio bin in ${manifestPath}`);
  return join(dirname(manifestPath), bin);
}

/** A port free on 127.0.0.1 right now (the OS picks it); the caller retries if someone takes it first. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port from the OS');
  return address.port;
}

// Every package is local: no uplink, so nothing is ever fetched from or proxied to another registry.
// Publishing needs a user (created through the adduser endpoint, as `npm adduser` does); reading is open.
// API tokens are JWTs, so requests are not slowed by a bcrypt check of the password each time.
function config(storage: string): string {
  return `storage: ${JSON.stringify(join(storage, 'storage'))}
auth:
  htpasswd:
    file: ${JSON.stringify(join(storage, 'htpasswd'))}
    max_users: 10
security:
  api:
    jwt:
      sign:
        expiresIn: 2h
uplinks: {}
packages:
  '@sandbox/*':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
web:
  enable: false
log: { type: stdout, format: pretty, level: warn }
`;
}

async function waitUntilReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `verdaccio exited (${child.exitCode ?? child.signalCode}) before it answered:\n${output()}`,
      );
    }
    try {
      const res = await fetch(`${url}-/ping`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
      lastError = new Error(`HTTP ${res.status}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `verdaccio did not answer ${url}-/ping within ${READY_TIMEOUT_MS} ms (${String(lastError)}):\n${output()}`,
  );
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function startOnce(folder: string, port: number): Promise<LocalRegistry> {
  const configFile = join(folder, 'config.yaml');
  writeFileSync(configFile, config(folder));
  const child = spawn(
    process.execPath,
    [verdaccioBin(), '--config', configFile, '--listen', `127.0.0.1:${port}`],
    {
      cwd: folder,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_ENV: 'production' },
    },
  );
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitUntilReady(url, child, () => output);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return {
    url,
    nerfDart: `//127.0.0.1:${port}/`,
    output: () => output,
    async addUser(name, password) {
      const res = await fetch(`${url}-/user/org.couchdb.user:${encodeURIComponent(name)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, password }),
      });
      const body = (await res.json()) as { token?: unknown; error?: unknown };
      if (res.status !== 201 || typeof body.token !== 'string') {
        throw new Error(`adduser ${name}: HTTP ${res.status} ${JSON.stringify(body)}`);
      }
      return body.token;
    },
    stop: () => stopChild(child),
  };
}

/** Starts verdaccio on 127.0.0.1 and a free port, its storage and configuration under `folder`. */
export async function startRegistry(folder: string): Promise<LocalRegistry> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(folder, await freePort());
    } catch (error) {
      lastError = error;
      // Only a port taken between freePort() and verdaccio's listen is worth another try.
      if (!/EADDRINUSE/.test(String(error))) throw error;
    }
  }
  throw lastError;
}
