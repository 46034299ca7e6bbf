import { z } from 'zod';

const portNumber = z.coerce.number().int().min(0).max(65535);

const configSchema = z.object({
  PORT: portNumber.default(4002),
  HOST: z.string().min(1).default('0.0.0.0'),
  INTERNAL_SERVICE_KEY: z
    .string({ error: 'is required (the shared secret of the internal API)' })
    .min(1, { error: 'must not be empty: an empty key would authenticate nothing' }),
  DOCKER_HOST: z.string().min(1).optional(),
  PREVIEW_NETWORK: z.string().min(1).optional(),
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
  DOCKER_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1000).default(30_000),
});

/** The validated configuration of container-manager. */
export type ContainerManagerConfig = z.infer<typeof configSchema>;

/** A configuration error; its message names every offending variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv): ContainerManagerConfig {
  // An exported-but-empty optional variable means "not set", as in a shell.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = configSchema.safeParse({ ...present, INTERNAL_SERVICE_KEY: env.INTERNAL_SERVICE_KEY });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
  throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
}
