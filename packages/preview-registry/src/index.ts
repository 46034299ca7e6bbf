export {
  createInMemoryRegistry,
  type InMemoryRegistryOptions,
  type KeptPrefixPort,
  keepsPrefixIn,
  type PreviewRegistration,
  type PreviewRegistry,
  portOf,
  type RegisterOptions,
  type StoredPort,
  storedPort,
  withoutPort,
  withPortRegistered,
} from './registry.js';
export {
  isValidSessionId,
  PREVIEW_PORT_RANGE,
  previewPortSchema,
  SESSION_ID_PATTERN,
  sessionIdSchema,
} from './schemas.js';
export type {
  EngineState,
  PreviewStatePublisher,
  PreviewStateView,
  SessionContainerState,
  SharedPreviewState,
  SharedStateConnection,
  SharedStateListener,
} from './shared-state.js';
