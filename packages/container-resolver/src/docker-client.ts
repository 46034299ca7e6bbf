import Docker from 'dockerode';
import { type DockerEnv, type DockerOptionsFromEnvOptions, dockerOptionsFromEnv } from './docker-options.js';

/** Options of {@link createDockerClient}. */
export type DockerClientOptions = Pick<DockerOptionsFromEnvOptions, 'timeoutMs'>;

/**
 * A dockerode client configured like the docker CLI from `env` (see `dockerOptionsFromEnv`), with a request
 * timeout (default 5000 ms) so a hung daemon fails fast. The timeout is a socket idle timeout: a client for
 * a long-lived stream such as `getEvents` needs `timeoutMs: 0`.
 */
export function createDockerClient(env: DockerEnv = process.env, options: DockerClientOptions = {}): Docker {
  return new Docker(dockerOptionsFromEnv(env, options));
}
