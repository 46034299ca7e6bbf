export { createSessionsApi, SESSIONS_BODY_LIMIT_BYTES, type SessionsApiOptions } from './api.js';
export { type ExecDocker, type ExecResult, type RunningExec, startExec } from './exec.js';
export { createFrameDemuxer, type OutputChunk } from './exec-frames.js';
export { childNameOf, fileTypeOfMode, parseContainerPath, parsePathStat } from './file-paths.js';
export {
  createSessionFiles,
  type FilesDocker,
  type SessionFiles,
  type SessionFilesOptions,
} from './files.js';
export { SESSIONS_API_DOCUMENT } from './openapi.js';
export {
  type CreateSessionRequest,
  createSessionBodySchema,
  type ExecEvent,
  type ExecRequest,
  execBodySchema,
  execEventSchema,
  type FileList,
  type FileStat,
  fileListSchema,
  fileStatSchema,
  type RemovedSession,
  removedSessionSchema,
  type Session,
  type SessionPort,
  sessionListSchema,
  sessionSchema,
} from './schemas.js';
export { registerSessionPortsWhenReady, type SessionPortsOptions } from './session-ports.js';
export {
  containerCreateOptions,
  type PreviewUrlOptions,
  portSpecsFromLabels,
  portSpecsOf,
  previewEnvironment,
  previewUrlsOf,
  SESSION_MANAGED_LABEL,
  SESSION_PORTS_LABEL,
  type SessionContainerOptions,
  type SessionPortSpec,
  type SessionResourceLimits,
} from './session-spec.js';
export { sessionViewOf } from './session-view.js';
export {
  createSessionManager,
  type SessionDocker,
  type SessionManager,
  type SessionManagerOptions,
} from './sessions.js';
