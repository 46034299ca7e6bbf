import type { PreviewErrorCode } from '@sandbox/error-contract';
import type { InternalApiExtension, InternalApiOperation } from '@sandbox/preview-server';
import {
  createSessionBodySchema,
  execBodySchema,
  execEventSchema,
  fileListSchema,
  fileStatSchema,
  removedSessionSchema,
  sessionListSchema,
  sessionSchema,
  writtenFileSchema,
} from './schemas.js';

// Every operation behind the key can answer these.
const EVERY: readonly PreviewErrorCode[] = ['FORBIDDEN', 'INTERNAL', 'MALFORMED_PATH', 'DOCKER_ENGINE_ERROR'];
const SESSION: readonly PreviewErrorCode[] = [...EVERY, 'INVALID_SESSION_ID', 'SESSION_NOT_FOUND'];
const JSON_BODY: readonly PreviewErrorCode[] = [
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'MALFORMED_JSON',
  'INVALID_SESSION_REQUEST',
];
const FILE_PATH: readonly PreviewErrorCode[] = [...SESSION, 'INVALID_FILE_PATH', 'FILE_NOT_FOUND'];

const pathQuery = {
  name: 'path',
  required: true,
  description:
    'An absolute path in the container, without `..` segments; symlinks resolve inside the container.',
  schema: { type: 'string' as const, pattern: '^/' },
};

const OPERATIONS: readonly InternalApiOperation[] = [
  {
    method: 'post',
    path: '/sessions',
    operationId: 'createSession',
    summary: 'Create and start a session container from a local image.',
    description:
      'The container is `sandbox-session-{id}`, labelled as created here, on PREVIEW_NETWORK when set, with ' +
      "the service's resource limits. Its environment tells the app where it is served (docs/sessions.md). " +
      'Each port is registered once it accepts connections; the first is the active one.',
    requestBody: 'CreateSessionBody',
    success: { status: 201, description: 'Created and started', schema: 'Session' },
    errorCodes: [
      ...EVERY,
      ...JSON_BODY,
      'INVALID_SESSION_ID',
      'PREVIEW_TOKENS_DISABLED',
      'IMAGE_NOT_FOUND',
      'IMAGE_PULL_FAILED',
      'SESSION_EXISTS',
    ],
  },
  {
    method: 'get',
    path: '/sessions',
    operationId: 'listSessions',
    summary: 'The sessions created through this API, oldest first.',
    success: { status: 200, description: 'The sessions', schema: 'SessionList' },
    errorCodes: EVERY,
  },
  {
    method: 'get',
    path: '/sessions/{id}',
    operationId: 'getSession',
    summary: "A session's state, image, ports and their URLs.",
    success: { status: 200, description: 'The session', schema: 'Session' },
    errorCodes: SESSION,
  },
  {
    method: 'post',
    path: '/sessions/{id}/stop',
    operationId: 'stopSession',
    summary: 'Stop the container (SIGTERM, then SIGKILL after `timeoutSeconds`); its registrations stay.',
    query: [
      {
        name: 'timeoutSeconds',
        required: false,
        description: 'Seconds between SIGTERM and SIGKILL, 0 to 600; default 10.',
        schema: { type: 'integer', minimum: 0, maximum: 600 },
      },
    ],
    success: { status: 200, description: 'Stopped (or already stopped)', schema: 'Session' },
    errorCodes: [...SESSION, 'INVALID_SESSION_REQUEST'],
  },
  {
    method: 'post',
    path: '/sessions/{id}/start',
    operationId: 'startSession',
    summary: 'Start the container again; its ports are registered again as they answer.',
    success: { status: 200, description: 'Started (or already running)', schema: 'Session' },
    errorCodes: SESSION,
  },
  {
    method: 'delete',
    path: '/sessions/{id}',
    operationId: 'removeSession',
    summary: 'Remove the container and its anonymous volumes; its registrations and tokens go with it.',
    success: { status: 200, description: 'Removed', schema: 'RemovedSession' },
    errorCodes: SESSION,
  },
  {
    method: 'post',
    path: '/sessions/{id}/exec',
    operationId: 'execInSession',
    summary: 'Run a command in the running container, streaming its output and then its exit code.',
    description:
      'One JSON event per line (`application/x-ndjson`), or Server-Sent Events with `Accept: ' +
      'text/event-stream`: `stdout` and `stderr` as they are written, then one `exit` (or one `error` ' +
      'if the engine fails mid-stream). Closing the connection kills the command.',
    requestBody: 'ExecBody',
    success: {
      status: 200,
      description: 'The output stream; each line is an ExecEvent',
      schema: 'ExecEvent',
      contentType: 'application/x-ndjson',
      alternatives: ['text/event-stream'],
    },
    errorCodes: [...SESSION, ...JSON_BODY, 'SESSION_NOT_RUNNING'],
  },
  {
    method: 'get',
    path: '/sessions/{id}/files',
    operationId: 'readSessionFile',
    summary: "A regular file's bytes, streamed.",
    query: [pathQuery],
    success: {
      status: 200,
      description: 'The bytes',
      contentType: 'application/octet-stream',
    },
    errorCodes: [...FILE_PATH, 'NOT_A_FILE'],
  },
  {
    method: 'put',
    path: '/sessions/{id}/files',
    operationId: 'writeSessionFile',
    summary: 'Write a file (replacing it), creating missing parent directories; the body streams.',
    query: [pathQuery],
    requestBody: {
      contentType: 'application/octet-stream',
      description: "The file's bytes, any media type.",
    },
    success: { status: 201, description: 'Written', schema: 'WrittenFile' },
    errorCodes: [...SESSION, 'INVALID_FILE_PATH', 'NOT_A_FILE', 'PAYLOAD_TOO_LARGE'],
  },
  {
    method: 'get',
    path: '/sessions/{id}/files/list',
    operationId: 'listSessionFiles',
    summary: "A directory's entries, by name.",
    query: [pathQuery],
    success: { status: 200, description: 'The entries', schema: 'FileList' },
    errorCodes: [...FILE_PATH, 'NOT_A_DIRECTORY'],
  },
  {
    method: 'get',
    path: '/sessions/{id}/files/stat',
    operationId: 'statSessionFile',
    summary: 'What a path is (a symlink is described, not followed).',
    query: [pathQuery],
    success: { status: 200, description: 'The path', schema: 'FileStat' },
    errorCodes: FILE_PATH,
  },
];

/** What the internal API's OpenAPI document says of the sessions API. */
export const SESSIONS_API_DOCUMENT: InternalApiExtension = {
  operations: OPERATIONS,
  schemas: {
    CreateSessionBody: createSessionBodySchema,
    Session: sessionSchema,
    SessionList: sessionListSchema,
    RemovedSession: removedSessionSchema,
    ExecBody: execBodySchema,
    ExecEvent: execEventSchema,
    FileStat: fileStatSchema,
    FileList: fileListSchema,
    WrittenFile: writtenFileSchema,
  },
  requestSchemas: ['CreateSessionBody', 'ExecBody'],
};
