import type { IncomingMessage } from 'node:http';

/**
 * What one request's access line needs from the layers it crosses: its id and start, the route and target
 * the router chose, and when the proxy handed it to the upstream connection. Attached to the request
 * only when someone records access (an unobserved request carries none and costs nothing).
 */
export interface RequestTrace {
  requestId: string;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** The route prefix (`/previews`, `/internal-previews/proxy`) or `host` for host routing. */
  route?: string;
  sessionId?: string;
  port?: number;
  /** When the proxy dispatched the request, and when it was on a connected upstream socket. */
  dispatchedAt?: number;
  connectedAt?: number;
  /** A WebSocket's close code: the first close frame either side sent. */
  closeCode?: number;
  /** Body bytes forwarded to the container, counted when the proxy forwards a body. */
  bytesIn?: number;
  /** The contract code of an error answered instead of a container's response. */
  error?: string;
  /** The status a container answered a WebSocket upgrade with instead of 101 (passed to the client). */
  upgradeStatus?: number;
}

const kTrace = Symbol.for('sandbox.preview.trace');
type TracedRequest = IncomingMessage & { [kTrace]?: RequestTrace };

/** The trace attached to a request, if its access is recorded. */
export function traceOf(req: IncomingMessage): RequestTrace | undefined {
  return (req as TracedRequest)[kTrace];
}

/** Attaches a trace to a request. */
export function attachTrace(req: IncomingMessage, trace: RequestTrace): void {
  (req as TracedRequest)[kTrace] = trace;
}
