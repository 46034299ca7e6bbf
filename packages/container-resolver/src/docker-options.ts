import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Socket dockerd listens on when `DOCKER_HOST` is unset, as for the docker CLI. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** Default request timeout of {@link dockerOptionsFromEnv}, in milliseconds. */
export const DEFAULT_DOCKER_TIMEOUT_MS = 5000;

/** The environment variables read: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` (and `HOME`). */
export type DockerEnv = Readonly<Record<string, string | undefined>>;

/**
 * dockerode connection options. Every field is always present (possibly undefined) because docker-modem
 * merges its own reading of `process.env` underneath: an omitted `host` would let a TCP `DOCKER_HOST`
 * from the process override an explicit socket.
 */
export interface DockerConnectionOptions {
  socketPath: string | undefined;
  host: string | undefined;
  port: number | undefined;
  protocol: 'http' | 'https';
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
  /** Socket idle timeout in ms; undefined disables it (needed for long-lived streams such as events). */
  timeout: number | undefined;
}

/** Options of {@link dockerOptionsFromEnv}. */
export interface DockerOptionsFromEnvOptions {
  /** Request (socket idle) timeout in ms; 0 disables it. */
  timeoutMs?: number;
  /** Reads a TLS file; injected so parsing is testable without certificates on disk. */
  readFile?: (path: string) => Buffer;
}

function invalid(variable: string, value: string, expected: string): Error {
  return new Error(`Invalid ${variable} "${value}": expected ${expected}`);
}

function parseTlsVerify(value: string | undefined): boolean {
  const v = value?.trim() ?? '';
  if (v === '' || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw invalid('DOCKER_TLS_VERIFY', v, '1 (verify TLS) or unset');
}

function parseTcpHost(raw: string, tls: boolean): { host: string; port: number } {
  const expected = 'unix:///absolute/path or tcp://host:port';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('DOCKER_HOST', raw, expected);
  }
  const noExtras = url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  if (url.hostname === '' || !noExtras || (url.pathname !== '' && url.pathname !== '/')) {
    throw invalid('DOCKER_HOST', raw, expected);
  }
  // The docker CLI's defaults: 2376 is the TLS port, 2375 the plain one.
  const port = url.port === '' ? (tls ? 2376 : 2375) : Number(url.port);
  if (port < 1) throw invalid('DOCKER_HOST', raw, 'a port in 1..65535');
  // URL keeps IPv6 brackets; Node's http wants the bare address.
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Turns the docker CLI's environment into dockerode options: `DOCKER_HOST` (unix:// or tcp://, default
 * unix:///var/run/docker.sock), `DOCKER_TLS_VERIFY=1` with `DOCKER_CERT_PATH` (default ~/.docker) for
 * https. Pure apart from the injected `readFile`; a bad value throws an Error naming the variable.
 */
export function dockerOptionsFromEnv(
  env: DockerEnv,
  { timeoutMs = DEFAULT_DOCKER_TIMEOUT_MS, readFile = readFileSync }: DockerOptionsFromEnvOptions = {},
): DockerConnectionOptions {
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new Error(`Invalid timeoutMs ${timeoutMs}`);
  const base = {
    socketPath: undefined,
    host: undefined,
    port: undefined,
    protocol: 'http',
    ca: undefined,
    cert: undefined,
    key: undefined,
    timeout: timeoutMs === 0 ? undefined : timeoutMs,
  } as const satisfies DockerConnectionOptions;
  // Validated even for a unix socket, where TLS does not apply: a typo should not wait for the next deploy.
  const tls = parseTlsVerify(env.DOCKER_TLS_VERIFY);
  const raw = env.DOCKER_HOST?.trim() ?? '';
  if (raw === '') return { ...base, socketPath: DEFAULT_DOCKER_SOCKET };
  if (raw.startsWith('unix://')) {
    const socketPath = raw.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw invalid('DOCKER_HOST', raw, 'unix:///absolute/path');
    return { ...base, socketPath };
  }
  if (!raw.startsWith('tcp://'))
    throw invalid('DOCKER_HOST', raw, 'unix:///absolute/path or tcp://host:port');
  const { host, port } = parseTcpHost(raw, tls);
  if (!tls) return { ...base, host, port };
  const certPath = env.DOCKER_CERT_PATH?.trim() || join(env.HOME || homedir(), '.docker');
  const read = (file: string): Buffer => {
    try {
      return readFile(join(certPath, file));
    } catch (error) {
      throw new Error(
        `Cannot read ${file} from DOCKER_CERT_PATH "${certPath}": ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
        },
      );
    }
  };
  return {
    ...base,
    host,
    port,
    protocol: 'https',
    ca: read('ca.pem'),
    cert: read('cert.pem'),
    key: read('key.pem'),
  };
}
