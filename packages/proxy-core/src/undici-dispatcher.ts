import { Agent, type Dispatcher } from 'undici';

// The only module that loads undici at run time. It is reached through `import()` alone (proxy.ts,
// loadUpstreamDispatcher), so a proxy served by the native engine never loads undici, and a consumer's
// bundler still finds it.

/** Options of {@link createUpstreamDispatcher}. */
export interface UpstreamDispatcherOptions {
  /** Give up on a TCP connect after this many ms (answered 502). Default 5000. */
  connectTimeoutMs?: number;
  /** Most concurrent connections per container ip:port. Default 1024. */
  maxSockets?: number;
  /**
   * Idle keep-alive connections are closed after this many ms. Default 4000: below Node's 5 s server
   * keep-alive, so we close an idle connection before the container does and never send on a dying one.
   */
  idleTimeoutMs?: number;
  /**
   * Give up on a container that has not sent its response head after this many ms (answered 504); the
   * time runs while the request body is still being sent only when the container stopped reading it.
   * Default 60000; 0 waits for ever.
   */
  responseTimeoutMs?: number;
}

/**
 * The `undici` engine's pooled keep-alive client for HTTP requests to containers: one undici pool per
 * container ip:port, created on first use and dropped by undici once its connections are gone.
 */
export function createUpstreamDispatcher({
  connectTimeoutMs = 5000,
  maxSockets = 1024,
  idleTimeoutMs = 4000,
  responseTimeoutMs = 60_000,
}: UpstreamDispatcherOptions = {}): Dispatcher {
  return new Agent({
    connections: maxSockets,
    pipelining: 1,
    keepAliveTimeout: idleTimeoutMs,
    // Never keep a connection longer than we would on our own, whatever the container's Keep-Alive says.
    keepAliveMaxTimeout: idleTimeoutMs,
    connect: { timeout: connectTimeoutMs },
    // A container that never answers (hung, or gone with its address while a pooled connection waited)
    // must not hold the client for ever. Once it answered, a preview may stream (SSE, long polls) for as
    // long as it likes: the client can leave at any time, which aborts the upstream request.
    headersTimeout: responseTimeoutMs,
    bodyTimeout: 0,
  });
}
