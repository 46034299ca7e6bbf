import { z } from 'zod';
import { LOG_LEVELS } from './logger.js';

// Configuration pieces both apps read from the environment, validated once at start-up.

const portNumber = z.coerce.number().int().min(0).max(65535);

// One or more DNS labels: what a browser can put in front of `{port}-{sessionId}.`.
const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The listening port, with an app's own default. */
export const listenPortSchema = (defaultPort: number) => portNumber.default(defaultPort);

/** Environment variables shared by container-manager and edge-proxy. */
export const sharedEnvShape = {
  HOST: z.string().min(1).default('0.0.0.0'),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    ),
  PRESERVE_HOST: z
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
  // One access line per request (with request ids); `false` trades them for throughput (measured: about a
  // third of the requests per second of a tiny response on two cores go to writing them).
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
