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
