import { ERROR_STATUS, type PreviewErrorCode } from './codes.js';

/** Options of a {@link PreviewError}. */
export interface PreviewErrorOptions {
  /** The underlying failure, kept for logs; never sent to the client. */
  cause?: unknown;
}

/**
 * The one error class the libraries throw. The message is the client-facing contract message; the
 * underlying failure travels in `cause` so it reaches logs but never the wire.
 */
export class PreviewError extends Error {
  /** Machine-readable code, a row of the error contract. */
  readonly code: PreviewErrorCode;
  /** HTTP status the code maps to. */
  readonly status: number;

  constructor(code: PreviewErrorCode, message: string, options: PreviewErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'PreviewError';
    this.code = code;
    this.status = ERROR_STATUS[code];
  }
}

/** Whether a value is a {@link PreviewError} (also across duplicated package copies). */
export function isPreviewError(value: unknown): value is PreviewError {
  return (
    value instanceof PreviewError ||
    (value instanceof Error &&
      value.name === 'PreviewError' &&
      typeof (value as Partial<PreviewError>).code === 'string' &&
      typeof (value as Partial<PreviewError>).status === 'number')
  );
}

/** Reason text of a failure, for the "Failed to validate container" message. */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    // dockerode puts the daemon's own words in `json.message` and a noisy prefix in `message`.
    const json = (cause as { json?: unknown }).json;
    if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
      return (json as { message: string }).message;
    }
    return cause.message || cause.name;
  }
  return String(cause);
}

/** Factories for every contract row: the only place client-facing messages are spelled. */
export const previewErrors = {
  /** 400: the port is not an integer in 1024..65535 (or not a JSON number). */
  invalidPort: () => new PreviewError('INVALID_PORT', 'Port must be an integer between 1024 and 65535'),
  /** 400: no body, an empty body, or no `port` field. */
  portRequired: () => new PreviewError('PORT_REQUIRED', "Request body field 'port' is required"),
  /** 404: the session has no registered preview port. */
  previewNotRegistered: (sessionId: string) =>
    new PreviewError('PREVIEW_NOT_REGISTERED', `No preview port registered for session ${sessionId}`),
  /** 500: the container was not found or Docker failed; the reason is part of the message. */
  containerLookupFailed: (sessionId: string, cause: unknown) =>
    new PreviewError(
      'CONTAINER_LOOKUP_FAILED',
      `Failed to validate container for session ${sessionId}: ${describeCause(cause)}`,
      { cause },
    ),
  /** 500: the container exists but is not running (stopped, paused, restarting...). */
  containerNotRunning: (sessionId: string) =>
    new PreviewError('CONTAINER_NOT_RUNNING', `Container for session ${sessionId} is not running`),
  /** 500: the container runs but has no IPv4 address on any usable network. */
  containerNoIp: (sessionId: string) =>
    new PreviewError('CONTAINER_NO_IP', `Container for session ${sessionId} has no IP address`),
  /** 502: the connection to the preview server failed (refused, unreachable, reset before a response). */
  upstreamConnectFailed: (cause?: unknown) =>
    new PreviewError(
      'UPSTREAM_CONNECT_FAILED',
      'Failed to connect to preview server',
      cause === undefined ? {} : { cause },
    ),
  /** 403: the internal key is missing or wrong. */
  forbidden: () => new PreviewError('FORBIDDEN', 'Forbidden'),
  /** 400: the session id does not match the container-name pattern; it never reaches Docker. */
  invalidSessionId: () =>
    new PreviewError('INVALID_SESSION_ID', 'Session id must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$'),
  /** 400: the request body is not valid JSON. */
  malformedJson: (cause?: unknown) =>
    new PreviewError(
      'MALFORMED_JSON',
      'Request body is not valid JSON',
      cause === undefined ? {} : { cause },
    ),
  /** 415: a body was sent with a content type other than JSON. */
  unsupportedMediaType: () =>
    new PreviewError('UNSUPPORTED_MEDIA_TYPE', 'Request body must be application/json'),
  /** 413: the request body is larger than the route accepts. */
  payloadTooLarge: (limitBytes: number) =>
    new PreviewError('PAYLOAD_TOO_LARGE', `Request body must not exceed ${limitBytes} bytes`),
  /** 400: the path has malformed percent-encoding or is otherwise unparseable. */
  malformedPath: () => new PreviewError('MALFORMED_PATH', 'Request path is malformed'),
  /** 404: no route matches the method and path. */
  routeNotFound: (method: string, path: string) =>
    new PreviewError('ROUTE_NOT_FOUND', `Cannot ${method} ${path}`),
  /** 400: an `Upgrade` to anything but WebSocket, which the proxy cannot tunnel. */
  upgradeNotSupported: () =>
    new PreviewError('UPGRADE_NOT_SUPPORTED', 'Only WebSocket upgrades are supported'),
  /** 404: removing a port the session does not have (the session may have others). */
  portNotRegistered: (sessionId: string, port: number) =>
    new PreviewError('PORT_NOT_REGISTERED', `Port ${port} is not registered for session ${sessionId}`),
  /** 504: the container did not send its response head (or answer an upgrade) within the proxy timeout. */
  proxyTimeout: (cause?: unknown) =>
    new PreviewError(
      'PROXY_TIMEOUT',
      'Preview server did not respond in time',
      cause === undefined ? {} : { cause },
    ),
  /** 429: the session already has as many requests and WebSockets in flight as one session may. */
  tooManyConnections: (sessionId: string) =>
    new PreviewError('TOO_MANY_CONNECTIONS', `Too many concurrent connections for session ${sessionId}`),
  /** 431: the request head is larger, or has more fields, than the server accepts. */
  headersTooLarge: () => new PreviewError('HEADERS_TOO_LARGE', 'Request header fields too large'),
  /** 400: the bytes are not an HTTP/1.x request the parser accepts (ambiguous framing included). */
  malformedRequest: (cause?: unknown) =>
    new PreviewError('MALFORMED_REQUEST', 'Malformed HTTP request', cause === undefined ? {} : { cause }),
  /** 408: the client did not send its head, or its whole request, in time. */
  requestTimeout: () => new PreviewError('REQUEST_TIMEOUT', 'Request was not received in time'),
  /**
   * 500: the container's address is one the proxy never forwards to (loopback, unspecified, link-local,
   * multicast, the host's own, or outside the allowed networks): a poisoned state must not turn the proxy
   * into a way into the host.
   */
  containerAddressRefused: (sessionId: string) =>
    new PreviewError(
      'CONTAINER_ADDRESS_REFUSED',
      `Container for session ${sessionId} has an address the proxy does not forward to`,
    ),
  /**
   * 503: every connection the proxy may open to the container is in use, and none came free within the
   * queue timeout (which never exceeds the proxy timeout).
   */
  upstreamBusy: (cause?: unknown) =>
    new PreviewError(
      'UPSTREAM_BUSY',
      'Preview server has no free connection',
      cause === undefined ? {} : { cause },
    ),
  /** 417: an `Expect` other than `100-continue`, the only expectation the proxy can meet (RFC 9110 10.1.1). */
  expectationFailed: () => new PreviewError('EXPECTATION_FAILED', 'Only Expect: 100-continue is supported'),
  /** 505: a request line with a protocol version other than HTTP/1.0 or HTTP/1.1. */
  httpVersionNotSupported: () => new PreviewError('HTTP_VERSION_NOT_SUPPORTED', 'HTTP version not supported'),
  /**
   * 502: the preview server took the connection of a WebSocket upgrade, then closed it without answering
   * (a dev server refusing an origin it does not trust does this): not the locked "Failed to connect".
   */
  upgradeFailed: (cause?: unknown) =>
    new PreviewError(
      'UPGRADE_FAILED',
      'Preview server closed the connection without answering the WebSocket upgrade',
      cause === undefined ? {} : { cause },
    ),
  /** 400: a registration's `stripPrefix` is present but not a JSON boolean. */
  invalidStripPrefix: () =>
    new PreviewError('INVALID_STRIP_PREFIX', "Request body field 'stripPrefix' must be a boolean"),
  /** 400: a registration's `visibility` is present but neither `"public"` nor `"private"`. */
  invalidVisibility: () =>
    new PreviewError('INVALID_VISIBILITY', "Request body field 'visibility' must be 'public' or 'private'"),
  /**
   * 400: a request log read's query is not understood: `follow` other than 1, true, 0 or false, or
   * `after` (or `Last-Event-ID`) other than a whole number of at most 15 digits.
   */
  invalidLogQuery: (name: 'follow' | 'after') =>
    new PreviewError(
      'INVALID_LOG_QUERY',
      name === 'follow'
        ? "Query parameter 'follow' must be 1, true, 0 or false"
        : "Query parameter 'after' must be a non-negative integer",
    ),
  /** 400: a token request's `ttlSeconds` is present but not an integer in 60..86400. */
  invalidTokenTtl: () =>
    new PreviewError(
      'INVALID_TOKEN_TTL',
      "Request body field 'ttlSeconds' must be an integer between 60 and 86400",
    ),
  /**
   * 400: a private port, or a token, was asked of a service without `PREVIEW_TOKEN_SECRET`: it could not
   * check the tokens such a port needs.
   */
  previewTokensDisabled: () =>
    new PreviewError(
      'PREVIEW_TOKENS_DISABLED',
      'Private previews need PREVIEW_TOKEN_SECRET to be configured on this service',
    ),
  /** 401: a private preview was asked without any credential (header, cookie or query parameter). */
  previewTokenRequired: (sessionId: string, port: number) =>
    new PreviewError(
      'PREVIEW_TOKEN_REQUIRED',
      `Preview port ${port} of session ${sessionId} is private: a preview token is required`,
    ),
  /**
   * 403: the credential presented is not a valid token for this preview. `reason` says which check failed
   * (malformed, bad signature, expired, revoked, another session or port); the token itself is never echoed.
   */
  previewTokenInvalid: (sessionId: string, port: number, reason: string) =>
    new PreviewError(
      'PREVIEW_TOKEN_INVALID',
      `Preview token refused for port ${port} of session ${sessionId}: ${reason}`,
    ),
  /** 400: a sessions API body (create, exec) or query that its schema refuses; `detail` names the field. */
  invalidSessionRequest: (detail: string) =>
    new PreviewError('INVALID_SESSION_REQUEST', `Invalid request: ${detail}`),
  /** 404: no container `sandbox-session-{id}` exists. */
  sessionNotFound: (sessionId: string) =>
    new PreviewError('SESSION_NOT_FOUND', `Session ${sessionId} not found`),
  /** 409: creating a session whose container name is taken. */
  sessionExists: (sessionId: string) =>
    new PreviewError('SESSION_EXISTS', `Session ${sessionId} already exists`),
  /** 409: exec needs the session's container running. */
  sessionNotRunning: (sessionId: string) =>
    new PreviewError('SESSION_NOT_RUNNING', `Session ${sessionId} is not running`),
  /** 404: the image is not in the engine's local store, and pulling is not configured. */
  imageNotFound: (image: string) =>
    new PreviewError('IMAGE_NOT_FOUND', `Image ${image} not found locally (pulling is disabled)`),
  /** 502: pulling a missing image from its registry failed. */
  imagePullFailed: (image: string, cause: unknown) =>
    new PreviewError('IMAGE_PULL_FAILED', `Failed to pull image ${image}: ${describeCause(cause)}`, {
      cause,
    }),
  /** 502: the Docker engine failed or could not be reached; its own words are part of the message. */
  dockerEngineError: (cause: unknown) =>
    new PreviewError('DOCKER_ENGINE_ERROR', `Docker engine error: ${describeCause(cause)}`, { cause }),
  /** 400: a file path that is not absolute, holds a `..` segment or a NUL, or is too long. */
  invalidFilePath: () =>
    new PreviewError(
      'INVALID_FILE_PATH',
      "Query parameter 'path' must be an absolute path inside the container, without '..' segments",
    ),
  /** 404: nothing at this path in the session's container. */
  fileNotFound: (sessionId: string, path: string) =>
    new PreviewError('FILE_NOT_FOUND', `No file at ${path} in session ${sessionId}`),
  /** 400: reading or overwriting something that is not a regular file (a directory, a device...). */
  notAFile: (path: string) => new PreviewError('NOT_A_FILE', `${path} is not a regular file`),
  /** 400: listing something that is not a directory. */
  notADirectory: (path: string) => new PreviewError('NOT_A_DIRECTORY', `${path} is not a directory`),
  /** 500: anything unexpected; details go to the logs only. */
  internal: (cause?: unknown) =>
    new PreviewError('INTERNAL', 'Internal server error', cause === undefined ? {} : { cause }),
} as const;
