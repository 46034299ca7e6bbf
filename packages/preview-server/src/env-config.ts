import {
  createTrustedProxyMatcher,
  createUpstreamAddressPolicy,
  DEFAULT_UPSTREAM_NETWORKS,
  type UpstreamEngine,
} from '@sandbox/proxy-core';
import { z } from 'zod';
import { LOG_LEVELS } from './logger.js';
import type { ClientLimits } from './serve.js';

// Configuration pieces both apps read from the environment, validated once at start-up.

const portNumber = z.coerce.number().int().min(0).max(65535);

// One or more DNS labels: what a browser can put in front of `{port}-{sessionId}.`.
const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const commaList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    );

// Milliseconds or bytes; 0 is allowed where it means "no limit".
// Timers take at most 2^31 - 1 ms (about 24.8 days); Node turns a longer one into 1 ms.
const MAX_TIMER_MS = 2_147_483_647;
const count = (min: number, fallback: number) =>
  z.coerce.number().int().min(min).max(MAX_TIMER_MS).default(fallback);

/** The listening port, with an app's own default. */
export const listenPortSchema = (defaultPort: number) => portNumber.default(defaultPort);

/** Environment variables shared by container-manager and edge-proxy. */
export const sharedEnvShape = {
  HOST: z.string().min(1).default('0.0.0.0'),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  TRUSTED_PROXIES: commaList(''),
  // Where container addresses may be (a shared state cannot point the proxy anywhere else); loopback,
  // link-local and the host's own addresses are refused whatever this says.
  UPSTREAM_NETWORKS: commaList(DEFAULT_UPSTREAM_NETWORKS.join(',')).refine((list) => list.length > 0, {
    error: 'must name at least one network (an empty list would refuse every container)',
  }),
  // A container that does not send its response head in time: 504. 0 waits for ever.
  PROXY_TIMEOUT_MS: count(0, 60_000),
  // The HTTP client towards containers: `native` (Node's own parser, the faster) or `undici`. `auto`, the
  // default: native while this Node has its parser, else undici with a warning at start-up (DEP0199 may one
  // day take the parser away; a service should slow down, not stop).
  UPSTREAM_ENGINE: z
    .enum(['auto', 'native', 'undici'], { error: 'must be auto, native or undici' })
    .default('auto'),
  // Largest proxied request body (413 beyond); 0: no limit.
  MAX_BODY_BYTES: count(0, 100 * 1024 * 1024),
  // Most requests in flight plus open WebSockets per session (429 beyond); 0: no limit.
  MAX_CONNECTIONS_PER_SESSION: count(0, 1024),
  // Largest request head and most header fields (431 beyond).
  MAX_HEADER_BYTES: count(1024, 16_384),
  MAX_HEADER_COUNT: count(8, 100),
  // A client's head, and its whole request, must arrive in time (408 beyond); slow clients cannot hold
  // connections for ever. REQUEST_TIMEOUT_MS 0: no limit on the whole request.
  HEADERS_TIMEOUT_MS: count(1000, 20_000),
  REQUEST_TIMEOUT_MS: count(0, 300_000),
  // Slow clients (docs/reliability.md): a request body, and a response the client reads, each get a
  // budget of this many ms, spent while the proxy waits on the client and earned back at
  // CLIENT_MIN_RATE_BPS (one second per that many bytes). 408 or a cut connection beyond; 0: no limit.
  CLIENT_BODY_TIMEOUT_MS: count(0, 20_000),
  // A reader's progress shows only when its socket drains (every third of the kernel's send buffer, up to
  // 1.3 MiB): nginx's send_timeout default, which leaves a reader of 25 KB/s room.
  CLIENT_SEND_TIMEOUT_MS: count(0, 60_000),
  CLIENT_MIN_RATE_BPS: count(0, 500),
  // Requests of one session stalled on their client for over a second may hold this many of its places;
  // the longest stalled beyond are cut. 0: no share.
  MAX_STALLED_PER_SESSION: count(0, 256),
  // Upstream connections per container ip:port, and how long a request waits for one when all are in use
  // (503 beyond; never longer than PROXY_TIMEOUT_MS).
  UPSTREAM_MAX_SOCKETS: count(1, 1024),
  UPSTREAM_QUEUE_TIMEOUT_MS: count(0, 5000),
  // A WebSocket tunnel one side of which ended its half is closed this long after (0: never); one idle
  // both ways this long is closed (0, the default: never).
  WS_HALF_CLOSE_TIMEOUT_MS: count(0, 5000),
  WS_IDLE_TIMEOUT_MS: count(0, 0),
  PRESERVE_HOST: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true'),
  // Host routes present same-origin requests to the app as addressed to localhost:<port>, so dev servers
  // (which trust only localhost) work on any preview domain; false: Host and Origin as PRESERVE_HOST says.
  HOST_ROUTE_LOCALHOST: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true'),
  PREVIEW_DOMAIN: z
    .string()
    .transform((value) =>
      value
        .trim()
        .toLowerCase()
        .replace(/^\.+|\.+$/g, ''),
    )
    .refine((value) => DOMAIN.test(value) && value.length <= 253, {
      error: 'must be a domain name such as preview.example.com',
    })
    .optional(),
  // Prometheus metrics on a port of their own (never the public one); unset: no metrics endpoint.
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  // One access line per request (with request ids). `false` saves what they cost: about 4 µs of CPU per
  // request, the id, the line and its share of the writes (docs/performance.md).
  ACCESS_LOG: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true'),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  // Pretty lines for a developer's terminal; JSON (one object per line) everywhere else.
  LOG_FORMAT: z
    .enum(['json', 'pretty'], { error: 'must be json or pretty' })
    .default(process.env.NODE_ENV === 'development' ? 'pretty' : 'json'),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  // Signs preview tokens (private ports). Required to register a private port or issue a token; every
  // process that serves previews (the manager, each edge) needs the same one. Unset: public ports only.
  PREVIEW_TOKEN_SECRET: z
    .string()
    .min(32, { error: 'must be at least 32 characters (e.g. openssl rand -base64 32)' })
    .optional(),
};

/** A configuration error; its message names every offending variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Validates the environment against a schema. An exported-but-empty variable means "not set", as in a
 * shell, except for those in `emptyIsAValue` (a secret that must not be empty is an error, not a default).
 */
export function parseEnvConfig<Schema extends z.ZodType>(
  schema: Schema,
  env: NodeJS.ProcessEnv,
  emptyIsAValue: readonly string[] = [],
): z.infer<Schema> {
  const present = Object.fromEntries(
    Object.entries(env).filter(([name, value]) => value !== '' || emptyIsAValue.includes(name)),
  );
  const parsed = schema.safeParse(present);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
  throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
}

/** `{ [key]: value }`, or `{}` when the value is undefined (for options under exactOptionalPropertyTypes). */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** The configuration {@link serviceLimits} reads: the shared variables, validated. */
export type SharedEnvConfig = z.infer<z.ZodObject<typeof sharedEnvShape>>;

/** What the shared variables set on the proxy, the routes and the server of either app. */
export interface ServiceLimits {
  proxy: {
    /** Absent for `auto`: the proxy picks (see `chooseUpstreamEngine`). */
    engine?: UpstreamEngine;
    trustedProxies: string[];
    preserveHost: boolean;
    responseTimeoutMs: number;
    maxBodyBytes?: number;
    maxConnectionsPerSession?: number;
    maxSockets: number;
    queueTimeoutMs: number;
    bodyTimeoutMs: number;
    sendTimeoutMs: number;
    minTransferRateBps: number;
    maxStalledPerSession: number;
    tunnelHalfCloseTimeoutMs: number;
    tunnelIdleTimeoutMs: number;
  };
  isAllowedUpstream: (address: string) => boolean;
  client: Required<ClientLimits>;
}

/**
 * Turns the shared variables into options, checking what one variable alone cannot: a bad
 * `UPSTREAM_NETWORKS` entry or `TRUSTED_PROXIES` is caught by the proxy, and a head timeout longer than the
 * request timeout here, both as a {@link ConfigError}.
 */
export function serviceLimits(config: SharedEnvConfig): ServiceLimits {
  if (config.REQUEST_TIMEOUT_MS > 0 && config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      'Invalid configuration: HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (the head is part of the request)',
    );
  }
  try {
    createTrustedProxyMatcher(config.TRUSTED_PROXIES);
  } catch (error) {
    throw new ConfigError(`Invalid configuration: TRUSTED_PROXIES ${(error as Error).message}`);
  }
  let isAllowedUpstream: (address: string) => boolean;
  try {
    isAllowedUpstream = createUpstreamAddressPolicy({ networks: config.UPSTREAM_NETWORKS });
  } catch (error) {
    throw new ConfigError(`Invalid configuration: UPSTREAM_NETWORKS ${(error as Error).message}`);
  }
  return {
    proxy: {
      ...(config.UPSTREAM_ENGINE === 'auto' ? {} : { engine: config.UPSTREAM_ENGINE }),
      trustedProxies: config.TRUSTED_PROXIES,
      preserveHost: config.PRESERVE_HOST,
      responseTimeoutMs: config.PROXY_TIMEOUT_MS,
      ...optional('maxBodyBytes', config.MAX_BODY_BYTES || undefined),
      ...optional('maxConnectionsPerSession', config.MAX_CONNECTIONS_PER_SESSION || undefined),
      maxSockets: config.UPSTREAM_MAX_SOCKETS,
      queueTimeoutMs: config.UPSTREAM_QUEUE_TIMEOUT_MS,
      bodyTimeoutMs: config.CLIENT_BODY_TIMEOUT_MS,
      sendTimeoutMs: config.CLIENT_SEND_TIMEOUT_MS,
      minTransferRateBps: config.CLIENT_MIN_RATE_BPS,
      maxStalledPerSession: config.MAX_STALLED_PER_SESSION,
      tunnelHalfCloseTimeoutMs: config.WS_HALF_CLOSE_TIMEOUT_MS,
      tunnelIdleTimeoutMs: config.WS_IDLE_TIMEOUT_MS,
    },
    isAllowedUpstream,
    client: {
      maxHeaderBytes: config.MAX_HEADER_BYTES,
      maxHeaderCount: config.MAX_HEADER_COUNT,
      headersTimeoutMs: config.HEADERS_TIMEOUT_MS,
      requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    },
  };
}
