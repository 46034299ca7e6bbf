import { previewErrors } from '@sandbox/error-contract';

// Failures of the connection to the container before it answered: the contract calls all of them
// "Failed to connect to preview server" (502). http-proxy-middleware's own mapping would say 504 or 500.
const CONNECT_FAILURE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  // undici: the container closed the connection before its response was complete ("other side closed").
  'UND_ERR_SOCKET',
]);

/** Whether an error of the upstream request means the preview server could not be reached or dropped us. */
export function isUpstreamConnectFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (CONNECT_FAILURE_CODES.has(code) || code.startsWith('HPE_'));
}

// The container took longer than the proxy timeout to send its response head: undici's headers timeout
// for HTTP, ours for upgrades.
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'PREVIEW_PROXY_TIMEOUT']);

/** Whether an error of the upstream request means the container did not answer in time. */
export function isUpstreamTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TIMEOUT_CODES.has(code);
}

/** Code of the failure of a request that found no free connection to its container in time (503). */
export const UPSTREAM_BUSY_CODE = 'PREVIEW_UPSTREAM_BUSY';

/**
 * The contract error for a failure of the upstream request before the container answered: the 504 for a
 * timeout, the 503 for no free connection in time, the 502 for a connection failure; anything else (a
 * contract error already, or a bug) as is.
 */
export function upstreamFailure(error: unknown): unknown {
  if (isUpstreamTimeout(error)) return previewErrors.proxyTimeout(error);
  if ((error as { code?: unknown } | null)?.code === UPSTREAM_BUSY_CODE)
    return previewErrors.upstreamBusy(error);
  if (isUpstreamConnectFailure(error)) return previewErrors.upstreamConnectFailed(error);
  return error;
}
