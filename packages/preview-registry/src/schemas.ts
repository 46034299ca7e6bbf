// The contract's session id and port rules live in @sandbox/error-contract, which the resolver shares;
// re-exported here, where the registry's callers have always found them.
export {
  isValidSessionId,
  PREVIEW_PORT_RANGE,
  previewPortSchema,
  SESSION_ID_PATTERN,
  sessionIdSchema,
} from '@sandbox/error-contract';
