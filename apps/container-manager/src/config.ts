import { ConfigError, listenPortSchema, parseEnvConfig, sharedEnvShape } from '@sandbox/preview-core';
import { z } from 'zod';

const BYTE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

// Docker's own spelling of sizes: a number of bytes, or one with a unit (k, m, g, t; b optional).
const byteSize = z
  .string()
  .regex(/^\d+(\.\d+)?\s*([kmgt]?)i?b?$/i, { error: 'must be a size such as 512m or 2g' })
  .transform((value) => {
    const [, amount = '0', unit = ''] = /^(\d+(?:\.\d+)?)\s*([kmgt]?)/i.exec(value) ?? [];
    return Math.floor(Number(amount) * (BYTE_UNITS[unit.toLowerCase()] ?? 1));
  })
  .refine((bytes) => bytes >= 1024 * 1024, { error: 'must be at least 1m' });

const configSchema = z.object({
  ...sharedEnvShape,
  PORT: listenPortSchema(4002),
  INTERNAL_SERVICE_KEY: z
    .string({ error: 'is required (the shared secret of the internal API)' })
    .min(1, { error: 'must not be empty: an empty key would authenticate nothing' }),
  DOCKER_HOST: z.string().min(1).optional(),
  PREVIEW_NETWORK: z.string().min(1).optional(),
  DOCKER_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1000).default(30_000),
  // The sessions API (docs/sessions.md): containers from an image, exec and files, behind the key.
  SESSIONS_API: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true'),
  // The origin previews are reached at, for the URLs a session is told (PREVIEW_URL...) and shown.
  PREVIEW_PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://localhost:4002' })
    .optional(),
  // Limits of every container the API creates: memory (a byte size: 512m, 2g), CPUs (1.5), processes.
  SESSION_MEMORY: byteSize.default(2 * 1024 ** 3),
  SESSION_CPUS: z.coerce.number().positive({ error: 'must be a positive number of CPUs' }).optional(),
  SESSION_PIDS_LIMIT: z.coerce.number().int().min(16).default(1024),
  // `missing`: pull an image the engine lacks from its registry; `never` (the default): 404 IMAGE_NOT_FOUND.
  SESSION_IMAGE_PULL: z.enum(['never', 'missing'], { error: 'must be never or missing' }).default('never'),
  // Largest file a PUT …/files accepts (a byte size).
  SESSION_FILE_MAX_BYTES: byteSize.default(1024 ** 3),
  // How long a session's port may take to accept connections after its container starts.
  SESSION_PORT_WAIT_MS: z.coerce.number().int().min(1000).default(600_000),
  // Each preview's recent requests (GET …/sessions/:id/previews/log): entries kept per session (0: no
  // log), and sessions with a log (the least recently written goes first). About 0.5 KiB per entry.
  REQUEST_LOG_SIZE: z.coerce.number().int().min(0).max(10_000).default(100),
  REQUEST_LOG_SESSIONS: z.coerce.number().int().min(1).max(100_000).default(500),
  // The dashboard's own port (its own origin, away from the previews'); none: no dashboard.
  DASHBOARD_PORT: z.coerce.number().int().min(0).max(65535).optional(),
});

/** The validated configuration of container-manager. */
export type ContainerManagerConfig = z.infer<typeof configSchema>;

/** Reads and validates the environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv): ContainerManagerConfig {
  const config = parseEnvConfig(configSchema, env, ['INTERNAL_SERVICE_KEY']);
  // The dashboard is safe from the previews only on an origin of its own (docs/developer-view.md).
  const { DASHBOARD_PORT: dashboard } = config;
  if (
    dashboard !== undefined &&
    dashboard !== 0 &&
    (dashboard === config.PORT || dashboard === config.METRICS_PORT)
  )
    throw new ConfigError(
      'Invalid configuration: DASHBOARD_PORT must differ from PORT and METRICS_PORT (the dashboard needs a port, and an origin, of its own)',
    );
  return config;
}
