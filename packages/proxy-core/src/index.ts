export { createUpstreamAgent, type UpstreamAgentOptions } from './agent.js';
export { hasMalformedPercentEncoding, type PreviewPath, splitPreviewPath } from './forward-path.js';
export { INTERNAL_KEY_HEADER, stripRequestHeaders, stripResponseHeaders } from './headers.js';
export {
  createPreviewProxy,
  type ForwardRequest,
  type PreviewProxy,
  type PreviewProxyOptions,
  type ProxyNext,
  type UpstreamTarget,
} from './proxy.js';
export { isUpstreamConnectFailure } from './upstream-errors.js';
