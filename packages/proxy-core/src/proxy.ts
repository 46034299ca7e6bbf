import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { previewErrors } from '@sandbox/error-contract';
import { createProxyMiddleware, type Plugin } from 'http-proxy-middleware';
import type { Dispatcher } from 'undici';
import { createUpstreamAgent, type UpstreamAgentOptions } from './agent.js';
import { ClientTransferGuard } from './client-transfer.js';
import { applyForwardedHeaders, type ForwardedContext, isSameOriginRequest } from './forwarded-headers.js';
import { stripRequestHeaders, upstreamRequestHeaders } from './headers.js';
import { forwardHttp, requestHasBody } from './http-forward.js';
import { type RequestTrace, traceOf } from './trace.js';
import { createTrustedProxyMatcher } from './trusted-proxies.js';
import type { UpstreamDispatcherOptions } from './undici-dispatcher.js';
import { deferredUpstream, undiciUpstream } from './undici-upstream.js';
import {
  createNativeUpstreamClient,
  nativeUpstreamClientAvailable,
  queueWaitLimit,
  type UpstreamDispatcher,
} from './upstream-client.js';
import { isUpstreamTimeout, upstreamFailure } from './upstream-errors.js';
import { createCloseCodeSniffer } from './websocket-close.js';
import { bindTunnel, type TunnelLimits } from './websocket-tunnel.js';

/** Where a request goes: a container's address and the port its preview listens on. */
export interface UpstreamTarget {
  host: string;
  port: number;
}

/** One request to forward, after its route matched and its target was resolved. */
export interface ForwardRequest {
  target: UpstreamTarget;
  /** The path and query the container receives, byte for byte. */
  forwardPath: string;
  /** The route prefix the client used, e.g. `/previews/abc`; sent as `X-Forwarded-Prefix`. */
  prefix: string;
  /** The session it belongs to, counted against `maxConnectionsPerSession`; uncounted when absent. */
  sessionId?: string;
  /**
   * Present a same-origin request (no `Origin`, or one naming the request's own `Host`) to the app as
   * addressed to `localhost:<port>` (`Host` and `Origin`), and turn an absolute `Location` back to
   * `http://localhost:<port>` into the client's origin. Dev servers trust only localhost by default (their
   * DNS-rebinding and cross-origin checks); a cross-origin request reaches them unchanged, to be refused
   * as it would be directly. For host routes, where each preview has an origin of its own.
   */
  asLocalhost?: boolean;
}

/** Receives a failure the proxy could not answer itself: a `PreviewError` (the 502) or an unexpected error. */
export type ProxyNext = (error?: unknown) => void;

/**
 * The client HTTP requests to containers go through. `native`: pooled keep-alive connections on Node's own
 * HTTP parser (a bare proxy on it used about a quarter less CPU per request than on undici, measured side
 * by side). `undici`: undici's `Agent`.
 */
export type UpstreamEngine = 'native' | 'undici';

/**
 * Which client forwards HTTP requests to the containers, and why: `configured` (the `engine` option),
 * `default` (native, this Node has its parser), `native-unavailable` (undici, because this Node's
 * built-in parser is missing or changed: a fallback worth a warning, since it costs throughput), or
 * `dispatcher` (an undici dispatcher was given).
 */
export interface UpstreamEngineChoice {
  engine: UpstreamEngine;
  reason: 'configured' | 'default' | 'native-unavailable' | 'dispatcher';
}

/** The engine {@link createPreviewProxy} picks for these options on this Node. */
export function chooseUpstreamEngine(
  engine: UpstreamEngine | undefined,
  dispatcher: Dispatcher | undefined,
): UpstreamEngineChoice {
  if (dispatcher !== undefined) return { engine: 'undici', reason: 'dispatcher' };
  if (engine !== undefined) return { engine, reason: 'configured' };
  return nativeUpstreamClientAvailable()
    ? { engine: 'native', reason: 'default' }
    : { engine: 'undici', reason: 'native-unavailable' };
}

/** Options of {@link createPreviewProxy}. */
export interface PreviewProxyOptions extends UpstreamAgentOptions {
  /**
   * Default: `native` when this Node has the parser it needs (every Node this package supports), else
   * `undici`. Asking for `native` on a Node without it throws. Ignored when `dispatcher` is given.
   */
  engine?: UpstreamEngine;
  /**
   * An undici dispatcher for HTTP requests, instead of the engine's own pooled keep-alive connections per
   * container built from the other options.
   */
  dispatcher?: Dispatcher;
  /** The `node:http` agent WebSocket upgrades go through; by default one built from the other options. */
  agent?: Agent;
  /**
   * Addresses and CIDRs of proxies in front of this one whose `X-Forwarded-*` headers are believed.
   * Default: none, so a client cannot forge its address or scheme.
   */
  trustedProxies?: readonly string[];
  /** Send `Host` as the client sent it (default), or `false` for the container's `ip:port`. */
  preserveHost?: boolean;
  /**
   * A container that has not sent its response head (or answered an upgrade) after this many ms gets the
   * 504 `PROXY_TIMEOUT`. Default 60000; 0 waits for ever. A `dispatcher` given here keeps its own.
   */
  responseTimeoutMs?: number;
  /** Request bodies larger than this many bytes get the 413 `PAYLOAD_TOO_LARGE`. Default (or 0): no limit. */
  maxBodyBytes?: number;
  /**
   * Most requests in flight plus open WebSockets per session; one more gets the 429
   * `TOO_MANY_CONNECTIONS`, so one preview cannot take every connection of the proxy. Default (or 0): no
   * limit.
   */
  maxConnectionsPerSession?: number;
  /**
   * A request that finds every connection to its container in use (`maxSockets`) waits at most this many
   * ms for one, and never longer than `responseTimeoutMs`; then the 503 `UPSTREAM_BUSY`. On the undici
   * engine the wait includes the connect of a new connection. Default 5000.
   */
  queueTimeoutMs?: number;
  /**
   * A request body must keep coming: its client has this many ms of budget, spent while the proxy waits
   * for the body (not while the container is not reading it), each `minTransferRateBps` bytes earning a
   * second back, at most this many ms ahead. When it runs out: the 408 `REQUEST_TIMEOUT` (or a cut
   * connection once the response began). Default 20000; 0: no limit.
   */
  bodyTimeoutMs?: number;
  /**
   * The same budget for a response the client does not read (spent while the client's socket does not
   * take more); when it runs out the client's connection is reset. The proxy learns of a reader's progress
   * only when its socket drained, which the kernel signals after the reader took a third of its send
   * buffer (up to 1.3 MiB of Linux's 4 MiB): the default leaves a reader of 25 KB/s room. Default 60000;
   * 0: no limit.
   */
  sendTimeoutMs?: number;
  /** Bytes per second that earn a second of either budget back. Default 500; 0: any progress restores it. */
  minTransferRateBps?: number;
  /**
   * Most requests of one session that have waited on their client (an upload not arriving, a response
   * not read) for over a second; beyond it the longest stalled are cut first, so that a session's slow
   * clients leave room for its other requests. Default 256; 0: no share.
   */
  maxStalledPerSession?: number;
  /**
   * Once one side of a tunnelled WebSocket ended its half (TCP FIN), the other has this many ms to end
   * its own before both are closed. Default 5000; 0: half-closed tunnels stay open.
   */
  tunnelHalfCloseTimeoutMs?: number;
  /** A tunnelled WebSocket with no bytes either way for this many ms is closed. Default (or 0): never. */
  tunnelIdleTimeoutMs?: number;
}

/** The proxy: created once, reused for every request, its target chosen per request. */
export interface PreviewProxy {
  /** Streams one request to its target and the response back; failures go to `next`. */
  forward(req: IncomingMessage, res: ServerResponse, request: ForwardRequest, next: ProxyNext): void;
  /**
   * Tunnels one WebSocket upgrade (the server's `upgrade` event) to its target. Failures before the
   * container answered go to `next`, which still owns the socket and may write an HTTP error on it.
   */
  forwardUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    request: ForwardRequest,
    next: ProxyNext,
  ): void;
  /** The client that forwards HTTP requests, and why it was chosen: for a start-up line and a metric. */
  readonly upstream: UpstreamEngineChoice;
  /** Whether a peer at `address` is one of `trustedProxies`, whose `X-Forwarded-*` are believed. */
  trustsForwardedHeaders(address: string | undefined): boolean;
}

interface PendingForward {
  target: { protocol: 'http:'; host: string; port: string };
  forwardPath: string;
  prefix: string;
  next: ProxyNext;
  /** For upgrades: the container answered (101 or an HTTP response), so the socket carries its bytes. */
  answered?: boolean;
  /** For upgrades: the connection to the container was established. */
  connected?: boolean;
}

const kForward = Symbol('preview.forward');
type ProxiedRequest = IncomingMessage & { [kForward]?: PendingForward };

function pendingOf(req: IncomingMessage): PendingForward | undefined {
  return (req as ProxiedRequest)[kForward];
}

// For the access line: the code of the first close frame either side sends (read along, never altered).
function noteCloseCode(trace: RequestTrace, client: Duplex, upstream: Duplex): void {
  const note = (code: number | undefined) => {
    if (trace.closeCode === undefined && code !== undefined) trace.closeCode = code;
  };
  upstream.on('data', createCloseCodeSniffer(note));
  client.on('data', createCloseCodeSniffer(note));
}

// Upgrades only (plain HTTP goes through our own clients): an HTTP error can still be written on the
// client's socket as long as the container has not answered. httpxy types `req` and the socket as optional:
// it leaves both out only for a call without a target, which the router below never makes.
function onProxyError(error: Error, req?: IncomingMessage, socket?: ServerResponse | Duplex): void {
  const pending = req && pendingOf(req);
  if (socket === undefined) return;
  if (pending && !pending.answered && !socket.destroyed) {
    // Connected, then closed without a word: the container refused the upgrade, it was not unreachable.
    const refused = pending.connected === true && !isUpstreamTimeout(error);
    pending.next(refused ? previewErrors.upgradeFailed(error) : upstreamFailure(error));
  } else {
    socket.destroy();
  }
}

function upgradeTimeoutError(timeoutMs: number): Error {
  return Object.assign(new Error(`no answer to the upgrade within ${timeoutMs} ms`), {
    code: 'PREVIEW_PROXY_TIMEOUT',
  });
}

// Installed instead of http-proxy-middleware's default plugins, whose logger writes synchronously per
// request and whose error responder answers plain text with 504/500. The events are httpxy's (hpm 4's
// proxy), which emits them as http-proxy did: `proxyReqWs` right after the request to the container is
// created and before it is sent or any listener of httpxy's own is on it.
const previewProxyPlugin =
  (responseTimeoutMs: number, tunnel: TunnelLimits): Plugin =>
  (proxyServer) => {
    proxyServer.on('proxyReqWs', (proxyReq, req, socket) => {
      const pending = pendingOf(req);
      if (!pending) return;
      proxyReq.path = pending.forwardPath;
      // A container that takes the connection but never answers the upgrade would hold the client for
      // ever. httpxy's own `upgradeTimeout` is not used: it destroys the client's socket as soon as it has
      // reported the error, which could cut short the 504 `next` writes on it.
      const timer =
        responseTimeoutMs > 0
          ? setTimeout(() => proxyReq.destroy(upgradeTimeoutError(responseTimeoutMs)), responseTimeoutMs)
          : undefined;
      proxyReq.once('close', () => clearTimeout(timer));
      // Registered before httpxy's own listeners, so the flag is set before it writes to the socket.
      const answered = () => {
        clearTimeout(timer);
        pending.answered = true;
      };
      proxyReq.once('upgrade', answered);
      proxyReq.once('response', answered);
      proxyReq.once('socket', (upstream: Socket) => {
        if (!upstream.connecting) pending.connected = true;
        else upstream.once('connect', () => (pending.connected = true));
      });
      const trace = traceOf(req);
      // An HTTP answer instead of the 101 goes to the client with the container's status, headers and
      // body (httpxy drops its hop-by-hop fields and closes the connection after it); the access line says
      // which.
      if (trace)
        proxyReq.once('response', (res: IncomingMessage) => {
          if (res.statusCode !== undefined) trace.upgradeStatus = res.statusCode;
        });
      // After httpxy's own handler has piped the two sockets (a 'data' listener attached before would
      // start the flow early, and the pipe would miss the first bytes; its socket set-up would undo an
      // idle timeout set before).
      proxyReq.once('upgrade', (_res: IncomingMessage, upstream: Duplex) =>
        queueMicrotask(() => {
          bindTunnel(socket, upstream, tunnel);
          if (trace) noteCloseCode(trace, socket, upstream);
        }),
      );
    });
    proxyServer.on('error', onProxyError);
  };

/**
 * Counts what each session has in flight: a request holds its place until its response closes, a
 * WebSocket until its socket closes.
 */
function createSessionCounter(max: number) {
  const inFlight = new Map<string, number>();
  return {
    /** Takes a place for the session; false when the session is at its limit. */
    admit(sessionId: string): boolean {
      const count = inFlight.get(sessionId) ?? 0;
      if (count >= max) return false;
      inFlight.set(sessionId, count + 1);
      return true;
    },
    /** Gives one place back; called once per admitted request or WebSocket. */
    release(sessionId: string): void {
      const count = (inFlight.get(sessionId) ?? 1) - 1;
      if (count <= 0) inFlight.delete(sessionId);
      else inFlight.set(sessionId, count);
    },
  };
}

// The origin string of each container address, kept rather than built per request: undici looks its pool
// up by it, and a string seen before has its hash already.
const origins = new Map<string, { port: number; origin: string }>();
const MAX_CACHED_ORIGINS = 4096;

function originOf({ host, port }: UpstreamTarget): string {
  const cached = origins.get(host);
  if (cached !== undefined && cached.port === port) return cached.origin;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // Addresses come and go with containers: start over rather than grow without bound.
  if (origins.size >= MAX_CACHED_ORIGINS) origins.clear();
  origins.set(host, { port, origin });
  return origin;
}

function clientGone(socket: Duplex | null): boolean {
  return socket === null || socket.destroyed || socket.writableEnded;
}

/**
 * The undici engine's pooled keep-alive client (one pool per container ip:port), loaded on demand: undici
 * is imported by the first call, so a process that never asks for it never loads it.
 */
export async function loadUpstreamDispatcher(options: UpstreamDispatcherOptions = {}): Promise<Dispatcher> {
  const { createUpstreamDispatcher } = await import('./undici-dispatcher.js');
  return createUpstreamDispatcher(options);
}

function upstreamClient(
  choice: UpstreamEngineChoice,
  dispatcher: Dispatcher | undefined,
  {
    connectTimeoutMs,
    maxSockets,
    idleTimeoutMs,
    responseTimeoutMs,
    queueTimeoutMs,
  }: UpstreamAgentOptions & { responseTimeoutMs: number; queueTimeoutMs: number },
): UpstreamDispatcher {
  const queueWaitMs = queueWaitLimit(queueTimeoutMs, responseTimeoutMs);
  // undici says nothing of a request until it is written: its wait includes the connect of a new
  // connection, so a connect slower than the queue timeout ends as the 503 rather than the 502 there.
  if (dispatcher !== undefined) return undiciUpstream(dispatcher, queueWaitMs);
  const options = {
    ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
    ...(maxSockets === undefined ? {} : { maxSockets }),
    ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
    responseTimeoutMs,
  };
  if (choice.engine === 'undici')
    return deferredUpstream(
      loadUpstreamDispatcher(options).then((dispatcher) => undiciUpstream(dispatcher, queueWaitMs)),
    );
  return createNativeUpstreamClient({ ...options, queueTimeoutMs: queueWaitMs });
}

/** Creates the one proxy instance both routes share. */
export function createPreviewProxy({
  agent,
  engine,
  dispatcher,
  trustedProxies = [],
  preserveHost = true,
  responseTimeoutMs = 60_000,
  maxBodyBytes,
  maxConnectionsPerSession,
  queueTimeoutMs = 5000,
  bodyTimeoutMs = 20_000,
  sendTimeoutMs = 60_000,
  minTransferRateBps = 500,
  maxStalledPerSession = 256,
  tunnelHalfCloseTimeoutMs = 5000,
  tunnelIdleTimeoutMs = 0,
  ...agentOptions
}: PreviewProxyOptions = {}): PreviewProxy {
  const transfers = new ClientTransferGuard({
    bodyTimeoutMs,
    sendTimeoutMs,
    minRateBps: minTransferRateBps,
    maxStalledPerSession,
  });
  const isTrustedProxy = createTrustedProxyMatcher(trustedProxies);
  const sessions = maxConnectionsPerSession ? createSessionCounter(maxConnectionsPerSession) : undefined;
  // The session a request is counted against, if any.
  const countedSession = (request: ForwardRequest) =>
    sessions === undefined ? undefined : request.sessionId;
  // False (and the 429 sent to `next`) when the request's session has no place left.
  const admitted = (sessionId: string | undefined, next: ProxyNext): boolean => {
    // `countedSession` gives a session only when there is a counter.
    if (sessionId === undefined || sessions?.admit(sessionId) !== false) return true;
    next(previewErrors.tooManyConnections(sessionId));
    return false;
  };
  const upstream = chooseUpstreamEngine(engine, dispatcher);
  const http = upstreamClient(upstream, dispatcher, { ...agentOptions, responseTimeoutMs, queueTimeoutMs });
  const middleware = createProxyMiddleware<IncomingMessage, ServerResponse>({
    // `forwardUpgrade` sets the target before it hands the request over; a request without one is a bug,
    // and a router that throws gets the socket closed (after the error reached `onProxyError`).
    router: (req) => {
      const pending = pendingOf(req);
      if (pending === undefined) throw new Error('upgrade without a preview target');
      return pending.target;
    },
    agent: agent ?? createUpstreamAgent(agentOptions),
    // The outgoing path is set in `proxyReqWs`, byte for byte; Host and X-Forwarded-* are ours to set.
    changeOrigin: false,
    xfwd: false,
    // We call `middleware.upgrade` from the server's `upgrade` event ourselves.
    ws: false,
    ejectPlugins: true,
    plugins: [
      previewProxyPlugin(responseTimeoutMs, {
        halfCloseTimeoutMs: tunnelHalfCloseTimeoutMs,
        idleTimeoutMs: tunnelIdleTimeoutMs,
      }),
    ],
  });

  const forwardedContext = (
    req: IncomingMessage,
    { target, prefix, asLocalhost }: ForwardRequest,
  ): ForwardedContext => {
    const { remoteAddress } = req.socket;
    return {
      remoteAddress,
      encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
      prefix,
      trusted: isTrustedProxy(remoteAddress),
      target,
      preserveHost,
      appHost:
        asLocalhost === true && isSameOriginRequest(req.headers) ? `localhost:${target.port}` : undefined,
    };
  };

  const prepareUpgrade = (req: IncomingMessage, request: ForwardRequest, next: ProxyNext) => {
    const { target, forwardPath, prefix } = request;
    applyForwardedHeaders(req.headers, forwardedContext(req, request));
    req.url = forwardPath;
    (req as ProxiedRequest)[kForward] = {
      target: { protocol: 'http:', host: target.host, port: String(target.port) },
      forwardPath,
      prefix,
      next,
    };
  };

  const forwardNow = (
    req: IncomingMessage,
    res: ServerResponse,
    request: ForwardRequest,
    next: ProxyNext,
  ) => {
    // The server already answered this connection (its bytes turned out malformed) and ended it:
    // nothing may reach the container, not even a head.
    if (clientGone(req.socket)) {
      // Ended, not destroyed: the server's own answer is still on its way out (it closes the socket).
      if (req.socket?.destroyed !== false) res.destroy();
      return;
    }
    const sessionId = countedSession(request);
    if (!admitted(sessionId, next)) {
      // Its body, if any, is not wanted: the connection ends with the answer rather than reading it.
      if (!req.complete) res.shouldKeepAlive = false;
      return;
    }
    const context = forwardedContext(req, request);
    forwardHttp(http, req, res, {
      origin: originOf(request.target),
      forwardPath: request.forwardPath,
      headers: upstreamRequestHeaders(req.headers, context),
      // What the app believes its origin is, turned back into the client's in a Location it writes.
      appOrigin:
        context.appHost === undefined || req.headers.host === undefined
          ? undefined
          : { app: `http://${context.appHost}`, client: `//${req.headers.host}` },
      prefix: request.prefix,
      next,
      maxBodyBytes,
      sessionId,
      release: sessions?.release,
      transfers,
      transferSessionId: request.sessionId,
    });
  };

  const previewProxy: PreviewProxy = {
    upstream,
    trustsForwardedHeaders: isTrustedProxy,
    forward(req, res, request, next) {
      // Pipelined behind a response still being written, this one has no socket yet. Node never tells
      // such a waiting response that its connection died (no 'close'), so it is forwarded only once it
      // is the connection's current one: one request at a time per connection, as nginx does, and a
      // request whose client left first never reaches a container or holds a place.
      if (res.socket === null) {
        res.once('socket', () => previewProxy.forward(req, res, request, next));
        return;
      }
      // A body still arriving can turn out malformed in the very read that brought the head, and Node
      // reports that only after this request was handed over (microtasks run in between). One turn of
      // the loop lets the parser finish that read, so such a request never reaches a container.
      if (!req.complete && requestHasBody(req.headers)) setImmediate(forwardNow, req, res, request, next);
      else forwardNow(req, res, request, next);
    },
    forwardUpgrade(req, socket, head, request, next) {
      if (clientGone(socket)) {
        socket.destroy();
        return;
      }
      const sessionId = countedSession(request);
      if (!admitted(sessionId, next)) return;
      if (sessionId !== undefined) socket.once('close', () => sessions?.release(sessionId));
      const upgrade = req.headers.upgrade;
      stripRequestHeaders(req.headers);
      // The upgrade itself is the one hop-by-hop exchange that must reach the container.
      req.headers.connection = 'Upgrade';
      if (upgrade !== undefined) req.headers.upgrade = upgrade;
      prepareUpgrade(req, request, next);
      // http-proxy-middleware 4 ignores an upgrade whose `req.socket.server` is unset; a node:http(s)
      // server sets it on every connection it handles, those it is handed by `emit('connection')` included.
      middleware.upgrade(req, socket as Socket, head);
    },
  };
  return previewProxy;
}
