export {
  type ContainerResolver,
  type ContainerResolverOptions,
  type ContainerWatcher,
  type ContainerWatcherOptions,
  createContainerResolver,
  createContainerWatcher,
  createDockerClient,
  createWatchingResolver,
  PREVIEW_NETWORK_LABEL,
  PREVIEW_PORT_LABEL,
  type ResolvedContainer,
} from '@sandbox/container-resolver';
export {
  describeCause,
  type ErrorBody,
  errorBodySchema,
  isPreviewError,
  PREVIEW_ERROR_CODES,
  PreviewError,
  type PreviewErrorCode,
  previewErrors,
  toErrorResponse,
} from '@sandbox/error-contract';
export {
  createInMemoryRegistry,
  createRedisPreviewState,
  type EngineState,
  isValidSessionId,
  type PreviewRegistration,
  type PreviewRegistry,
  type PreviewStatePublisher,
  type PreviewStateView,
  previewPortSchema,
  type RedisPreviewStateOptions,
  type SessionContainerState,
  type SharedPreviewState,
  type SharedStateConnection,
  type SharedStateListener,
  sessionIdSchema,
} from '@sandbox/preview-registry';
export {
  chooseUpstreamEngine,
  createPreviewProxy,
  createUpstreamAddressPolicy,
  createUpstreamAgent,
  DEFAULT_UPSTREAM_NETWORKS,
  nativeUpstreamClientAvailable,
  type PreviewProxy,
  type PreviewProxyOptions,
  splitPreviewPath,
  type UpstreamEngine,
  type UpstreamEngineChoice,
} from '@sandbox/proxy-core';
export { type AccessRecord, type AccessRecorder, requestIdOf } from './access.js';
export { type RegistrySyncOptions, syncRegistryWithContainers } from './container-lifecycle.js';
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
  dockerReadiness,
  type HealthEndpointsOptions,
  type ReadinessCheck,
  sharedStateReadiness,
  withHealthEndpoints,
} from './health.js';
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
  createErrorHandler,
  type ErrorHandlerOptions,
  notFoundHandler,
  toPreviewError,
} from './http-errors.js';
export { createKeyMatcher, INTERNAL_KEY_HEADER_NAME, requireInternalKey } from './internal-key.js';
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
  withMetrics,
} from './metrics.js';
export {
  createInternalApiDocument,
  DEFAULT_INTERNAL_API_BASE_PATH,
  INTERNAL_API_OPERATIONS,
  INTERNAL_API_VERSION,
  type InternalApiDocument,
  type InternalApiDocumentOptions,
  type InternalApiOperation,
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
  registeredPreviewSchema,
  registrationBodySchema,
  removedPreviewPortSchema,
  removedPreviewSchema,
} from './openapi.js';
export {
  createPreviewApp,
  createPreviewHandler,
  createPreviewRouter,
  DEFAULT_PREFIXES,
  type HandlesUpgrades,
  type PreviewApp,
  type PreviewAppOptions,
  type PreviewProxyHandler,
  type PreviewRequestHandler,
  type PreviewRouterOptions,
  type PreviewUpgradeHandler,
} from './preview-router.js';
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
  type ParsedRegistration,
  parsePortParam,
  parseRegistrationBody,
  REGISTRATION_BODY_LIMIT_BYTES,
} from './registration.js';
export {
  type ClientLimits,
  type RunningService,
  runService,
  type ServedPreviewApp,
  type ServePreviewAppOptions,
  servePreviewApp,
} from './serve.js';
export {
  containerStateOf,
  createSharedStateResolver,
  type PublishContainerStatesOptions,
  publishContainerStates,
} from './shared-state.js';
export {
  createPreviewTargetResolver,
  type PreviewTarget,
  type PreviewTargetResolver,
  type PreviewTargetResolverOptions,
} from './target.js';
