import { containerNameFor } from '@sandbox/error-contract';
import type Docker from 'dockerode';
import type { CreateSessionRequest, SessionPortRequest } from './schemas.js';

// Pure: what a create request becomes for Docker, and what the container's labels say back. The labels are
// the session's own record, so a restarted service (or another one) reads the same session from Docker.

/** Marks a container created through the sessions API (the listing shows only these). */
export const SESSION_MANAGED_LABEL = 'sandbox.session.managed';
/** The ports a session asked for, as JSON: registered each time the container starts and they answer. */
export const SESSION_PORTS_LABEL = 'sandbox.session.ports';

/** A port of a session, its options spelled out. */
export interface SessionPortSpec {
  port: number;
  stripPrefix: boolean;
  visibility: 'public' | 'private';
}

/** The ports of a request with their defaults (those of a registration), duplicates dropped. */
export function portSpecsOf(ports: readonly SessionPortRequest[] | undefined): SessionPortSpec[] {
  const specs = new Map<number, SessionPortSpec>();
  for (const entry of ports ?? []) {
    const {
      port,
      stripPrefix = true,
      visibility = 'public',
    } = typeof entry === 'number' ? { port: entry } : entry;
    if (!specs.has(port)) specs.set(port, { port, stripPrefix, visibility });
  }
  return [...specs.values()];
}

/** The ports a container's labels ask for; none when the label is absent or not what this package wrote. */
export function portSpecsFromLabels(labels: Readonly<Record<string, string>> | undefined): SessionPortSpec[] {
  const raw = labels?.[SESSION_PORTS_LABEL];
  if (raw === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return [];
    return parsed.flatMap((entry: unknown) => {
      const { port, stripPrefix, visibility } = (entry ?? {}) as Partial<SessionPortSpec>;
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1024 || port > 65535) return [];
      return [
        {
          port,
          stripPrefix: stripPrefix !== false,
          visibility: visibility === 'private' ? ('private' as const) : ('public' as const),
        },
      ];
    });
  } catch {
    return [];
  }
}

/** Where the previews of this service are served, for the URLs a session is told and shown. */
export interface PreviewUrlOptions {
  /** The service's public origin, e.g. `http://localhost:4002`. */
  publicUrl: string;
  /** The public path route's prefix (`/previews`); without it no path URL is given. */
  publicPrefix?: string;
  /** The host routes' domain (`PREVIEW_DOMAIN`); without it no host URL is given. */
  previewDomain?: string;
}

/** The public URLs of a session's port (pure): the path route's for the primary port only. */
export function previewUrlsOf(
  sessionId: string,
  port: number,
  primary: boolean,
  { publicUrl, publicPrefix, previewDomain }: PreviewUrlOptions,
): { path: string | null; host: string | null } {
  const origin = new URL(publicUrl);
  const base = pathPrefixOf(sessionId, publicPrefix);
  const path = primary && base !== undefined ? `${origin.origin}${base}/` : null;
  // A host label is `{port}-{id}`: an id that cannot be one (too long, or with `_` or `.`) has no host URL.
  const label = `${port}-${sessionId}`.toLowerCase();
  const host =
    previewDomain !== undefined && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)
      ? `${origin.protocol}//${label}.${previewDomain}${origin.port === '' ? '' : `:${origin.port}`}/`
      : null;
  return { path, host };
}

function pathPrefixOf(sessionId: string, publicPrefix: string | undefined): string | undefined {
  return publicPrefix === undefined ? undefined : `${publicPrefix.replace(/\/+$/, '')}/${sessionId}`;
}

/**
 * The variables that tell a session's app where it is served (pure), documented in docs/sessions.md:
 * `SANDBOX_SESSION_ID` always; with ports, those of the primary (first) port, which the path route serves:
 * `PREVIEW_PORT`, `PREVIEW_PATH_PREFIX` (`/previews/{id}`, for Next.js `basePath`), `PREVIEW_BASE_PATH`
 * (the same with a trailing slash, for `vite --base`), `PREVIEW_URL` and, with a preview domain,
 * `PREVIEW_HOST_URL`; and for every port, `PREVIEW_HOST_URL_{port}` with a preview domain.
 */
export function previewEnvironment(
  sessionId: string,
  ports: readonly SessionPortSpec[],
  options: PreviewUrlOptions,
): Record<string, string> {
  const env: Record<string, string> = { SANDBOX_SESSION_ID: sessionId };
  const [primary] = ports;
  if (primary === undefined) return env;
  env.PREVIEW_PORT = String(primary.port);
  const prefix = pathPrefixOf(sessionId, options.publicPrefix);
  if (prefix !== undefined) {
    env.PREVIEW_PATH_PREFIX = prefix;
    env.PREVIEW_BASE_PATH = `${prefix}/`;
  }
  const urls = previewUrlsOf(sessionId, primary.port, true, options);
  if (urls.path !== null) env.PREVIEW_URL = urls.path;
  if (urls.host !== null) env.PREVIEW_HOST_URL = urls.host;
  for (const { port } of ports) {
    const { host } = previewUrlsOf(sessionId, port, false, options);
    if (host !== null) env[`PREVIEW_HOST_URL_${port}`] = host;
  }
  return env;
}

/** Limits applied to every container the API creates (Docker's own units). */
export interface SessionResourceLimits {
  /** Bytes of memory (swap included: no more swap than memory). */
  memoryBytes?: number;
  /** CPUs, fractional (`1.5`). */
  cpus?: number;
  /** Processes and threads. */
  pidsLimit?: number;
}

/** How the service creates containers. */
export interface SessionContainerOptions {
  /** Network to attach to (`PREVIEW_NETWORK`); Docker's default bridge otherwise. */
  network?: string;
  limits?: SessionResourceLimits;
}

/** The create call of a session's container (pure). */
export function containerCreateOptions(
  sessionId: string,
  request: Pick<CreateSessionRequest, 'image' | 'cmd' | 'env' | 'workdir'>,
  ports: readonly SessionPortSpec[],
  env: Readonly<Record<string, string>>,
  { network, limits = {} }: SessionContainerOptions = {},
): Docker.ContainerCreateOptions {
  // The caller's variables come last, so a start script can be told otherwise on purpose.
  const merged = { ...env, ...request.env };
  return {
    name: containerNameFor(sessionId),
    Image: request.image,
    ...(request.cmd === undefined ? {} : { Cmd: request.cmd }),
    ...(request.workdir === undefined ? {} : { WorkingDir: request.workdir }),
    Env: Object.entries(merged).map(([name, value]) => `${name}=${value}`),
    Labels: { [SESSION_MANAGED_LABEL]: 'true', [SESSION_PORTS_LABEL]: JSON.stringify(ports) },
    HostConfig: {
      ...(network === undefined ? {} : { NetworkMode: network }),
      ...(limits.memoryBytes === undefined
        ? {}
        : { Memory: limits.memoryBytes, MemorySwap: limits.memoryBytes }),
      ...(limits.cpus === undefined ? {} : { NanoCpus: Math.round(limits.cpus * 1e9) }),
      ...(limits.pidsLimit === undefined ? {} : { PidsLimit: limits.pidsLimit }),
      // Code run in a session must not gain privileges through setuid binaries.
      SecurityOpt: ['no-new-privileges'],
      // An init as pid 1 reaps what a killed exec leaves behind (and forwards signals to the app).
      Init: true,
    },
  };
}
