export {
  createInMemoryRegistry,
  type InMemoryRegistryOptions,
  type PreviewRegistration,
  type PreviewRegistry,
} from './registry.js';
export {
  isValidSessionId,
  PREVIEW_PORT_RANGE,
  previewPortSchema,
  SESSION_ID_PATTERN,
  sessionIdSchema,
} from './schemas.js';
