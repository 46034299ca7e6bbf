import { type ContainerResolver, previewErrors } from '@sandbox/error-contract';
import type Docker from 'dockerode';
import { containerNameFor } from './container-name.js';
import { createDockerClient } from './docker-client.js';
import { parseContainerInspect } from './parse-inspect.js';

// The interface is the routes' too; it lives in error-contract so that neither side depends on the other.
export type { ContainerResolver, ResolvedContainer } from '@sandbox/error-contract';

/** The part of dockerode the resolver uses. */
export type ContainerInspector = Pick<Docker, 'getContainer'>;

/** Default deadline of one Docker lookup, in milliseconds; below the client's 5000 ms socket timeout. */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 3000;

/** Options of {@link createContainerResolver}. */
export interface ContainerResolverOptions {
  /** Docker client; defaults to one configured from `process.env` (`DOCKER_HOST`...). */
  docker?: ContainerInspector;
  /** Preferred network: its address is used when the container is on it; otherwise the first by name. */
  network?: string | undefined;
  /** Deadline of one lookup in ms, so a hung daemon answers the request with a clear reason. */
  timeoutMs?: number;
}

/**
 * A resolver that inspects the session's container once per call. No cache: every answer reflects the
 * container's state at the time of the request, which registration and fail-fast proxying rely on.
 */
export function createContainerResolver({
  docker = createDockerClient(),
  network,
  timeoutMs = DEFAULT_RESOLVE_TIMEOUT_MS,
}: ContainerResolverOptions = {}): ContainerResolver {
  return {
    async resolve(sessionId) {
      const name = containerNameFor(sessionId);
      // Our own deadline rather than only the client's socket timeout: that one surfaces as a bare
      // "socket hang up", which does not tell the operator that Docker was slow.
      const deadline = AbortSignal.timeout(timeoutMs);
      let parsed: ReturnType<typeof parseContainerInspect>;
      try {
        const inspect = await docker.getContainer(name).inspect({ abortSignal: deadline });
        parsed = parseContainerInspect(inspect, { network });
      } catch (error) {
        const cause = deadline.aborted
          ? new Error(`Docker did not answer within ${timeoutMs} ms`, { cause: error })
          : error;
        throw previewErrors.containerLookupFailed(sessionId, cause);
      }
      if (!parsed.running) throw previewErrors.containerNotRunning(sessionId);
      if (parsed.ip === undefined || parsed.network === undefined)
        throw previewErrors.containerNoIp(sessionId);
      return { ip: parsed.ip, network: parsed.network, containerId: parsed.id, labels: parsed.labels };
    },
  };
}
