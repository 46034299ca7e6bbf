import { availableParallelism } from 'node:os';
import { listenPortSchema, parseEnvConfig, sharedEnvShape } from '@sandbox/preview-server';
import { z } from 'zod';

const configSchema = z.object({
  ...sharedEnvShape,
  PORT: listenPortSchema(4003),
  // An edge has no Docker socket and no registrations of its own: everything it serves comes from Redis.
  REDIS_URL: z.url({
    protocol: /^rediss?$/,
    error: (issue) =>
      issue.input === undefined
        ? 'is required (the Redis the container-manager publishes to)'
        : 'must be a redis:// or rediss:// URL',
  }),
  // Processes serving the one port (node:cluster), each a Redis reader: every core by default.
  WORKERS: z.coerce
    .number()
    .int()
    .min(1, { error: 'must be at least 1' })
    .max(256)
    .default(availableParallelism()),
});

/** The validated configuration of edge-proxy. */
export type EdgeProxyConfig = z.infer<typeof configSchema>;

/** Reads and validates the environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv): EdgeProxyConfig {
  return parseEnvConfig(configSchema, env);
}
