import { type ContainerResolver, isPreviewError, previewErrors } from '@sandbox/error-contract';
import type { PreviewRegistry } from '@sandbox/preview-registry';
import { createUpstreamAddressPolicy, type UpstreamTarget } from '@sandbox/proxy-core';

/** Where a session's active port is served, and how the path routes forward to it. */
export interface PreviewTarget extends UpstreamTarget {
  /** The port was registered with `stripPrefix: false`: the path routes forward the whole path. */
  keepPrefix?: true;
  /**
   * Set when the port is private: the routes forward only a request with a token issued at or after this
   * time (ms since the epoch).
   */
  tokensNotBefore?: number;
}

/** Turns a validated session id into where its preview is served, in the contract's order of checks. */
export interface PreviewTargetResolver {
  /** Registry first (404 without touching Docker), then the container (500s), then ip:port. */
  resolve(sessionId: string): Promise<PreviewTarget>;
  /**
   * The target `resolve` would give, when the registry and the resolver both know it now (their `peek`),
   * else `undefined`: then `resolve` tells, errors included. A known container whose address is refused
   * throws the error `resolve` would reject with (asking `resolve` again would count a second lookup).
   * Optional, for resolvers written elsewhere.
   */
  peek?(sessionId: string): PreviewTarget | undefined;
  /**
   * Whether the session's active port keeps the path routes' prefix, answered now from the registry's
   * memory; `undefined` when only `resolve` can tell. Optional, for resolvers written elsewhere.
   */
  keepsPrefix?(sessionId: string): boolean | undefined;
  /** The same for one given port of the session (host routing): the contract's 404 unless it is registered. */
  resolvePort(sessionId: string, port: number): Promise<PreviewTarget>;
  /** Registration's check: the container exists and runs (an address is only needed to proxy). */
  assertContainerRunning(sessionId: string): Promise<void>;
}

/** Options of {@link createPreviewTargetResolver}. */
export interface PreviewTargetResolverOptions {
  registry: PreviewRegistry;
  resolver: ContainerResolver;
  /**
   * Whether a container's address may be forwarded to; a refused one is the 500
   * `CONTAINER_ADDRESS_REFUSED`. Default: {@link createUpstreamAddressPolicy} (private networks only, never
   * loopback, link-local or the host's own addresses).
   */
  isAllowedUpstream?: (address: string) => boolean;
}

/** Composes the registry and the container resolver. */
export function createPreviewTargetResolver({
  registry,
  resolver,
  isAllowedUpstream = createUpstreamAddressPolicy(),
}: PreviewTargetResolverOptions): PreviewTargetResolver {
  // The address comes from Docker, or from a shared state anyone with access to Redis could write: it is
  // checked on every request, so that no entry can point the proxy at the host or its metadata service.
  const addressOf = async (sessionId: string): Promise<string> => {
    const { ip } = await resolver.resolve(sessionId);
    if (!isAllowedUpstream(ip)) throw previewErrors.containerAddressRefused(sessionId);
    return ip;
  };
  // A private port's target carries when its tokens start to count; a public one's carries nothing more.
  const withAccess = (sessionId: string, target: PreviewTarget): PreviewTarget => {
    const access = registry.accessOf(sessionId, target.port);
    if (access?.visibility === 'private') target.tokensNotBefore = access.tokensNotBefore;
    return target;
  };
  const targetOf = (sessionId: string, host: string, port: number): PreviewTarget =>
    withAccess(
      sessionId,
      registry.keepsPrefix(sessionId, port) ? { host, port, keepPrefix: true } : { host, port },
    );
  return {
    keepsPrefix(sessionId) {
      const port = registry.peek?.(sessionId);
      return port === undefined ? undefined : registry.keepsPrefix(sessionId, port);
    },
    peek(sessionId) {
      const port = registry.peek?.(sessionId);
      if (port === undefined) return undefined;
      const container = resolver.peek?.(sessionId);
      if (container === undefined) return undefined;
      if (!isAllowedUpstream(container.ip)) throw previewErrors.containerAddressRefused(sessionId);
      return targetOf(sessionId, container.ip, port);
    },
    async resolve(sessionId) {
      const port = await registry.lookup(sessionId);
      if (port === undefined) throw previewErrors.previewNotRegistered(sessionId);
      return targetOf(sessionId, await addressOf(sessionId), port);
    },
    async resolvePort(sessionId, port) {
      const ports = await registry.ports(sessionId);
      if (!ports.includes(port)) throw previewErrors.previewNotRegistered(sessionId);
      // Host routes have no prefix to keep: only the access matters.
      return withAccess(sessionId, { host: await addressOf(sessionId), port });
    },
    async assertContainerRunning(sessionId) {
      try {
        await resolver.resolve(sessionId);
      } catch (error) {
        if (!(isPreviewError(error) && error.code === 'CONTAINER_NO_IP')) throw error;
      }
    },
  };
}
