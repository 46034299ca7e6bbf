export {
  ERROR_STATUS,
  getHttpStatus,
  getReasonPhrase,
  PREVIEW_ERROR_CODES,
  type PreviewErrorCode,
} from './codes.js';
export {
  describeCause,
  isPreviewError,
  PreviewError,
  type PreviewErrorOptions,
  previewErrors,
} from './errors.js';
export {
  CONTAINER_NAME_PREFIX,
  containerNameFor,
  isValidSessionId,
  PREVIEW_PORT_RANGE,
  previewPortSchema,
  SESSION_ID_PATTERN,
  sessionIdFromContainerName,
  sessionIdSchema,
} from './names.js';
export type { ContainerResolver, ResolvedContainer } from './resolver.js';
export {
  type ErrorBody,
  type ErrorResponse,
  errorBodySchema,
  toErrorBody,
  toErrorResponse,
  type UnexpectedErrorLogger,
} from './wire.js';
