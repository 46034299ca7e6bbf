import { listenPortSchema, parseEnvConfig, sharedEnvShape } from '@sandbox/preview-core';
import { z } from 'zod';

const configSchema = z.object({
  ...sharedEnvShape,
  PORT: listenPortSchema(4002),
  INTERNAL_SERVICE_KEY: z
    .string({ error: 'is required (the shared secret of the internal API)' })
    .min(1, { error: 'must not be empty: an empty key would authenticate nothing' }),
  DOCKER_HOST: z.string().min(1).optional(),
  PREVIEW_NETWORK: z.string().min(1).optional(),
  DOCKER_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1000).default(30_000),
});

/** The validated configuration of container-manager. */
export type ContainerManagerConfig = z.infer<typeof configSchema>;

/** Reads and validates the environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv): ContainerManagerConfig {
  return parseEnvConfig(configSchema, env, ['INTERNAL_SERVICE_KEY']);
}
