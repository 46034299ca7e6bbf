import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import {
  createManagerClient,
  type ExecEvent,
  type ManagerClient,
  ManagerError,
  type PreviewPort,
} from './client.js';
import { logLine, sessionTable, table, urlOfPort } from './format.js';

/** The manager a command talks to when neither `--url` nor `SANDBOX_MANAGER_URL` says. */
export const DEFAULT_MANAGER_URL = 'http://localhost:4002';

export const USAGE = `Usage: sandbox-preview [--url URL] [--key KEY] [--json] COMMAND

Commands:
  up IMAGE [-p PORT]... [--id ID] [-e NAME=VALUE]... [--keep-prefix]
                                        create and start a session from a local image; --keep-prefix:
                                        its ports get the whole /previews/ID/ path (dev servers told
                                        their base through PREVIEW_BASE_PATH: Vite, Next.js)
  ls                                    the sessions created through the manager
  open ID [PORT] [--print]              open a preview in the browser (--print: only print its URL)
  logs ID [-f]                          a preview's request log; -f follows it live
  exec ID -- CMD [ARG...]               run a command in the session; exits with its exit code
  rm ID                                 remove a session, its container and its previews

Options:
  --url URL    the manager (default: $SANDBOX_MANAGER_URL, else ${DEFAULT_MANAGER_URL})
  --key KEY    its INTERNAL_SERVICE_KEY (default: $SANDBOX_MANAGER_KEY, else $INTERNAL_SERVICE_KEY)
  --json       print the manager's JSON (one entry per line for logs) instead of text
  -h, --help   this help
  --version    the version
`;

/** What the command line runs against: its environment, its output, and the outside world it may touch. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Opens a URL in a browser; default: `$BROWSER URL`, else the platform's opener. */
  openUrl?(url: string): Promise<void>;
  /**
   * Called by a follow (`logs -f`) with what ends it, for the caller to run on Ctrl-C; returns what
   * unregisters it. Other commands leave Ctrl-C to its default (the process ends).
   */
  interrupts?(stop: () => void): () => void;
  fetch?: typeof fetch;
  /** Printed by `--version`. */
  version?: string;
}

/** A command line that cannot be run: printed with a pointer to the help, exit code 2. */
class UsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  port: { type: 'string', short: 'p', multiple: true },
  id: { type: 'string' },
  env: { type: 'string', short: 'e', multiple: true },
  follow: { type: 'boolean', short: 'f' },
  print: { type: 'boolean' },
  'keep-prefix': { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

// The options each command takes beyond the global ones.
const COMMAND_OPTIONS: Record<string, readonly (keyof Values)[]> = {
  up: ['port', 'id', 'env', 'keep-prefix'],
  ls: [],
  open: ['print'],
  logs: ['follow'],
  exec: [],
  rm: [],
};
const GLOBAL_OPTIONS: readonly (keyof Values)[] = ['url', 'key', 'json', 'help', 'version'];

function portOf(raw: string): number {
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535)
    throw new UsageError(`not a port: ${raw}`);
  return Number(raw);
}

function envOf(pairs: readonly string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`not NAME=VALUE: ${pair}`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

function exactly(positionals: readonly string[], names: readonly string[], optional = 0): string[] {
  const [command, ...rest] = positionals;
  if (rest.length < names.length - optional || rest.length > names.length)
    throw new UsageError(`${command} takes ${names.join(' ')}`);
  return rest;
}

// A listing's URLs: a path one is relative to the manager's origin, a host one to its scheme.
function absolute(client: ManagerClient, url: string): string {
  if (url.startsWith('//')) return `${new URL(client.url).protocol}${url}`;
  if (url.startsWith('/')) return `${client.url}${url}`;
  return url;
}

function choosePort(
  sessionId: string,
  previews: readonly PreviewPort[],
  wanted: number | undefined,
): PreviewPort {
  if (previews.length === 0)
    throw new ManagerError(404, undefined, `Session ${sessionId} has no registered port`);
  if (wanted === undefined) {
    const active = previews.find((preview) => preview.active);
    if (active === undefined)
      throw new ManagerError(404, undefined, `Session ${sessionId} has no active port`);
    return active;
  }
  const found = previews.find((preview) => preview.port === wanted);
  if (found === undefined)
    throw new ManagerError(
      404,
      'PORT_NOT_REGISTERED',
      `Port ${wanted} is not registered for session ${sessionId}`,
    );
  return found;
}

/** The default opener: `$BROWSER`, else xdg-open, open or start, detached; fails when it cannot start. */
function platformOpener(env: CliIo['env']): (url: string) => Promise<void> {
  return (url) =>
    new Promise((resolve, reject) => {
      const [command, args] =
        env.BROWSER !== undefined && env.BROWSER !== ''
          ? [env.BROWSER, [url]]
          : process.platform === 'darwin'
            ? ['open', [url]]
            : process.platform === 'win32'
              ? ['cmd', ['/c', 'start', '', url]]
              : ['xdg-open', [url]];
      const child = spawn(command, args, { detached: true, stdio: 'ignore' });
      child.once('error', reject);
      child.once('spawn', () => {
        child.unref();
        resolve();
      });
    });
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  // Everything after `--` is exec's command, never options of ours.
  const split = argv.indexOf('--');
  const ours = split === -1 ? [...argv] : argv.slice(0, split);
  const command = split === -1 ? undefined : argv.slice(split + 1);
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: ours, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (values.version) {
    io.stdout(`${io.version ?? 'unknown'}\n`);
    return 0;
  }
  const name = positionals[0];
  if (name === undefined) throw new UsageError('no command');
  if (!Object.hasOwn(COMMAND_OPTIONS, name)) throw new UsageError(`unknown command: ${name}`);
  const allowed = COMMAND_OPTIONS[name] ?? [];
  for (const option of Object.keys(values) as (keyof Values)[]) {
    if (!GLOBAL_OPTIONS.includes(option) && !allowed.includes(option))
      throw new UsageError(`${name} takes no --${option}`);
  }
  if (command !== undefined && name !== 'exec') throw new UsageError(`${name} takes nothing after --`);

  // An empty variable counts as unset, as a shell's `VAR= cmd` means.
  const key = values.key ?? (io.env.SANDBOX_MANAGER_KEY || io.env.INTERNAL_SERVICE_KEY);
  if (key === undefined || key === '')
    throw new UsageError(
      "no key: pass --key or set SANDBOX_MANAGER_KEY (the manager's INTERNAL_SERVICE_KEY)",
    );
  const url = values.url ?? (io.env.SANDBOX_MANAGER_URL || DEFAULT_MANAGER_URL);
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`not an http(s) URL: ${url}`);
  const client = createManagerClient({ url, key, ...(io.fetch === undefined ? {} : { fetch: io.fetch }) });
  const json = (value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);

  switch (name) {
    case 'up': {
      const [image = ''] = exactly(positionals, ['IMAGE']);
      const env = envOf(values.env);
      const session = await client.createSession({
        image,
        ...(values.id === undefined ? {} : { sessionId: values.id }),
        ...(values.port === undefined
          ? {}
          : {
              ports: values.port.map((raw) =>
                values['keep-prefix'] ? { port: portOf(raw), stripPrefix: false } : portOf(raw),
              ),
            }),
        ...(env === undefined ? {} : { env }),
      });
      if (values.json) json(session);
      else {
        const rows = session.ports.map((port) => [
          String(port.port),
          urlOfPort(port) ?? '-',
          port.registered ? '' : '(registered once it answers)',
        ]);
        io.stdout(`${session.sessionId}\n${rows.length > 0 ? `${table(rows).trimEnd()}\n` : ''}`);
      }
      return 0;
    }
    case 'ls': {
      exactly(positionals, []);
      const sessions = await client.listSessions();
      if (values.json) json(sessions);
      else io.stdout(sessions.length === 0 ? 'no sessions\n' : `${sessionTable(sessions)}\n`);
      return 0;
    }
    case 'open': {
      const [sessionId = '', rawPort] = exactly(positionals, ['ID', '[PORT]'], 1);
      const listing = await client.previews(sessionId);
      const port = choosePort(
        sessionId,
        listing.previews,
        rawPort === undefined ? undefined : portOf(rawPort),
      );
      const relative = port.urls.path ?? port.urls.host;
      if (relative === null)
        throw new ManagerError(
          404,
          undefined,
          `Port ${port.port} of session ${sessionId} has no URL: only the active port has a path URL, and host URLs need PREVIEW_DOMAIN`,
        );
      const target = absolute(client, relative);
      if (values.json) json({ sessionId, port: port.port, url: target });
      else io.stdout(`${target}\n`);
      if (!values.print) {
        try {
          await (io.openUrl ?? platformOpener(io.env))(target);
        } catch (error) {
          io.stderr(
            `sandbox-preview: could not open a browser (${(error as Error).message}); the URL is above\n`,
          );
        }
      }
      return 0;
    }
    case 'logs': {
      const [sessionId = ''] = exactly(positionals, ['ID']);
      const print = (entry: Parameters<typeof logLine>[0]) =>
        io.stdout(values.json ? `${JSON.stringify(entry)}\n` : `${logLine(entry)}\n`);
      if (!values.follow) {
        for (const entry of await client.log(sessionId)) print(entry);
        return 0;
      }
      const stop = new AbortController();
      const unregister = io.interrupts?.(() => stop.abort()) ?? (() => {});
      try {
        await client.followLog(
          sessionId,
          {
            entry: print,
            dropped: (count) =>
              io.stderr(`sandbox-preview: ${count} entries skipped (this reader fell behind)\n`),
          },
          stop.signal,
        );
      } finally {
        unregister();
      }
      if (stop.signal.aborted) return 0;
      // Not asked to stop: the manager ended the stream (it stopped or restarted).
      throw new ManagerError(0, undefined, 'the manager ended the log stream');
    }
    case 'exec': {
      const [sessionId = '', ...rest] = positionals.slice(1);
      const cmd = [...rest, ...(command ?? [])];
      if (sessionId === '' || cmd.length === 0) throw new UsageError('exec takes ID -- CMD [ARG...]');
      const last = await client.exec(sessionId, cmd, (event: ExecEvent) => {
        if (event.type === 'stdout') io.stdout(event.data);
        else if (event.type === 'stderr') io.stderr(event.data);
      });
      if (last?.type === 'exit') {
        if (last.timedOut) io.stderr('sandbox-preview: the command timed out\n');
        return last.timedOut ? 124 : (last.exitCode ?? 1);
      }
      if (last?.type === 'error') throw new ManagerError(0, last.code, last.message);
      throw new ManagerError(0, undefined, 'the exec stream ended without an exit code');
    }
    case 'rm': {
      const [sessionId = ''] = exactly(positionals, ['ID']);
      const removed = await client.removeSession(sessionId);
      if (values.json) json(removed);
      else
        io.stdout(
          `removed ${removed.sessionId}${removed.ports.length > 0 ? ` (ports ${removed.ports.join(', ')})` : ''}\n`,
        );
      return 0;
    }
    default:
      throw new UsageError(`unknown command: ${name}`);
  }
}

// One line, whatever a message holds.
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * Runs one command line (`argv` without node and the script) and resolves with its exit code: 0, the
 * command's own for exec, 1 when the manager refused or could not be reached (one line on stderr, with the
 * contract's code), 2 for a command line that cannot be run.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`sandbox-preview: ${error.message}\nRun 'sandbox-preview --help' for usage.\n`);
      return 2;
    }
    if (error instanceof ManagerError) {
      const what = [error.status > 0 ? String(error.status) : '', error.code ?? ''].filter(Boolean).join(' ');
      io.stderr(`sandbox-preview: ${oneLine(error.message)}${what === '' ? '' : ` (${what})`}\n`);
      return 1;
    }
    io.stderr(`sandbox-preview: ${oneLine(error instanceof Error ? error.message : String(error))}\n`);
    return 1;
  }
}
