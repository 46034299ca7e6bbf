export { createUpstreamAgent, type UpstreamAgentOptions } from './agent.js';
export { hasMalformedPercentEncoding, type PreviewPath, splitPreviewPath } from './forward-path.js';
export { applyForwardedHeaders, type ForwardedContext, portOfHost } from './forwarded-headers.js';
export {
  DASHBOARD_COOKIE,
  INTERNAL_KEY_HEADER,
  stripRequestHeaders,
  stripResponseHeaders,
  withoutDashboardCookie,
} from './headers.js';
export {
  chooseUpstreamEngine,
  createPreviewProxy,
  type ForwardRequest,
  loadUpstreamDispatcher,
  type PreviewProxy,
  type PreviewProxyOptions,
  type ProxyNext,
  type UpstreamEngine,
  type UpstreamEngineChoice,
  type UpstreamTarget,
} from './proxy.js';
export {
  rewriteLocation,
  rewriteResponseHeaders,
  scopeSetCookiePath,
  slashRedirectLocation,
} from './response-rewrite.js';
export { attachTrace, type RequestTrace, traceOf } from './trace.js';
export { createTrustedProxyMatcher, normalizeRemoteAddress, parseIpAddress } from './trusted-proxies.js';
export type { UpstreamDispatcherOptions } from './undici-dispatcher.js';
export {
  createUpstreamAddressPolicy,
  DEFAULT_UPSTREAM_NETWORKS,
  routeGateways,
  type UpstreamAddressPolicyOptions,
} from './upstream-address.js';
export {
  createNativeUpstreamClient,
  type NativeUpstreamClient,
  type NativeUpstreamClientOptions,
  nativeUpstreamClientAvailable,
  type UpstreamDispatcher,
  type UpstreamHandler,
  type UpstreamRequest,
} from './upstream-client.js';
export { isUpstreamConnectFailure, isUpstreamTimeout, upstreamFailure } from './upstream-errors.js';
export { createCloseCodeSniffer } from './websocket-close.js';
