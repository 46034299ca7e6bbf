/**
 * The seam between the routes and whatever knows where a session's container is. It lives here, beside
 * the container names, so that the routes (which must not depend on Docker) and the Docker resolver (which
 * must not depend on the routes) share one definition.
 */

/** Where a session's preview server can be reached. */
export interface ResolvedContainer {
  /** IPv4 address of the container on {@link ResolvedContainer.network}. */
  ip: string;
  /** Docker network the address belongs to. */
  network: string;
  /** Full container id. */
  containerId: string;
  /** Container labels. */
  labels: Readonly<Record<string, string>>;
}

/** Resolves a session to its running container; implementations may cache (e.g. driven by Docker events). */
export interface ContainerResolver {
  /**
   * The running container of a session. Rejects with a `PreviewError`: INVALID_SESSION_ID,
   * CONTAINER_LOOKUP_FAILED (not found or Docker failed), CONTAINER_NOT_RUNNING or CONTAINER_NO_IP.
   */
  resolve(sessionId: string): Promise<ResolvedContainer>;
  /**
   * The running container `resolve` would give, answered now from a cache, or `undefined` when only
   * `resolve` can tell (not cached, or an error to report). Optional: a proxy asks it first to spare a
   * promise per request.
   */
  peek?(sessionId: string): ResolvedContainer | undefined;
}
