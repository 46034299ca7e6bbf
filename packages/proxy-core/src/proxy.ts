import type { Agent, ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { previewErrors } from '@sandbox/error-contract';
import { createProxyMiddleware, type Plugin } from 'http-proxy-middleware';
import { createUpstreamAgent, type UpstreamAgentOptions } from './agent.js';
import { applyForwardedHeaders } from './forwarded-headers.js';
import { stripRequestHeaders, stripResponseHeaders } from './headers.js';
import { rewriteResponseHeaders } from './response-rewrite.js';
import { createTrustedProxyMatcher } from './trusted-proxies.js';
import { isUpstreamConnectFailure } from './upstream-errors.js';

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
}

/** Receives a failure the proxy could not answer itself: a `PreviewError` (the 502) or an unexpected error. */
export type ProxyNext = (error?: unknown) => void;

/** Options of {@link createPreviewProxy}. */
export interface PreviewProxyOptions extends UpstreamAgentOptions {
  /** The upstream agent; by default a pooled keep-alive agent built from the other options. */
  agent?: Agent;
  /**
   * Addresses and CIDRs of proxies in front of this one whose `X-Forwarded-*` headers are believed.
   * Default: none, so a client cannot forge its address or scheme.
   */
  trustedProxies?: readonly string[];
  /** Send `Host` as the client sent it (default), or `false` for the container's `ip:port`. */
  preserveHost?: boolean;
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
}

interface PendingForward {
  target: { protocol: 'http:'; host: string; port: string };
  forwardPath: string;
  prefix: string;
  next: ProxyNext;
  /** For upgrades: the container answered (101 or an HTTP response), so the socket carries its bytes. */
  answered?: boolean;
}

const kForward = Symbol('preview.forward');
type ProxiedRequest = IncomingMessage & { [kForward]?: PendingForward };

function pendingOf(req: IncomingMessage): PendingForward | undefined {
  return (req as ProxiedRequest)[kForward];
}

function abortUpstreamWhenClientLeaves(proxyReq: ClientRequest, res: ServerResponse): void {
  if (res.destroyed) {
    proxyReq.destroy();
    return;
  }
  res.once('close', () => {
    if (!res.writableFinished) proxyReq.destroy();
  });
}

function onUpstreamResponse(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void {
  stripResponseHeaders(proxyRes.headers);
  // Root-relative redirects and cookie paths of the app must stay under its preview prefix.
  const prefix = pendingOf(req)?.prefix;
  if (prefix !== undefined) rewriteResponseHeaders(proxyRes.headers, prefix);
  // http-proxy would otherwise echo the client's (already stripped) Connection header or force keep-alive.
  const keepAlive = (res as ServerResponse & { shouldKeepAlive?: boolean }).shouldKeepAlive !== false;
  proxyRes.headers.connection = keepAlive ? 'keep-alive' : 'close';
  // A container that drops the connection mid-body must not leave the client waiting on a response that
  // will never end: cut the client's connection too, so it sees the truncation.
  proxyRes.once('close', () => {
    if (!proxyRes.complete) res.destroy();
  });
  proxyRes.on('error', () => res.destroy());
}

function onProxyError(error: Error, req: IncomingMessage, res: ServerResponse | Duplex): void {
  const pending = pendingOf(req);
  if (!('writeHead' in res)) {
    // An upgrade: an HTTP error can still be written as long as the container has not answered.
    if (pending && !pending.answered && !res.destroyed) {
      pending.next(isUpstreamConnectFailure(error) ? previewErrors.upstreamConnectFailed(error) : error);
    } else {
      res.destroy();
    }
    return;
  }
  // Once bytes of the container's response went out, a second (error) response cannot follow.
  if (res.headersSent || req.socket.destroyed || !pending) {
    res.destroy();
    return;
  }
  pending.next(isUpstreamConnectFailure(error) ? previewErrors.upstreamConnectFailed(error) : error);
}

// Installed instead of http-proxy-middleware's default plugins, whose logger writes synchronously per
// request and whose error responder answers plain text with 504/500.
const previewProxyPlugin: Plugin = (proxyServer) => {
  // http-proxy's deleteLength pass turns a chunked DELETE/OPTIONS body into `Content-Length: 0` and
  // drops it; a proxy must forward the body it was sent.
  const server = proxyServer as unknown as { webPasses: Array<{ name: string }> };
  server.webPasses = server.webPasses.filter((pass) => pass.name !== 'deleteLength');

  proxyServer.on('proxyReq', (proxyReq, req, res) => {
    const pending = pendingOf(req);
    // http-proxy joins paths with a slash-collapsing urlJoin; the request line must carry the exact bytes.
    if (pending) proxyReq.path = pending.forwardPath;
    abortUpstreamWhenClientLeaves(proxyReq, res);
  });
  proxyServer.on('proxyReqWs', (proxyReq, req) => {
    const pending = pendingOf(req);
    if (!pending) return;
    proxyReq.path = pending.forwardPath;
    // Registered before http-proxy's own listeners, so the flag is set before it writes to the socket.
    const answered = () => {
      pending.answered = true;
    };
    proxyReq.once('upgrade', answered);
    proxyReq.once('response', answered);
  });
  proxyServer.on('proxyRes', (proxyRes, req, res) => onUpstreamResponse(proxyRes, req, res));
  proxyServer.on('error', onProxyError);
};

/** Creates the one proxy instance both routes share. */
export function createPreviewProxy({
  agent,
  trustedProxies = [],
  preserveHost = true,
  ...agentOptions
}: PreviewProxyOptions = {}): PreviewProxy {
  const isTrustedProxy = createTrustedProxyMatcher(trustedProxies);
  const middleware = createProxyMiddleware<IncomingMessage, ServerResponse>({
    router: (req) => pendingOf(req)?.target,
    agent: agent ?? createUpstreamAgent(agentOptions),
    // The raw URL is the outgoing path (no url.parse re-encoding); Host and X-Forwarded-* are ours to set.
    toProxy: true,
    changeOrigin: false,
    xfwd: false,
    ws: false,
    ejectPlugins: true,
    plugins: [previewProxyPlugin],
  });

  const prepare = (
    req: IncomingMessage,
    { target, forwardPath, prefix }: ForwardRequest,
    next: ProxyNext,
  ) => {
    const { remoteAddress } = req.socket;
    applyForwardedHeaders(req.headers, {
      remoteAddress,
      encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
      prefix,
      trusted: isTrustedProxy(remoteAddress),
      target,
      preserveHost,
    });
    req.url = forwardPath;
    (req as ProxiedRequest)[kForward] = {
      target: { protocol: 'http:', host: target.host, port: String(target.port) },
      forwardPath,
      prefix,
      next,
    };
  };

  return {
    forward(req, res, request, next) {
      stripRequestHeaders(req.headers);
      prepare(req, request, next);
      void middleware(req, res, next);
    },
    forwardUpgrade(req, socket, head, request, next) {
      const upgrade = req.headers.upgrade;
      stripRequestHeaders(req.headers);
      // The upgrade itself is the one hop-by-hop exchange that must reach the container.
      req.headers.connection = 'Upgrade';
      if (upgrade !== undefined) req.headers.upgrade = upgrade;
      prepare(req, request, next);
      middleware.upgrade(req, socket as Socket, head);
    },
  };
}
