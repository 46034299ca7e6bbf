// The resolver interface the routes need, for a consumer that writes its own.
export type { ContainerResolver, ResolvedContainer } from '@sandbox/error-contract';
export {
  type AccessRecord,
  type AccessRecorder,
  type Refusal,
  refusalRecord,
  requestIdOf,
  requestLineOf,
  traceHttpRequest,
} from './access.js';
export { errorPage, wantsErrorPage } from './error-page.js';
export {
  createHostRoute,
  createHostUpgradeRoute,
  type HostRouteOptions,
  isHostRoutableSessionId,
  matchPreviewHost,
  normalizePreviewDomain,
  type PreviewHostMatch,
} from './host-route.js';
export {
  cameOverHttps,
  decidePrivateAccess,
  type PrivateAccessDecision,
  type PrivateRoute,
  TOKEN_COOKIE,
  TOKEN_HEADER,
  TOKEN_QUERY_PARAMETER,
  tokenCookie,
} from './private-access.js';
export {
  createProxyRoute,
  createUpgradeRoute,
  isLocalPathRouteHost,
  matchPreviewRoute,
  type PreviewRouteMatch,
  type ProxyRouteOptions,
  type UpgradeRoute,
} from './proxy-route.js';
export {
  createPreviewRoutes,
  DEFAULT_PROXY_PREFIXES,
  type PreviewProxyHandler,
  type PreviewRoutes,
  type PreviewRoutesOptions,
  type PreviewUpgradeHandler,
} from './routes.js';
export { sendErrorResponse, sendUpgradeErrorResponse } from './send-error.js';
export {
  createPreviewTargetResolver,
  type PreviewTarget,
  type PreviewTargetResolver,
  type PreviewTargetResolverOptions,
} from './target.js';
export {
  createPreviewTokens,
  MAX_TOKEN_LENGTH,
  MIN_TOKEN_SECRET_LENGTH,
  type PreviewTokens,
  TOKEN_REFUSAL_MESSAGES,
  type TokenClaims,
  type TokenRefusal,
} from './tokens.js';
