export {
  type ClusteredServiceOptions,
  type ClusteredWorkerService,
  isClusterWorker,
  runClusteredService,
} from './cluster.js';
export {
  createDashboard,
  DASHBOARD_REQUEST_HEADER,
  type Dashboard,
  type DashboardOptions,
} from './dashboard.js';
export {
  ConfigError,
  listenPortSchema,
  optional,
  parseEnvConfig,
  type ServiceLimits,
  type SharedEnvConfig,
  serviceLimits,
  sharedEnvShape,
} from './env-config.js';
export {
  type HealthEndpointsOptions,
  type ReadinessCheck,
  sharedStateReadiness,
  withHealthEndpoints,
} from './health.js';
export {
  createErrorHandler,
  type ErrorHandlerOptions,
  notFoundHandler,
  toPreviewError,
} from './http-errors.js';
export { createKeyMatcher, INTERNAL_KEY_HEADER_NAME, requireInternalKey } from './internal-key.js';
export {
  createLineDestination,
  type LineDestination,
  type LineDestinationOptions,
} from './log-destination.js';
export {
  createServiceLogger,
  LOG_LEVELS,
  type Logger,
  logAccess,
  logUpstreamEngine,
  type ServiceLoggerOptions,
} from './logger.js';
export {
  createPreviewMetrics,
  exposeMetrics,
  type MetricsServer,
  type PreviewMetrics,
  serveMetrics,
  type WatchedEngine,
  withMetrics,
} from './metrics.js';
export {
  createInternalApiDocument,
  DEFAULT_INTERNAL_API_BASE_PATH,
  INTERNAL_API_OPERATIONS,
  INTERNAL_API_VERSION,
  type InternalApiDocument,
  type InternalApiDocumentOptions,
  type InternalApiExtension,
  type InternalApiOperation,
  type InternalApiQueryParameter,
  type IssuedToken,
  issuedTokenSchema,
  type OpenApiOperation,
  type OpenApiResponse,
  type PreviewPortDetail,
  type PreviewPorts,
  previewPortDetailSchema,
  previewPortsSchema,
  type RegisteredPreview,
  type RegistrationBody,
  type RemovedPreview,
  type RemovedPreviewPort,
  type RevokedTokens,
  registeredPreviewSchema,
  registrationBodySchema,
  removedPreviewPortSchema,
  removedPreviewSchema,
  revokedTokensSchema,
  type TokenRequest,
  tokenRequestSchema,
} from './openapi.js';
export {
  createPreviewApp,
  createPreviewHandler,
  createPreviewRouter,
  DEFAULT_PREFIXES,
  type HandlesUpgrades,
  type InternalApiModule,
  type PreviewApp,
  type PreviewAppOptions,
  type PreviewRequestHandler,
  type PreviewRouterOptions,
} from './preview-router.js';
export {
  type ParsedRegistration,
  parsePortParam,
  parseRegistrationBody,
  REGISTRATION_BODY_LIMIT_BYTES,
  requireJsonContentType,
} from './registration.js';
export {
  combineRecorders,
  createRequestLog,
  REQUEST_LOG_MAX_PATH,
  type RequestLog,
  type RequestLogEntry,
  type RequestLogFollower,
  type RequestLogOptions,
} from './request-log.js';
export {
  createRequestLogApi,
  REQUEST_LOG_KEEPALIVE_MS,
  REQUEST_LOG_MAX_UNSENT_BYTES,
  type RequestLogView,
} from './request-log-api.js';
export {
  type ClientLimits,
  type RunningService,
  runService,
  type ServedPreviewApp,
  type ServePreviewAppOptions,
  servePreviewApp,
} from './serve.js';
export { createSharedStateResolver } from './shared-state.js';
