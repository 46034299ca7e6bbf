import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import type { PreviewUpgradeHandler } from '@sandbox/preview-routes';
import {
  type AccessRecorder,
  refusalRecord,
  requestIdOf,
  requestLineOf,
  sendErrorResponse,
  sendUpgradeErrorResponse,
  traceHttpRequest,
} from '@sandbox/preview-routes';
import { traceOf } from '@sandbox/proxy-core';
import { ConfigError } from './env-config.js';
import type { Logger } from './logger.js';

/** Options of {@link servePreviewApp}. */
export interface ServePreviewAppOptions {
  port: number;
  host: string;
  /** How long in-flight requests and WebSockets may run on after `close()` before they are cut. */
  shutdownGraceMs: number;
  /** Limits on what a client may send; each has a safe default. */
  limits?: ClientLimits;
  /**
   * Records the answers the server makes itself, before any route (408, 431, 400, 417, 505, and the 404
   * of a CONNECT), as access
   * lines with route `server` and their code in `error`; each also carries an `X-Request-Id`. Default:
   * none.
   */
  onAccess?: AccessRecorder;
}

/** What one client may send, and how slowly: what keeps one bad client from hurting the others. */
export interface ClientLimits {
  /** Largest request head (request line and header fields) in bytes; larger is the 431. Default 16384. */
  maxHeaderBytes?: number;
  /** Most header fields in one request; more is the 431. Default 100. */
  maxHeaderCount?: number;
  /** A client must send its whole head within this many ms (else the 408). Default 20000. */
  headersTimeoutMs?: number;
  /** ...and its whole request, body included, within this many ms; 0: no limit. Default 300000. */
  requestTimeoutMs?: number;
}

type SocketWithMessage = Duplex & { _httpMessage?: ServerResponse | null };

// Bytes in error after a request that is being answered (pipelined behind it, or sent after a request
// that closes the connection): that answer goes out whole, then the connection ends. Answering the bad
// bytes now would put our error where the client expects that request's answer.
function closeAfter(response: ServerResponse, socket: Duplex): void {
  response.shouldKeepAlive = false;
  if (response.writableFinished) {
    socket.destroy();
    return;
  }
  // Node closes the socket itself after an answer that does not keep the connection, unless its head
  // had already promised keep-alive: then it is ended here, and cut if the client does not close.
  response.once('finish', () => {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  });
  response.once('close', () => socket.destroy());
}

// A parser in error reports every later read of the connection again: it is handled once.
const kHandled = Symbol('preview.clientErrorHandled');
type HandledSocket = SocketWithMessage & { [kHandled]?: boolean };

// What a client sent that is not a request the parser accepts, or sent too slowly: the contract's JSON
// and the end of the connection (its bytes cannot be framed any further). Node's own answer would be a
// bare status line with no body. Requests pipelined behind an answer in flight wait for the connection
// (proxy-core forwards a request once it is the one being answered), so they go nowhere when it closes.
// A request line well formed but for a version llhttp does not know (HTTP/1.2, HTTP/3.0). llhttp reports
// that and a malformed line end (`HTTP/1.1` then a bare LF) with the same code, so the line itself decides.
const UNKNOWN_VERSION_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP\/(?!1\.[01]\r)\d\.\d\r\n/;

function clientErrorAnswer(error: NodeJS.ErrnoException & { rawPacket?: Buffer }): PreviewError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return previewErrors.headersTooLarge();
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return previewErrors.requestTimeout();
    case 'HPE_INVALID_VERSION':
      // The same answer as a version llhttp parses but we refuse (HTTP/2.0, HTTP/0.9; see refusedHead).
      if (UNKNOWN_VERSION_LINE.test(error.rawPacket?.toString('latin1', 0, 4096) ?? ''))
        return previewErrors.httpVersionNotSupported();
      return previewErrors.malformedRequest(error);
    default:
      return previewErrors.malformedRequest(error);
  }
}

function createClientErrorHandler(onAccess: AccessRecorder | undefined) {
  return (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: HandledSocket): void => {
    if (socket[kHandled]) return;
    socket[kHandled] = true;
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const inFlight = socket._httpMessage;
    if (inFlight?.req.complete) {
      closeAfter(inFlight, socket);
      return;
    }
    // The request in error is the one being answered: once its answer started, it can only be cut.
    if (inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const answer = clientErrorAnswer(error);
    if (onAccess === undefined) {
      sendUpgradeErrorResponse(socket, answer);
      return;
    }
    const startedAt = performance.now();
    const requestId = randomUUID();
    const bytesOut = sendUpgradeErrorResponse(socket, answer, undefined, requestId);
    onAccess(
      refusalRecord({
        requestId,
        ...requestLineOf(error.rawPacket),
        status: answer.status,
        error: answer.code,
        bytesIn: error.rawPacket?.length ?? 0,
        bytesOut,
        startedAt,
      }),
    );
  };
}

// Transfer codings other than chunked are not undone by Node: forwarded without the field (which the
// upstream client owns), a gzip-coded body would reach the container as if it were plain. RFC 9112 6.1
// allows refusing a coding the server does not understand.
function hasUnsupportedCoding(req: IncomingMessage): boolean {
  const codings = req.headers['transfer-encoding'];
  if (codings === undefined) return false;
  return codings.split(',').some((coding) => {
    const token = coding.trim().toLowerCase();
    return token !== '' && token !== 'chunked' && token !== 'identity';
  });
}

// Node keeps the first `maxHeadersCount` fields and silently drops the rest; one more is let through so
// that a request over the limit can be told apart and refused rather than forwarded with fields missing.
// An HTTP/1.1 request without Host is refused too (RFC 9112 3.2): Node's own check would answer a bare
// 400 with no body, so it is done here instead, in the contract's JSON.
function refusedHead(req: IncomingMessage, maxHeaderCount: number): PreviewError | undefined {
  // llhttp takes `HTTP/2.0` on a request line (the HTTP/2 preface starts with one); nothing here speaks it.
  if (req.httpVersionMajor !== 1) return previewErrors.httpVersionNotSupported();
  if (req.rawHeaders.length > maxHeaderCount * 2) return previewErrors.headersTooLarge();
  if (req.httpVersion === '1.1' && req.headers.host === undefined) return previewErrors.malformedRequest();
  // Node keeps the first of several Host fields; a proxy in front that reads the last would route the
  // same request elsewhere (RFC 9112 3.2: 400).
  if (hostFieldCount(req.rawHeaders) > 1) return previewErrors.malformedRequest();
  if (hasUnsupportedCoding(req)) return previewErrors.malformedRequest();
  return undefined;
}

// Compared by character codes, case-insensitively (`| 0x20` folds exactly the ASCII letters h, o, s, t
// here): no lowercased copy is made of a field of every request.
function isHostName(name: string): boolean {
  return (
    name.length === 4 &&
    (name.charCodeAt(0) | 0x20) === 0x68 &&
    (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 &&
    (name.charCodeAt(3) | 0x20) === 0x74
  );
}

function hostFieldCount(raw: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (isHostName(name)) count++;
  }
  return count;
}

// A connection whose request was refused here ends with that answer; requests pipelined behind it were
// parsed already, and are dropped rather than forwarded.
const kRefused = Symbol('preview.refusedConnection');
type MarkedSocket = Duplex & { [kRefused]?: boolean };

// A parsed request refused before any route, on a socket the server handed over (an upgrade, a CONNECT):
// answered here, with a request id, and recorded at once.
function answerRefusedOnSocket(
  req: IncomingMessage,
  refused: PreviewError,
  onAccess: AccessRecorder,
  socket: Duplex,
): void {
  const startedAt = performance.now();
  const requestId = requestIdOf(req);
  const bytesOut = sendUpgradeErrorResponse(socket, refused, undefined, requestId);
  onAccess(
    refusalRecord({
      requestId,
      method: req.method ?? '-',
      path: req.url ?? '-',
      status: refused.status,
      error: refused.code,
      bytesIn: 0,
      bytesOut,
      startedAt,
    }),
  );
}

/** A listening preview server. */
export interface ServedPreviewApp {
  server: Server;
  /** `http://host:port` it listens on (a wildcard host is given as 127.0.0.1). */
  url: string;
  /** Stops accepting, lets in-flight requests finish for up to the grace period, then cuts the rest. */
  close(): Promise<void>;
}

// RFC 6455 5.5.1: a close frame from the server (unmasked), status 1001 "going away". Written between the
// container's frames in the usual case; a frame of the container cut midway is lost with the connection
// anyway. The TCP end follows, and the proxy then ends the container's side.
const GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);

function goAway(socket: Duplex): void {
  if (socket.destroyed || !socket.writable) return;
  socket.write(GOING_AWAY);
  socket.end();
  // A client that never answers the close must not hold the process.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Serves an app (its request listener and WebSocket upgrades) on a `node:http` server with a graceful
 * close: what both apps run.
 */
export async function servePreviewApp(
  app: {
    requestListener: (req: IncomingMessage, res: ServerResponse) => void;
    handleUpgrade: PreviewUpgradeHandler;
  },
  { port, host, shutdownGraceMs, limits = {}, onAccess }: ServePreviewAppOptions,
): Promise<ServedPreviewApp> {
  const {
    maxHeaderBytes = 16_384,
    maxHeaderCount = 100,
    headersTimeoutMs = 20_000,
    requestTimeoutMs = 300_000,
  } = limits;
  const server = createServer(
    {
      maxHeaderSize: maxHeaderBytes,
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // Node looks for overdue heads and requests every 30 s by default: a slowloris client would hold its
      // socket up to that long past its deadline.
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
      requireHostHeader: false,
    },
    handleRequest,
  );
  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as MarkedSocket;
    if (socket[kRefused]) return;
    const refused = refusedHead(req, maxHeaderCount);
    if (refused === undefined) {
      app.requestListener(req, res);
      return;
    }
    refuse(req, res, refused);
  }
  // An answer made here, before any route: the connection ends with it (what follows on it may be framed
  // as the refused request was not).
  function refuse(req: IncomingMessage, res: ServerResponse, refused: PreviewError): void {
    (req.socket as MarkedSocket)[kRefused] = true;
    res.shouldKeepAlive = false;
    // Traced as any request (its id in the head, its line when the response closes), under route `server`;
    // sendErrorResponse notes the code.
    if (onAccess !== undefined) {
      res.setHeader('x-request-id', traceHttpRequest(req, res, onAccess));
      const trace = traceOf(req);
      if (trace !== undefined) trace.route = 'server';
    }
    sendErrorResponse(res, refused);
  }
  server.maxHeadersCount = maxHeaderCount + 1;
  server.on('clientError', createClientErrorHandler(onAccess));
  // Any other expectation than 100-continue (RFC 9110 10.1.1): Node's own answer is a bare 417.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    refuse(req, res, previewErrors.expectationFailed());
  });
  // Node writes the interim 100 of a request queued behind another one (pipelined) into the socket
  // after that request's final head, corrupting the stream. Only the request being answered gets its
  // 100; a pipelining client sends its body without waiting for one anyway.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (res.socket !== null) res.writeContinue();
    else
      res.once('socket', () => {
        if (!res.headersSent && !req.complete) res.writeContinue();
      });
    handleRequest(req, res);
  });
  // Without a listener Node drops a CONNECT without a word; nothing is tunnelled here, so it gets the
  // contract's 404 like any other request outside the routes (after an answer still in flight, none: the
  // connection ends with that answer).
  server.on('connect', (req: IncomingMessage, socket: SocketWithMessage) => {
    socket.on('error', () => socket.destroy());
    const inFlight = socket._httpMessage;
    if (inFlight) {
      closeAfter(inFlight, socket);
      return;
    }
    const answer = previewErrors.routeNotFound('CONNECT', req.url ?? '');
    if (onAccess === undefined) sendUpgradeErrorResponse(socket, answer);
    else answerRefusedOnSocket(req, answer, onAccess, socket);
  });
  // Upgrades arrive on their own event, so a WebSocket can be the very first request of a connection.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((socket as MarkedSocket)[kRefused]) return;
    const refused = refusedHead(req, maxHeaderCount);
    if (refused === undefined) app.handleUpgrade(req, socket, head);
    else if (onAccess === undefined) sendUpgradeErrorResponse(socket, refused);
    else answerRefusedOnSocket(req, refused, onAccess, socket);
  });
  // Node's closeAllConnections() does not see upgraded sockets; keep them to cut at the deadline.
  const tunnels = new Set<Duplex>();
  server.on('upgrade', (_req, socket: Duplex) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
  });
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;

  return {
    server,
    url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${address.port}`,
    async close() {
      const closed = once(server, 'close');
      server.close();
      // WebSockets live as long as the page: waiting for them would always take the whole grace period.
      for (const socket of tunnels) goAway(socket);
      // Keep-alive connections become idle as their last response ends; sweep them as they do, so the
      // process exits as soon as the in-flight work is done rather than at the end of the grace period.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of tunnels) socket.destroy();
      }, shutdownGraceMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(deadline);
    },
  };
}

/** What {@link runService} needs of a started service. */
export interface RunningService {
  url: string;
  close(): Promise<void>;
  shutdownGraceMs: number;
  /** Where the service logs; flushed before the process exits. Default: the console. */
  logger?: Logger;
  /** The metrics endpoint, when it serves one. */
  metricsUrl?: string;
  /** The dashboard's page, when it serves one. */
  dashboardUrl?: string;
}

/**
 * A service's process entry: starts it, says where it listens, and on SIGTERM or SIGINT drains it (up to
 * its grace period), flushes its logs and exits 0. A {@link ConfigError} stops start-up with its message
 * alone (it names the variable); anything else with the error.
 */
export function runService(name: string, start: () => Promise<RunningService>): void {
  const main = async () => {
    const service = await start();
    const log = service.logger;
    const info = (message: string, fields: Record<string, unknown> = {}) =>
      log ? log.info(fields, message) : console.log(message);
    info(`${name} listening on ${service.url}`, { url: service.url });
    if (service.metricsUrl !== undefined)
      info(`${name} metrics on ${service.metricsUrl}`, { metricsUrl: service.metricsUrl });
    if (service.dashboardUrl !== undefined)
      info(`${name} dashboard on ${service.dashboardUrl}`, { dashboardUrl: service.dashboardUrl });
    const exit = (code: number) => {
      if (log) log.flush(() => process.exit(code));
      else process.exit(code);
    };
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      info(`${signal} received: draining (up to ${service.shutdownGraceMs} ms)`, { signal });
      service.close().then(
        () => exit(0),
        (error: unknown) => {
          if (log) log.error({ err: error }, 'shutdown failed');
          else console.error('Shutdown failed', error);
          exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  };
  main().catch((error: unknown) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  });
}
