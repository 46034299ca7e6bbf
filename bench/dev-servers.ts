// Benchmark (not a test): what a person working on a real dev server feels through container-manager, side
// by side with nginx and with a direct connection to the container, in one run. It prints numbers; it does
// not judge them.
//
// Sets everything up itself: builds the fixture images when their inputs changed (fixtures/build-*-image.sh,
// idempotent); installs Debian's nginx-light when missing (as root on Debian; else says what to install);
// starts one session container per framework (`sandbox-session-<id>`, labelled as the tests label theirs),
// shared by the three paths so that they meet the same warm dev server:
//   vite     sandbox-fixture-vite     Vite 7 dev server on :5173 (root base)
//   next     sandbox-fixture-next     Next 16 `next dev` (Turbopack) on :3000
//   jupyter  sandbox-fixture-jupyter  classic Notebook 6 on :8888, with its random token
// container-manager as `pnpm start` runs it (`node --import tsx src/main.ts` in apps/container-manager, with
// INTERNAL_SERVICE_KEY, PORT and PREVIEW_DOMAIN=preview.example.test, everything else its defaults: access log
// on), each port registered through the internal API; nginx (1 worker, a temporary prefix, in the foreground
// as a child, access log on like ours) as a reverse proxy with one server per preview host name, WebSocket
// upgrades passed, and the page's same-origin requests presented to the app as addressed to localhost:<port>
// (Host, and Origin when it names the page's own host), which is what ours does on a host route and what
// the dev servers need there; and headless Debian Chromium (playwright-core) resolving
// *.preview.example.test to loopback. The three paths, from Chromium:
//   direct  http://<container ip>:<port>/ (Next: http://<id>.localhost:3000/, mapped to the container's ip:
//           Next refuses its HMR WebSocket to any Origin hostname but localhost and *.localhost)
//   nginx   http://<port>-<id>.preview.example.test:<nginx port>/
//   ours    http://<port>-<id>.preview.example.test:<manager port>/
//
// Measured, in alternating rounds (direct, nginx, ours, direct, ...; 7 by default, --rounds) after one
// unmeasured warm-up round (the dev servers compile on first use), each page in a fresh browser context
// (empty cache, new connections):
// 1. Time to first render: from page.goto until the app's content is there, as the page itself records it
//    (an init script's MutationObserver writes Date.now() into the page; node took Date.now() before goto:
//    one machine, one clock). Vite: `#msg` says `hello from vite`. Next: hydrated (`[data-hydrated=yes]`,
//    set by the counter's effect), then checked by a click on `#count`. Jupyter: demo.ipynb with its
//    kernel connected and idle.
// 2. HMR latency (Vite, Next Fast Refresh), twice per page: once the page's HMR socket is up, from just
//    before the edit is written into the container until a MutationObserver in the page sees the new text
//    in `#msg`; then the file is put back as it was, measured the same way (so every page load sees the
//    original app). The edit goes through a `docker exec -i <container> sh` opened before the rounds, so
//    that exec's own start (100-300 ms, varying with the machine's load) is not in the figure; the time the
//    shell took to confirm the write is recorded next to it. `--exec fresh` runs one `docker exec` per edit
//    instead, as an agent would.
// A page during which Chromium aborted a request with ERR_NETWORK_CHANGED (the host's interfaces change
// whenever anyone starts or stops a container here) is thrown away and measured again, up to 3 tries; the
// run lists them.
//
// Prints, per framework, metric and path, the median and p90 (nearest rank) of the samples, and the ratios
// of the medians ours/direct and ours/nginx, with the machine's load average; writes
// bench/results/dev-servers.json. It stops by itself (a watchdog bounds the run), and cleans up Chromium,
// nginx, container-manager, the exec shells, the containers and the temporary directory, also on failure
// and on SIGINT/SIGTERM.
//
// The script is `node --import tsx dev-servers.ts`, not `tsx dev-servers.ts`: tsx's parent process relays a
// Ctrl-C to its child and SIGKILLs it when the child is slow (30 ms) to acknowledge it, as on a loaded
// machine, which cut the cleanup short and left the containers behind.
//
//   pnpm --filter @sandbox/bench bench:dev                      # about 2 minutes on 2 cores
//   pnpm --filter @sandbox/bench bench:dev --rounds 3 --frameworks vite,next
//   pnpm --filter @sandbox/bench bench:dev --exec fresh         # one docker exec per edit
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  assertDockerEngine,
  docker,
  RUN_LABEL,
  SESSION_CONTAINER_PREFIX,
  TEST_LABEL,
  testRunId,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { type Browser, chromium, type Page } from 'playwright-core';
import {
  APP_DIR,
  codeUnderTest,
  ensureExecutables,
  freePort,
  KEY,
  median,
  type NginxProcess,
  nginxErrorLog,
  numberFlag,
  RESULTS_DIR,
  ROOT_DIR,
  registerPreview,
  removeTempDirs,
  round,
  runBenchmark,
  type Service,
  sleep,
  spawnNginx,
  startService,
  stopChildren,
  tempDir,
  track,
} from './support.js';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------
// Configuration.

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string' },
    frameworks: { type: 'string' },
    exec: { type: 'string' },
  },
});

const ROUNDS = Math.floor(numberFlag(flags.rounds, 'rounds', 7, 1, 30));
const EXEC_MODE = flags.exec ?? 'shell';
if (EXEC_MODE !== 'shell' && EXEC_MODE !== 'fresh')
  throw new Error(`--exec must be shell or fresh, got ${EXEC_MODE}`);

type PathName = 'direct' | 'nginx' | 'ours';
const PATHS: PathName[] = ['direct', 'nginx', 'ours'];
type FrameworkName = 'vite' | 'next' | 'jupyter';
const ALL_FRAMEWORKS: FrameworkName[] = ['vite', 'next', 'jupyter'];
const FRAMEWORKS: FrameworkName[] = flags.frameworks
  ? flags.frameworks.split(',').map((raw) => {
      const name = raw.trim() as FrameworkName;
      if (!ALL_FRAMEWORKS.includes(name))
        throw new Error(`unknown framework ${raw}; frameworks: ${ALL_FRAMEWORKS.join(', ')}`);
      return name;
    })
  : ALL_FRAMEWORKS;

const DOMAIN = 'preview.example.test';
const RESULTS_FILE = join(RESULTS_DIR, 'dev-servers.json');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** As tests/browser/test/support.ts launches it: what Debian's chromium needs headless as root here. */
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** How long one page may take to render, and one edit to show; past it the sample is a failure. */
const PAGE_TIMEOUT_MS = 60_000;
const HMR_TIMEOUT_MS = 30_000;
/** Between two pages and two edits: lets the dev server finish what the last one started. */
const SETTLE_MS = 300;
/** Tries of one page when the host's network changed under it (see NetworkChanged). */
const NETWORK_CHANGED_ATTEMPTS = 3;

// Upper bound of the whole run: image builds (minutes when cold), Next's first compile, then the rounds
// (about 30 s each on a busy 2-core machine, with a wide margin).
const WATCHDOG_MS = 12 * 60_000 + (ROUNDS + 1) * FRAMEWORKS.length * 40_000;

// ---------------------------------------------------------------------------------------------------------
// The frameworks.

interface Framework {
  name: FrameworkName;
  image: string;
  buildScript: string;
  port: number;
  /** What "rendered" means, for the table. */
  renderedLabel: string;
  /** A JavaScript expression, true in the page once the app is rendered (see readyScript). */
  readyCondition: string;
  /** Checks the condition on a timer too: Jupyter's kernel state is not in the DOM alone. */
  pollReady: boolean;
  /** The shell command that writes the app's message file with `text` (a plain phrase, no quotes). */
  edit?: { label: string; original: string; command: (text: string) => string; connected: HmrSignal };
  /** How long the container may take to serve its first page (Next compiles it then). */
  startTimeoutMs: number;
}

type HmrSignal = 'vite-console' | 'turbopack-frame';

const FRAMEWORK: Record<FrameworkName, Framework> = {
  vite: {
    name: 'vite',
    image: 'sandbox-fixture-vite:latest',
    buildScript: join(ROOT_DIR, 'fixtures/build-vite-image.sh'),
    port: 5173,
    renderedLabel: 'first render',
    readyCondition: `document.getElementById('msg')?.textContent === 'hello from vite'`,
    pollReady: false,
    edit: {
      label: 'HMR',
      original: 'hello from vite',
      // The edit of the image's own instructions; `echo` writes exactly the original file back.
      command: (text) => `echo "export const message = '${text}';" > /app/message.js`,
      connected: 'vite-console',
    },
    startTimeoutMs: 60_000,
  },
  next: {
    name: 'next',
    image: 'sandbox-fixture-next:latest',
    buildScript: join(ROOT_DIR, 'fixtures/build-next-image.sh'),
    port: 3000,
    renderedLabel: 'hydrated',
    // The counter's effect marks it once React hydrated it; the click after confirms the button works.
    readyCondition: `document.querySelector('[data-hydrated="yes"]') !== null`,
    pollReady: false,
    edit: {
      label: 'Fast Refresh',
      original: 'hello from next',
      // app/message.js as build-next-image.sh writes it, byte for byte, with the text replaced.
      command: (text) =>
        `printf '%s\\n' 'export default function Message() {' '  return <p id="msg">${text}</p>;' '}' > /app/app/message.js`,
      connected: 'turbopack-frame',
    },
    // A cold `next dev` compiles the page on its first request: tens of seconds on a busy machine.
    startTimeoutMs: 240_000,
  },
  jupyter: {
    name: 'jupyter',
    image: 'sandbox-fixture-jupyter:latest',
    buildScript: join(ROOT_DIR, 'fixtures/build-jupyter-image.sh'),
    port: 8888,
    renderedLabel: 'kernel idle',
    readyCondition:
      `window.Jupyter?.notebook?.kernel?.is_connected?.() === true &&` +
      ` document.querySelector('#kernel_indicator_icon')?.classList.contains('kernel_idle_icon') === true`,
    pollReady: true,
    startTimeoutMs: 90_000,
  },
};

/**
 * Runs in every page before its own scripts: records in window.__benchReadyAt the Date.now() at which the
 * ready condition first held, from a MutationObserver (the DOM change that made it true, before paint), and
 * for Jupyter also from a 10 ms timer. Plain strings, not functions: tsx would wrap named functions in a
 * helper that does not exist in the page.
 */
function readyScript(fw: Framework): string {
  return `(() => {
  const ready = () => { try { return ${fw.readyCondition}; } catch { return false; } };
  let observer;
  let timer;
  const check = () => {
    if (window.__benchReadyAt !== undefined || !ready()) return;
    window.__benchReadyAt = Date.now();
    observer.disconnect();
    if (timer !== undefined) clearInterval(timer);
  };
  observer = new MutationObserver(check);
  observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  ${fw.pollReady ? 'timer = setInterval(check, 10);' : ''}
})();`;
}

/** Arms an observer that records in window.__benchHmrAt when #msg first says `text`. */
function hmrObserverScript(text: string): string {
  return `(() => {
  window.__benchHmrObserver?.disconnect();
  window.__benchHmrAt = undefined;
  const want = ${JSON.stringify(text)};
  const observer = new MutationObserver(() => {
    if (window.__benchHmrAt === undefined && document.getElementById('msg')?.textContent === want) {
      window.__benchHmrAt = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  window.__benchHmrObserver = observer;
})();`;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers.

const load1 = () => round(loadavg()[0] ?? 0, 2);
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Nearest rank: with 7 samples the p90 is the largest, with 14 the 13th. */
function p90(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.ceil(0.9 * sorted.length)) - 1] ?? Number.NaN;
}

/** A GET with a Host header of our choosing (fetch does not let one set Host): status and body. */
function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host ? { host } : {}, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------------
// The containers, by name (the child processes and the temporary directory: support.ts's track, tempDir).

/** Names of the containers this run started (or is starting): removed by name on the way out. */
const containerNames = new Set<string>();

// ---------------------------------------------------------------------------------------------------------
// Tools and images.

/** The build scripts are idempotent (quick when the inputs did not change); one after the other, as they lock. */
async function ensureImages(): Promise<void> {
  for (const name of FRAMEWORKS) {
    const script = FRAMEWORK[name].buildScript;
    try {
      const { stdout } = await execFileAsync('bash', [script], {
        encoding: 'utf8',
        timeout: 15 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      console.log(`  ${stdout.trim().split('\n').at(-1) ?? ''}`);
    } catch (error) {
      const stderr = (error as { stderr?: unknown }).stderr;
      throw new Error(
        `${script} failed: ${typeof stderr === 'string' && stderr ? stderr.trim() : errorText(error)}`,
      );
    }
  }
}

async function toolVersion(file: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { timeout: 10_000 });
    return `${stdout}${stderr}`.split('\n')[0]?.trim() ?? '';
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Session containers: one per framework, shared by the three paths.

interface App {
  fw: Framework;
  sessionId: string;
  name: string;
  id: string;
  ip: string;
  /** Jupyter's random token, from its log. */
  token: string;
  /** Writes a shell command into the container; resolves with Date.now() once the shell confirmed it. */
  run(command: string): Promise<number>;
  /** Hosts and URLs of each path (filled once nginx and the manager listen). */
  urls: Record<PathName, string>;
  hosts: Partial<Record<PathName, string>>;
}

async function containerLogs(id: string): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync('docker', ['logs', id], {
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    return `${stdout}${stderr}`;
  } catch (error) {
    return `(docker logs failed: ${errorText(error)})`;
  }
}

async function startApp(fw: Framework): Promise<App> {
  // Host names are case-insensitive and the proxy lowercases them: the id must be lowercase to match.
  const sessionId = uniqueSessionId(`bench${fw.name}`).toLowerCase();
  const name = `${SESSION_CONTAINER_PREFIX}${sessionId}`;
  containerNames.add(name);
  const id = await docker([
    'run',
    '-d',
    '--name',
    name,
    '--label',
    `${TEST_LABEL}=1`,
    '--label',
    `${RUN_LABEL}=${testRunId()}`,
    fw.image,
  ]);
  const ip = (
    await docker(['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', id])
  ).split(' ')[0];
  if (!ip) throw new Error(`container ${name} has no IP address`);
  const app: App = {
    fw,
    sessionId,
    name,
    id,
    ip,
    token: '',
    run: EXEC_MODE === 'shell' ? execShell(id) : freshExec(id),
    urls: { direct: '', nginx: '', ours: '' },
    hosts: {},
  };
  await waitUntilServing(app);
  return app;
}

/** Polls the app directly until it serves its page (Next compiles it on this first request). */
async function waitUntilServing(app: App): Promise<void> {
  const started = Date.now();
  const deadline = started + app.fw.startTimeoutMs;
  let last = '';
  for (;;) {
    if (app.fw.name === 'jupyter' && app.token === '') {
      app.token = /[?&]token=([0-9a-f]+)/.exec(await containerLogs(app.id))?.[1] ?? '';
    }
    const path = app.fw.name === 'jupyter' ? '/api' : '/';
    if (app.fw.name !== 'jupyter' || app.token !== '') {
      try {
        const res = await get(`http://${app.ip}:${app.fw.port}${path}`);
        if (res.status === 200) break;
        last = `${res.status} ${res.body.slice(0, 200)}`;
      } catch (error) {
        last = errorText(error);
      }
    }
    if (Date.now() > deadline)
      throw new Error(
        `${app.fw.name} did not serve ${path} within ${app.fw.startTimeoutMs / 1000} s (last: ${last});` +
          ` logs:\n${(await containerLogs(app.id)).slice(-4000)}`,
      );
    await sleep(250);
  }
  console.log(
    `  ${app.fw.name}: ${app.name} at ${app.ip}:${app.fw.port}, serving after ${round((Date.now() - started) / 1000)} s`,
  );
}

/**
 * A `docker exec -i <id> sh` opened once: each command is a line on its stdin, followed by an echo of a
 * marker that says when the shell got past it. The command reaches the container within milliseconds,
 * where a new exec would first spend 100-300 ms starting.
 */
function execShell(id: string): (command: string) => Promise<number> {
  let child: ChildProcess | undefined;
  let output = '';
  let counter = 0;
  const waiters = new Map<string, (at: number) => void>();
  const open = () => {
    const shell = track(spawn('docker', ['exec', '-i', id, 'sh'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    shell.stdout?.on('data', (chunk: Buffer) => {
      const at = Date.now();
      output = (output + chunk.toString()).slice(-4096);
      for (const [marker, resolve] of waiters) {
        if (output.includes(marker)) {
          waiters.delete(marker);
          resolve(at);
        }
      }
    });
    shell.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4096);
    });
    return shell;
  };
  return (command) => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) child = open();
    counter += 1;
    const marker = `__bench_done_${counter}__`;
    const done = new Promise<number>((resolve, reject) => {
      waiters.set(marker, resolve);
      setTimeout(() => {
        if (waiters.delete(marker)) reject(new Error(`the exec shell did not run ${command}: ${output}`));
      }, 20_000);
    });
    child.stdin?.write(`${command}; echo ${marker}\n`);
    return done;
  };
}

/** `--exec fresh`: one `docker exec` per edit, resolved when it returned. */
function freshExec(id: string): (command: string) => Promise<number> {
  return async (command) => {
    await execFileAsync('docker', ['exec', id, 'sh', '-c', command], { timeout: 20_000 });
    return Date.now();
  };
}

// ---------------------------------------------------------------------------------------------------------
// nginx: master + 1 worker, in the foreground, everything under a temporary prefix (spawnNginx).

function nginxConfig(prefix: string, port: number, apps: App[]): string {
  const servers = apps
    .map((app) => {
      const upstream = `${app.fw.name}_${app.fw.port}`;
      const local = `localhost:${app.fw.port}`;
      return `  upstream ${upstream} {
    server ${app.ip}:${app.fw.port};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${app.fw.port}-${app.sessionId}.${DOMAIN};
    # The page's own requests (no Origin, or one naming this host) go to the app as addressed to
    # ${local}, as ours does on a host route: dev servers trust localhost only (Vite's allowed hosts,
    # Next's dev-origin check, Jupyter's Origin-matches-Host check on the kernel socket).
    set $app_origin $http_origin;
    if ($http_origin = "http://$http_host") {
      set $app_origin "http://${local}";
    }
    location / {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Host ${local};
      proxy_set_header Origin $app_origin;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_redirect http://${local}/ /;
      # HMR and kernel sockets may sit idle between edits.
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
`;
    })
    .join('');
  return `# written by bench/dev-servers.ts
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events {
  worker_connections 1024;
}
http {
  # On, as ours' access log is (its default): one line per request each.
  access_log ${prefix}/access.log;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  # As bench/http.ts: a response larger than the proxy buffers (Vite's 180 KB /@vite/client) is passed on
  # as the client reads it, never spilled to a temporary file.
  proxy_max_temp_file_size 0;
  # The preview names are long ({port}-{session id}.${DOMAIN}): the default 64-byte buckets are too small.
  server_names_hash_bucket_size 128;
  # An upgrade passes Connection: upgrade; other requests none, so that upstream connections are kept.
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }
  # Host names that are not a preview's: refused, not sent to whichever server comes first.
  server {
    listen 127.0.0.1:${port} default_server;
    return 404;
  }
${servers}}
`;
}

/** Started once it refuses a host name that is not a preview's: every server block is loaded by then. */
async function startNginx(binary: string, dir: string, apps: App[]): Promise<NginxProcess> {
  const nginx = await spawnNginx(binary, dir, (prefix, port) => nginxConfig(prefix, port, apps));
  const { child, port, prefix, output } = nginx;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answered = await get(`http://127.0.0.1:${port}/`, 'nobody.invalid').then(
      (res) => res.status === 404,
      () => false,
    );
    if (answered) break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`nginx did not start:\n${output()}\n${nginxErrorLog(prefix).slice(-4000)}`);
    await sleep(100);
  }
  return nginx;
}

// ---------------------------------------------------------------------------------------------------------
// container-manager, as `pnpm start` runs it, in a child process of its own.

interface Manager extends Service {
  /** The port it was given (PORT): it listens on all addresses (its default), addressed on 127.0.0.1. */
  port: number;
  command: string;
}

async function startManager(): Promise<Manager> {
  const port = await freePort();
  // `pnpm start` is `tsx src/main.ts`: tsx runs node with its loader over the sources (startService runs that
  // node process itself). Its own defaults otherwise (HOST, the access log), as a developer runs it.
  const nodeArgs = ['--import', 'tsx', 'src/main.ts'];
  const manager = await startService({
    name: 'container-manager',
    cwd: APP_DIR,
    nodeArgs,
    env: { INTERNAL_SERVICE_KEY: KEY, PORT: String(port), PREVIEW_DOMAIN: DOMAIN },
  });
  return { ...manager, port, command: `node ${nodeArgs.join(' ')}` };
}

function register(manager: Manager, app: App): Promise<void> {
  return registerPreview(`http://127.0.0.1:${manager.port}`, app.sessionId, app.fw.port);
}

// ---------------------------------------------------------------------------------------------------------
// One page: a fresh context, the time to first render, then the HMR edits.

interface HmrSample {
  /** From just before the edit was written until the page showed it. */
  ms: number;
  /** From the same start until the exec shell (or the fresh exec) confirmed the write. */
  writeMs: number;
}

interface PageResult {
  renderMs: number;
  /** What the page had loaded when it was ready: the document and its resources, bodies as sent. */
  loaded: { requests: number; kib: number };
  hmr: HmrSample[];
}

/** Resource Timing's count and encoded body sizes (same-origin, so all of them are exposed). */
const LOADED_SCRIPT = `(() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  return { requests: entries.length, bytes: entries.reduce((sum, e) => sum + (e.encodedBodySize || 0), 0) };
})()`;

/**
 * Chromium aborts its requests in flight with ERR_NETWORK_CHANGED when the host's network interfaces change,
 * as they do whenever a container starts or stops (its veth), and other engineers' tests start containers on
 * this machine all the time. Such a page measured the machine, not a path: it is thrown away and measured
 * again.
 */
class NetworkChanged extends Error {
  override name = 'NetworkChanged';
}

interface PageWatch {
  /** Responses that were not 2xx/3xx, failed requests and page errors: for error messages. */
  problems(): string;
  /** Rejects with NetworkChanged as soon as a request fails with ERR_NETWORK_CHANGED. */
  networkChanged: Promise<never>;
  /** Whether one did. */
  changed(): boolean;
}

function watchPage(page: Page): PageWatch {
  const lines: string[] = [];
  let changed = false;
  let reject: (error: NetworkChanged) => void = () => {};
  const networkChanged = new Promise<never>((_, rejectWith) => {
    reject = rejectWith;
  });
  // Only raced against the page's own waits; never an unhandled rejection.
  networkChanged.catch(() => {});
  const note = (line: string) => {
    lines.push(line);
    if (!changed && line.includes('ERR_NETWORK_CHANGED')) {
      changed = true;
      reject(new NetworkChanged(line));
    }
  };
  page.on('response', (res) => {
    if (res.status() >= 400) note(`${res.status()} ${res.url()}`);
  });
  page.on('requestfailed', (req) => note(`failed ${req.url()} (${req.failure()?.errorText ?? '?'})`));
  page.on('pageerror', (error) => note(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') note(`console: ${message.text()}`);
  });
  return {
    problems: () => lines.slice(-20).join('\n  ') || '(nothing)',
    networkChanged,
    changed: () => changed,
  };
}

let pageCounter = 0;

async function measurePage(browser: Browser, app: App, path: PathName, label: string): Promise<PageResult> {
  const fw = app.fw;
  const context = await browser.newContext();
  try {
    await context.addInitScript({ content: readyScript(fw) });
    const page = await context.newPage();
    const watch = watchPage(page);
    const guard = <T>(step: Promise<T>): Promise<T> => Promise.race([step, watch.networkChanged]);
    let hmrReady: () => void = () => {};
    const connected = new Promise<void>((resolve) => {
      hmrReady = resolve;
    });
    if (fw.edit?.connected === 'vite-console')
      page.on('console', (message) => {
        if (message.text().includes('[vite] connected')) hmrReady();
      });
    if (fw.edit?.connected === 'turbopack-frame')
      page.on('websocket', (socket) =>
        socket.on('framereceived', (frame) => {
          if (String(frame.payload).includes('"turbopack-connected"')) hmrReady();
        }),
      );
    const fail = (what: string, error?: unknown) =>
      new Error(
        `${fw.name} ${path} ${label}: ${what}${error === undefined ? '' : `: ${errorText(error).split('\n')[0]}`}\n  ${watch.problems()}`,
      );
    /** A failed wait is the page's failure, `what`; unless the network changed under it (measured again). */
    const failing =
      (what: string) =>
      (error: unknown): never => {
        if (error instanceof NetworkChanged) throw error;
        throw fail(what, error);
      };
    /** The Date.now() that one of our observers stored in the page as `window[name]`, once it is there. */
    const stamp = (name: string, timeoutMs: number) =>
      guard(
        page
          .waitForFunction(`window.${name}`, undefined, { timeout: timeoutMs, polling: 20 })
          .then((handle) => handle.jsonValue() as Promise<number>),
      );

    const url = app.urls[path];
    const started = Date.now();
    const response = await guard(page.goto(url, { waitUntil: 'commit', timeout: PAGE_TIMEOUT_MS }));
    if (response?.status() !== 200) throw fail(`GET ${url} answered ${response?.status()}`);
    const readyAt = await stamp('__benchReadyAt', PAGE_TIMEOUT_MS).catch(
      failing(`not ${fw.renderedLabel} within ${PAGE_TIMEOUT_MS / 1000} s`),
    );
    const renderMs = readyAt - started;
    const { requests, bytes } = (await page.evaluate(LOADED_SCRIPT)) as { requests: number; bytes: number };
    const loaded = { requests, kib: round(bytes / 1024, 0) };
    if (fw.name === 'next') {
      // Hydrated means it works: a click counts.
      await page.click('#count', { timeout: 10_000 });
      await guard(
        page.waitForFunction(`document.querySelector('#count')?.textContent === 'count: 1'`, undefined, {
          timeout: 10_000,
          polling: 20,
        }),
      ).catch(failing('the counter did not count a click'));
    }

    const hmr: HmrSample[] = [];
    if (fw.edit) {
      const edit = fw.edit;
      let timer: NodeJS.Timeout | undefined;
      await guard(
        Promise.race([
          connected,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(fail(`the HMR socket did not connect within ${HMR_TIMEOUT_MS / 1000} s`)),
              HMR_TIMEOUT_MS,
            );
          }),
        ]),
      ).finally(() => clearTimeout(timer));
      await page.evaluate('window.__benchMarker = 1');
      pageCounter += 1;
      try {
        // A new text, then the original back: the next page loads the app as it was built.
        for (const text of [`edit ${pageCounter} via ${path}`, edit.original]) {
          await sleep(SETTLE_MS);
          await page.evaluate(hmrObserverScript(text));
          const before = Date.now();
          const written = await app.run(edit.command(text));
          const shownAt = await stamp('__benchHmrAt', HMR_TIMEOUT_MS).catch(
            failing(`"${text}" not shown within ${HMR_TIMEOUT_MS / 1000} s of the edit`),
          );
          // A full reload would also show the text, but is not HMR: the marker would be gone.
          if ((await page.evaluate('window.__benchMarker')) !== 1)
            throw fail('the page reloaded on the edit');
          hmr.push({ ms: shownAt - before, writeMs: written - before });
        }
      } catch (error) {
        // Every later page expects the original text: put it back whatever happened.
        await app.run(edit.command(edit.original)).catch(() => {});
        throw error;
      }
    }
    // A request aborted by a network change may not have been waited for, but it still slowed the page.
    if (watch.changed()) throw new NetworkChanged('a request failed with ERR_NETWORK_CHANGED');
    return { renderMs, loaded, hmr };
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------
// Summaries and the table.

interface Stat {
  n: number;
  medianMs: number;
  p90Ms: number;
  samplesMs: number[];
}

function stat(samples: number[]): Stat {
  return { n: samples.length, medianMs: median(samples), p90Ms: p90(samples), samplesMs: samples };
}

interface MetricSummary {
  framework: FrameworkName;
  metric: string;
  paths: Record<PathName, Stat>;
  /** Ratios of the medians. */
  oursOverDirect: number;
  oursOverNginx: number;
  /** HMR only: when the write was confirmed (median ms after the start), per path. */
  writeMedianMs?: Record<PathName, number>;
}

const pad = (text: string, width: number, right = false) =>
  right ? text.padStart(width) : text.padEnd(width);
const fmt = (ms: number) => (Number.isFinite(ms) ? String(Math.round(ms)) : '-');
const fmtRatio = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '-');

function printTable(summaries: MetricSummary[]) {
  const head = [
    pad('', 26),
    ...PATHS.map((p) => pad(`${p} median/p90`, 16, true)),
    pad('ours/direct', 12, true),
    pad('ours/nginx', 11, true),
  ].join(' ');
  console.log(head);
  for (const s of summaries) {
    const n = s.paths.ours.n;
    console.log(
      [
        pad(`${s.framework} ${s.metric} (n=${n})`, 26),
        ...PATHS.map((p) => pad(`${fmt(s.paths[p].medianMs)} / ${fmt(s.paths[p].p90Ms)}`, 16, true)),
        pad(fmtRatio(s.oursOverDirect), 12, true),
        pad(fmtRatio(s.oursOverNginx), 11, true),
      ].join(' '),
    );
  }
}

// ---------------------------------------------------------------------------------------------------------

let manager: Manager | undefined;
let nginx: NginxProcess | undefined;
let browser: Browser | undefined;
let cleanedUp: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleanedUp ??= (async () => {
    // Chromium first: its open HMR sockets would otherwise hold the proxies' shutdown.
    await Promise.race([browser?.close().catch(() => {}), sleep(10_000)]);
    await stopChildren();
    if (containerNames.size > 0)
      await docker(['rm', '-f', ...containerNames]).catch((error: unknown) => {
        // A container whose `docker run` never got as far as creating it is no error.
        if (!/No such container/i.test(errorText(error)))
          console.error('could not remove the containers:', error);
      });
    removeTempDirs();
  })();
  return cleanedUp;
}

async function main(): Promise<number> {
  const startedAt = new Date();
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium, or set CHROMIUM_PATH`,
    );
  const { nginx: nginxBinary } = await ensureExecutables({ nginx: 'nginx-light' });
  await assertDockerEngine();
  console.log('fixture images:');
  await ensureImages();

  const dir = tempDir('sandbox-bench-dev-');
  const machine = {
    date: startedAt.toISOString(),
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: round(totalmem() / 1024 / 1024, 0),
    kernel: release(),
    node: process.version,
    nginx: (await toolVersion(nginxBinary, ['-v'])).replace(/^nginx version: /, ''),
    chromium: await toolVersion(CHROMIUM_PATH, ['--version']),
    docker: await docker(['version', '--format', '{{.Server.Version}}']).catch(() => 'unknown'),
    loadAverage1mAtStart: load1(),
    code: await codeUnderTest(),
  };
  console.log(
    `dev-server benchmark: ${machine.nproc} CPUs (${machine.cpuModel}), Node ${machine.node}, ${machine.nginx},` +
      ` ${machine.chromium}, Docker ${machine.docker}, ${machine.date}, load ${machine.loadAverage1mAtStart}`,
  );

  console.log('session containers:');
  const apps = await Promise.all(FRAMEWORKS.map((name) => startApp(FRAMEWORK[name])));
  [nginx, manager] = await Promise.all([startNginx(nginxBinary, dir, apps), startManager()]);
  for (const app of apps) await register(manager, app);
  const ngx = nginx;
  const mgr = manager;
  for (const app of apps) {
    const { port } = app.fw;
    const hostName = `${port}-${app.sessionId}.${DOMAIN}`;
    app.hosts = { nginx: `${hostName}:${ngx.port}`, ours: `${hostName}:${mgr.port}` };
    const page = app.fw.name === 'jupyter' ? `/notebooks/demo.ipynb?token=${app.token}` : '/';
    // Next refuses its dev resources' WebSocket to an Origin that is not localhost or *.localhost; a name
    // under .localhost, which Chromium is told to resolve to the container, keeps the direct path direct.
    const directHost = app.fw.name === 'next' ? `${app.sessionId}.localhost` : app.ip;
    app.urls = {
      direct: `http://${directHost}:${port}${page}`,
      nginx: `http://${app.hosts.nginx}${page}`,
      ours: `http://${app.hosts.ours}${page}`,
    };
    // Each proxy serves the app before Chromium comes in: a broken route fails here, saying which.
    const probe = app.fw.name === 'jupyter' ? '/api' : '/';
    for (const path of ['nginx', 'ours'] as const) {
      const res = await get(
        `http://127.0.0.1:${path === 'nginx' ? ngx.port : mgr.port}${probe}`,
        app.hosts[path],
      );
      if (res.status !== 200)
        throw new Error(`${app.fw.name} through ${path} answered ${res.status}: ${res.body.slice(0, 300)}`);
    }
  }
  console.log(
    `nginx pid ${ngx.pid} on 127.0.0.1:${ngx.port}; container-manager pid ${mgr.pid} on port ${mgr.port} (${mgr.command})`,
  );

  const resolverRules = [
    `MAP *.${DOMAIN} 127.0.0.1`,
    ...apps.filter((app) => app.fw.name === 'next').map((app) => `MAP ${app.sessionId}.localhost ${app.ip}`),
  ];
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--host-resolver-rules=${resolverRules.join(', ')}`],
    timeout: 60_000,
    // Our own handlers clean up (runScript): Chromium must not be closed, or the process ended, under them.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  const chromiumVersion = browser.version();

  const loadedOf: Record<FrameworkName, { requests: number[]; kib: number[] }> = {
    vite: { requests: [], kib: [] },
    next: { requests: [], kib: [] },
    jupyter: { requests: [], kib: [] },
  };
  const samples: Record<FrameworkName, Record<PathName, { render: number[]; hmr: HmrSample[] }>> = {
    vite: { direct: { render: [], hmr: [] }, nginx: { render: [], hmr: [] }, ours: { render: [], hmr: [] } },
    next: { direct: { render: [], hmr: [] }, nginx: { render: [], hmr: [] }, ours: { render: [], hmr: [] } },
    jupyter: {
      direct: { render: [], hmr: [] },
      nginx: { render: [], hmr: [] },
      ours: { render: [], hmr: [] },
    },
  };
  const failures: { framework: FrameworkName; path: PathName; round: number; error: string }[] = [];
  const networkChanges: { framework: FrameworkName; path: PathName; round: number; request: string }[] = [];
  const loads: number[] = [];
  const roundsStarted = Date.now();
  console.log(
    `${ROUNDS} rounds after a warm-up round, paths alternating (${PATHS.join(', ')}); edits through` +
      ` ${EXEC_MODE === 'shell' ? 'an open docker exec shell' : 'one docker exec each'}`,
  );
  for (let r = 0; r <= ROUNDS; r++) {
    const warmup = r === 0;
    const label = warmup ? 'warm-up' : `round ${r}`;
    loads.push(load1());
    for (const app of apps) {
      const parts: string[] = [];
      for (const path of PATHS) {
        await sleep(SETTLE_MS);
        try {
          let result: PageResult | undefined;
          for (let attempt = 1; result === undefined; attempt++) {
            try {
              result = await measurePage(browser, app, path, label);
            } catch (error) {
              if (!(error instanceof NetworkChanged) || attempt === NETWORK_CHANGED_ATTEMPTS) throw error;
              networkChanges.push({ framework: app.fw.name, path, round: r, request: error.message });
              await sleep(SETTLE_MS);
            }
          }
          parts.push(
            `${path} ${result.renderMs}${result.hmr.length > 0 ? ` (${result.hmr.map((h) => h.ms).join('/')})` : ''}`,
          );
          if (warmup) continue;
          samples[app.fw.name][path].render.push(result.renderMs);
          loadedOf[app.fw.name].requests.push(result.loaded.requests);
          loadedOf[app.fw.name].kib.push(result.loaded.kib);
          samples[app.fw.name][path].hmr.push(...result.hmr);
        } catch (error) {
          // Interrupted: the cleanup closed Chromium under this page and is ending the process.
          if (cleanedUp !== undefined) await new Promise(() => {});
          // The warm-up checks that everything works: a failure there is the setup's, and ends the run.
          if (warmup) throw error;
          failures.push({ framework: app.fw.name, path, round: r, error: errorText(error) });
          parts.push(`${path} FAILED`);
          console.log(`  ${errorText(error)}`);
        }
      }
      console.log(
        `  ${pad(label, 9)} load ${pad(load1().toFixed(2), 5)} ${pad(app.fw.name, 8)} ${parts.join(', ')}`,
      );
    }
  }
  const roundsSeconds = round((Date.now() - roundsStarted) / 1000, 0);

  const summaries: MetricSummary[] = [];
  for (const app of apps) {
    const fw = app.fw;
    const of = samples[fw.name];
    const metrics: { metric: string; values: (p: PathName) => number[]; write?: boolean }[] = [
      { metric: fw.renderedLabel, values: (p) => of[p].render },
    ];
    if (fw.edit)
      metrics.push({ metric: fw.edit.label, values: (p) => of[p].hmr.map((h) => h.ms), write: true });
    for (const m of metrics) {
      const paths = Object.fromEntries(PATHS.map((p) => [p, stat(m.values(p))])) as Record<PathName, Stat>;
      summaries.push({
        framework: fw.name,
        metric: m.metric,
        paths,
        oursOverDirect: round(paths.ours.medianMs / paths.direct.medianMs, 2),
        oursOverNginx: round(paths.ours.medianMs / paths.nginx.medianMs, 2),
        ...(m.write
          ? {
              writeMedianMs: Object.fromEntries(
                PATHS.map((p) => [p, median(of[p].hmr.map((h) => h.writeMs))]),
              ) as Record<PathName, number>,
            }
          : {}),
      });
    }
  }

  const loadAtEnd = load1();
  const codeAtEnd = await codeUnderTest();
  const codeChanged = JSON.stringify(codeAtEnd) !== JSON.stringify(machine.code);
  const report = {
    benchmark: 'dev-servers',
    machine: {
      ...machine,
      chromium: chromiumVersion,
      loadAverage1mAtEnd: loadAtEnd,
      loadAverage1mPerRound: loads,
      codeAtEnd,
      codeChangedDuringRun: codeChanged,
    },
    config: {
      rounds: ROUNDS,
      warmupRounds: 1,
      roundsSeconds,
      order: `alternating: ${PATHS.join(', ')}, ${PATHS.join(', ')}, ... per framework, frameworks in turn`,
      exec: EXEC_MODE,
      ratios: 'ratio of the medians',
      p90: 'nearest rank',
      manager: {
        command: manager.command,
        env: 'INTERNAL_SERVICE_KEY, PORT, PREVIEW_DOMAIN; defaults otherwise',
      },
      nginxConfig: ngx.config,
      urls: Object.fromEntries(apps.map((app) => [app.fw.name, app.urls])),
      chromiumArgs: [...CHROMIUM_FLAGS, `--host-resolver-rules=${resolverRules.join(', ')}`],
    },
    results: summaries,
    pages: Object.fromEntries(
      apps.map((app) => [
        app.fw.name,
        {
          requestsWhenReadyMedian: median(loadedOf[app.fw.name].requests),
          kibWhenReadyMedian: median(loadedOf[app.fw.name].kib),
        },
      ]),
    ),
    failures,
    pagesMeasuredAgainAfterNetworkChange: networkChanges,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);

  console.log('');
  console.log(
    `machine: nproc ${machine.nproc}, ${machine.cpuModel}, Node ${machine.node}, ${machine.nginx}, Chromium` +
      ` ${chromiumVersion}, ${machine.date}; load (1 min) ${machine.loadAverage1mAtStart} at the start,` +
      ` ${loads.slice(1).join(' ')} at each round, ${loadAtEnd} at the end (these include this run's own` +
      ' Chromium, dev servers and proxies)',
  );
  // The manager loaded its sources when it started: the tree at the start is what "ours" ran.
  console.log(
    `code under test: ${machine.code.commit}${machine.code.uncommitted.length > 0 ? ` + uncommitted changes in ${machine.code.uncommitted.length} files outside bench/ (listed in the JSON)` : ''}`,
  );
  console.log(
    `ms; ${ROUNDS} rounds (${roundsSeconds} s), a fresh browser context per page; HMR: 2 edits per page;` +
      ' p90: nearest rank; ratios: of the medians',
  );
  // The run itself adds to the load (Chromium, a dev server, a proxy at work): the start tells of others' work.
  if (machine.loadAverage1mAtStart > machine.nproc / 2)
    console.log(
      `NOTE: the machine was busy before the run (load ${machine.loadAverage1mAtStart} on ${machine.nproc} CPUs):` +
        ' absolute figures are high and noisy; compare the paths within this run only, or rerun',
    );
  if (codeChanged) {
    const added = codeAtEnd.uncommitted.filter((file) => !machine.code.uncommitted.includes(file));
    const gone = machine.code.uncommitted.filter((file) => !codeAtEnd.uncommitted.includes(file));
    console.log(
      `NOTE: the working tree changed during the run (${[...added.map((f) => `+${f}`), ...gone.map((f) => `-${f}`)].join(', ') || `now at ${codeAtEnd.commit}`});` +
        ' the manager runs what it loaded at the start',
    );
  }
  printTable(summaries);
  console.log(
    `pages when ready (median): ${apps.map((app) => `${app.fw.name} ${median(loadedOf[app.fw.name].requests)} requests, ${median(loadedOf[app.fw.name].kib)} KiB`).join('; ')}`,
  );
  for (const s of summaries) {
    if (!s.writeMedianMs) continue;
    console.log(
      `${s.framework} ${s.metric}: the write was confirmed after (median) ${PATHS.map((p) => `${p} ${fmt(s.writeMedianMs?.[p] ?? Number.NaN)}`).join(', ')} ms`,
    );
  }
  if (networkChanges.length > 0)
    console.log(
      `${networkChanges.length} page(s) measured again after Chromium saw the network change (ERR_NETWORK_CHANGED): ${networkChanges.map((c) => `${c.framework} ${c.path} round ${c.round}`).join(', ')}`,
    );
  // The message names the framework, path and round.
  for (const f of failures) console.log(`failed: ${f.error.split('\n')[0]}`);
  console.log(`results: ${RESULTS_FILE}`);
  return failures.length > 0 ? 1 : 0;
}

// A second Ctrl-C would end the process mid-cleanup (runScript's handlers are once-only), leaving the
// containers behind: say that the cleanup is under way instead; the watchdog still bounds it.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (cleanedUp !== undefined) console.error(`${signal}: still cleaning up`);
  });

runBenchmark({
  main,
  cleanup,
  watchdogMs: WATCHDOG_MS,
  outputs: () => [
    ['container-manager', manager, 4000],
    ['nginx', nginx, 2000],
  ],
});
