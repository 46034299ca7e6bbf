import { previewPortSchema, sessionIdSchema } from '@sandbox/error-contract';
import { z } from 'zod';

// The wire shapes of the sessions API: the router validates with them and the OpenAPI document is generated
// from them, so neither can drift from the other.

const visibilitySchema = z.enum(['public', 'private']);

/** A port to register once it accepts connections: a number, or the registration's options with it. */
export const sessionPortRequestSchema = z.union([
  previewPortSchema,
  z.object({
    port: previewPortSchema,
    stripPrefix: z
      .boolean()
      .optional()
      .describe('As for a registration: false when the app serves under `PREVIEW_BASE_PATH` itself.'),
    visibility: visibilitySchema.optional(),
  }),
]);

/** An environment variable name a shell would accept. */
const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be a variable name' });
const envSchema = z
  .record(envNameSchema, z.string().max(32_768))
  .refine((env) => Object.keys(env).length <= 256, {
    error: 'must not hold more than 256 variables',
  });
const commandSchema = z.array(z.string().max(32_768)).min(1).max(1024);
const containerPathSchema = z.string().startsWith('/').max(4096);

/** Body of `POST /sessions`. */
export const createSessionBodySchema = z.object({
  sessionId: sessionIdSchema.optional().describe('Generated (16 hex digits) when absent.'),
  image: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.\-/:@]*$/, { error: 'must be an image reference' })
    .describe('An image in the engine; pulled only when the service is configured to pull.'),
  cmd: commandSchema.optional().describe("Replaces the image's CMD (its ENTRYPOINT stays)."),
  env: envSchema.optional().describe("Added to the image's environment, after the preview variables."),
  ports: z
    .array(sessionPortRequestSchema)
    .max(16)
    .optional()
    .describe("Registered as each accepts connections; the first is the path routes' (active) port."),
  workdir: containerPathSchema.optional(),
});

/** Body of `POST /sessions/:id/exec`. */
export const execBodySchema = z.object({
  cmd: commandSchema.describe('Run as is, without a shell (`["sh", "-c", "..."]` for one).'),
  env: envSchema.optional(),
  workdir: containerPathSchema.optional(),
  user: z.string().min(1).max(256).optional().describe("Default: the image's user."),
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(86_400_000)
    .optional()
    .describe('The command and every process it started are killed after this many ms.'),
});

/** A session port, as a session's description gives it. */
export const sessionPortSchema = z.object({
  port: previewPortSchema,
  stripPrefix: z.boolean(),
  visibility: visibilitySchema,
  registered: z.boolean().describe('Whether the proxies route to it (it accepted a connection).'),
  urls: z.object({
    path: z.string().nullable().describe("The path route's URL: the active (or first) port only."),
    host: z.string().nullable().describe("The host route's URL, with a preview domain."),
  }),
});

/** What the API says of a session. */
export const sessionSchema = z.object({
  sessionId: sessionIdSchema,
  containerName: z.string(),
  containerId: z.string(),
  image: z.string(),
  managed: z.boolean().describe('Created through this API (only these are listed).'),
  state: z.string().describe("Docker's: created, running, paused, restarting, exited, dead..."),
  running: z.boolean(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  exitCode: z.number().int().nullable().describe('Of the last run, once it has ended.'),
  ports: z.array(sessionPortSchema),
});

/** 200 of `GET /sessions`. */
export const sessionListSchema = z.object({ sessions: z.array(sessionSchema) });

/** 200 of `DELETE /sessions/:id`. */
export const removedSessionSchema = z.object({
  sessionId: sessionIdSchema,
  removed: z.literal(true),
  ports: z.array(previewPortSchema).describe('The registrations that went with it.'),
});

/** One line of an exec's output stream (NDJSON), or one event of it (SSE, the type as the event name). */
export const execEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.enum(['stdout', 'stderr']), data: z.string().describe('UTF-8 text.') }),
  z.object({
    type: z.literal('exit'),
    exitCode: z.number().int().nullable(),
    timedOut: z.boolean(),
  }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);

/** What a path holds. */
export const fileTypeSchema = z.enum(['file', 'directory', 'symlink', 'other']);

/** `GET /sessions/:id/files/stat`, and each entry of a listing. */
export const fileStatSchema = z.object({
  path: z.string(),
  name: z.string(),
  type: fileTypeSchema,
  size: z.number().int(),
  mode: z.string().describe('Permission bits, octal (`0644`).'),
  modifiedAt: z.string(),
  linkTarget: z.string().optional().describe('For a symlink: where it points, resolved in the container.'),
});

/** 200 of `GET /sessions/:id/files/list`. */
export const fileListSchema = z.object({ path: z.string(), entries: z.array(fileStatSchema) });

/** 201 of `PUT /sessions/:id/files`. */
export const writtenFileSchema = z.object({
  path: z.string(),
  size: z.number().int(),
  written: z.literal(true),
});

/** Body of `POST /sessions`. */
export type CreateSessionRequest = z.output<typeof createSessionBodySchema>;
/** A port of a create request. */
export type SessionPortRequest = z.output<typeof sessionPortRequestSchema>;
/** Body of `POST /sessions/:id/exec`. */
export type ExecRequest = z.output<typeof execBodySchema>;
/** A session, as the API describes it. */
export type Session = z.output<typeof sessionSchema>;
/** A port of a session. */
export type SessionPort = z.output<typeof sessionPortSchema>;
/** 200 of `DELETE /sessions/:id`. */
export type RemovedSession = z.output<typeof removedSessionSchema>;
/** One event of an exec. */
export type ExecEvent = z.output<typeof execEventSchema>;
/** What a path is. */
export type FileStat = z.output<typeof fileStatSchema>;
/** A directory's entries. */
export type FileList = z.output<typeof fileListSchema>;
