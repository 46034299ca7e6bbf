/**
 * The closed set of machine-readable error codes. Each one is a row of the error contract; the wire body
 * carries it as `code` next to the NestJS-compatible `statusCode`/`error`/`message`.
 */
export const PREVIEW_ERROR_CODES = [
  // The locked rows (CONTRACT.md); their statuses and messages never change.
  'INVALID_PORT',
  'PORT_REQUIRED',
  'PREVIEW_NOT_REGISTERED',
  'CONTAINER_LOOKUP_FAILED',
  'CONTAINER_NOT_RUNNING',
  'CONTAINER_NO_IP',
  'UPSTREAM_CONNECT_FAILED',
  'FORBIDDEN',
  // Rows the seed never covered.
  'INVALID_SESSION_ID',
  'MALFORMED_JSON',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'MALFORMED_PATH',
  'ROUTE_NOT_FOUND',
  'UPGRADE_NOT_SUPPORTED',
  'PORT_NOT_REGISTERED',
  'PROXY_TIMEOUT',
  'TOO_MANY_CONNECTIONS',
  'HEADERS_TOO_LARGE',
  'MALFORMED_REQUEST',
  'REQUEST_TIMEOUT',
  'CONTAINER_ADDRESS_REFUSED',
  'UPSTREAM_BUSY',
  'EXPECTATION_FAILED',
  'HTTP_VERSION_NOT_SUPPORTED',
  'UPGRADE_FAILED',
  'INVALID_STRIP_PREFIX',
  'INVALID_VISIBILITY',
  'INVALID_TOKEN_TTL',
  'PREVIEW_TOKEN_REQUIRED',
  'PREVIEW_TOKEN_INVALID',
  'PREVIEW_TOKENS_DISABLED',
  'INVALID_LOG_QUERY',
  // The sessions API (container lifecycle, exec, files).
  'INVALID_SESSION_REQUEST',
  'SESSION_NOT_FOUND',
  'SESSION_EXISTS',
  'SESSION_NOT_RUNNING',
  'IMAGE_NOT_FOUND',
  'IMAGE_PULL_FAILED',
  'DOCKER_ENGINE_ERROR',
  'INVALID_FILE_PATH',
  'FILE_NOT_FOUND',
  'NOT_A_FILE',
  'NOT_A_DIRECTORY',
  'INTERNAL',
] as const;

/** One of {@link PREVIEW_ERROR_CODES}. */
export type PreviewErrorCode = (typeof PREVIEW_ERROR_CODES)[number];

/** HTTP status of each error code: the single table every adapter answers with. */
export const ERROR_STATUS = {
  INVALID_PORT: 400,
  PORT_REQUIRED: 400,
  PREVIEW_NOT_REGISTERED: 404,
  CONTAINER_LOOKUP_FAILED: 500,
  CONTAINER_NOT_RUNNING: 500,
  CONTAINER_NO_IP: 500,
  UPSTREAM_CONNECT_FAILED: 502,
  FORBIDDEN: 403,
  INVALID_SESSION_ID: 400,
  MALFORMED_JSON: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  MALFORMED_PATH: 400,
  ROUTE_NOT_FOUND: 404,
  UPGRADE_NOT_SUPPORTED: 400,
  PORT_NOT_REGISTERED: 404,
  PROXY_TIMEOUT: 504,
  TOO_MANY_CONNECTIONS: 429,
  HEADERS_TOO_LARGE: 431,
  MALFORMED_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  CONTAINER_ADDRESS_REFUSED: 500,
  UPSTREAM_BUSY: 503,
  EXPECTATION_FAILED: 417,
  HTTP_VERSION_NOT_SUPPORTED: 505,
  UPGRADE_FAILED: 502,
  INVALID_STRIP_PREFIX: 400,
  INVALID_VISIBILITY: 400,
  INVALID_TOKEN_TTL: 400,
  PREVIEW_TOKEN_REQUIRED: 401,
  PREVIEW_TOKEN_INVALID: 403,
  PREVIEW_TOKENS_DISABLED: 400,
  INVALID_LOG_QUERY: 400,
  INVALID_SESSION_REQUEST: 400,
  SESSION_NOT_FOUND: 404,
  SESSION_EXISTS: 409,
  SESSION_NOT_RUNNING: 409,
  IMAGE_NOT_FOUND: 404,
  IMAGE_PULL_FAILED: 502,
  DOCKER_ENGINE_ERROR: 502,
  INVALID_FILE_PATH: 400,
  FILE_NOT_FOUND: 404,
  NOT_A_FILE: 400,
  NOT_A_DIRECTORY: 400,
  INTERNAL: 500,
} as const satisfies Record<PreviewErrorCode, number>;

/** The HTTP status of an error code. */
export function getHttpStatus(code: PreviewErrorCode): number {
  return ERROR_STATUS[code];
}

// NestJS puts the standard reason phrase in `error`; clients match on it, so the phrases are spelled here
// rather than borrowed from a runtime table that could drift.
const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** The HTTP reason phrase sent as `error` for a status. */
export function getReasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? 'Error';
}
