import { StringDecoder } from 'node:string_decoder';
import { isPreviewError, isValidSessionId, previewErrors } from '@sandbox/error-contract';
import { type InternalApiModule, requireJsonContentType } from '@sandbox/preview-server';
import express, { type Request, type Response } from 'express';
import type { z } from 'zod';
import { type ExecDocker, type RunningExec, startExec } from './exec.js';
import type { OutputChunk } from './exec-frames.js';
import { parseContainerPath } from './file-paths.js';
import { createSessionFiles, type FilesDocker } from './files.js';
import { SESSIONS_API_DOCUMENT } from './openapi.js';
import { createSessionBodySchema, type ExecEvent, execBodySchema } from './schemas.js';
import type { SessionManager } from './sessions.js';

/** Largest JSON body of a create or exec request (a command line, an environment). */
export const SESSIONS_BODY_LIMIT_BYTES = 1024 * 1024;

/** Options of {@link createSessionsApi}. */
export interface SessionsApiOptions {
  sessions: SessionManager;
  /**
   * Docker client for exec and file streams. It must have no request timeout: an exec may be silent for
   * minutes, and a large file takes as long as it takes.
   */
  streams: ExecDocker & FilesDocker;
  /** Largest file a `PUT …/files` accepts. Default 1 GiB. */
  maxFileBytes?: number;
}

function sessionIdParam(raw: string | string[] | undefined): string {
  if (!isValidSessionId(raw)) throw previewErrors.invalidSessionId();
  return raw;
}

/** The first problem zod found, as `field: what is wrong`. */
function describeIssue(error: z.ZodError): string {
  const [issue] = error.issues;
  if (issue === undefined) return 'invalid body';
  const field = issue.path.length === 0 ? 'body' : issue.path.join('.');
  return `${field}: ${issue.message}`;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw previewErrors.invalidSessionRequest(describeIssue(parsed.error));
  return parsed.data;
}

function pathQuery(req: Request): string {
  return parseContainerPath(req.query.path);
}

function contentLengthOf(req: Request): number | undefined {
  const raw = req.headers['content-length'];
  return raw === undefined || !/^\d+$/.test(raw) ? undefined : Number(raw);
}

// One format per client: NDJSON lines for programs, Server-Sent Events (the type as the event name) for a
// browser's EventSource.
function eventWriter(req: Request, res: Response) {
  const sse = req.accepts(['application/x-ndjson', 'text/event-stream']) === 'text/event-stream';
  res.status(200);
  res.setHeader(
    'content-type',
    sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
  );
  res.setHeader('cache-control', 'no-store');
  // Output must reach the caller as it is written, not when a buffering proxy in between sees fit.
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
  return (event: ExecEvent) => {
    const json = JSON.stringify(event);
    return res.write(sse ? `event: ${event.type}\ndata: ${json}\n\n` : `${json}\n`);
  };
}

async function streamExec(req: Request, res: Response, exec: RunningExec): Promise<void> {
  const write = eventWriter(req, res);
  // A multi-byte character split across two reads is sent whole, in the second line.
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  let finished = false;
  res.on('close', () => {
    // The caller went away: the command is not left running with nobody to read it.
    if (!finished) void exec.kill();
  });
  for await (const chunk of exec.output as AsyncIterable<OutputChunk>) {
    const data = decoders[chunk.stream].write(chunk.data);
    if (data !== '' && !write({ type: chunk.stream, data })) {
      await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
    }
    if (res.destroyed) break;
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    const rest = decoders[stream].end();
    if (rest !== '') write({ type: stream, data: rest });
  }
  const { exitCode, timedOut } = await exec.result();
  finished = true;
  write({ type: 'exit', exitCode, timedOut });
  res.end();
}

/**
 * The sessions API, mounted by the preview router under the internal prefix and key:
 * - `POST /sessions`, `GET /sessions`, `GET /sessions/:id`, `POST /sessions/:id/stop`, `…/start`,
 *   `DELETE /sessions/:id`;
 * - `POST /sessions/:id/exec`, streaming the command's output (NDJSON, or SSE when asked);
 * - `GET|PUT /sessions/:id/files?path=`, `GET …/files/list?path=`, `GET …/files/stat?path=`.
 */
export function createSessionsApi({
  sessions,
  streams,
  maxFileBytes = 1024 * 1024 * 1024,
}: SessionsApiOptions): InternalApiModule {
  const files = createSessionFiles({ docker: streams, maxBytes: maxFileBytes });
  const router = express.Router();
  const parseJson = express.json({ limit: SESSIONS_BODY_LIMIT_BYTES, strict: true, type: () => true });
  const json = [requireJsonContentType, parseJson];

  router.post('/sessions', ...json, async (req, res) => {
    const raw = (req.body ?? {}) as { sessionId?: unknown };
    // A bad id is the contract's row, as everywhere else an id is given.
    if (raw.sessionId !== undefined && !isValidSessionId(raw.sessionId))
      throw previewErrors.invalidSessionId();
    const session = await sessions.create(parseBody(createSessionBodySchema, req.body));
    res.status(201).location(`${req.baseUrl}/sessions/${session.sessionId}`).json(session);
  });

  router.get('/sessions', async (_req, res) => {
    res.json({ sessions: await sessions.list() });
  });

  router.get('/sessions/:id', async (req, res) => {
    res.json(await sessions.get(sessionIdParam(req.params.id)));
  });

  router.post('/sessions/:id/stop', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const raw = req.query.timeoutSeconds;
    let timeoutSeconds: number | undefined;
    if (raw !== undefined) {
      if (typeof raw !== 'string' || !/^\d{1,3}$/.test(raw) || Number(raw) > 600)
        throw previewErrors.invalidSessionRequest('timeoutSeconds: must be an integer from 0 to 600');
      timeoutSeconds = Number(raw);
    }
    res.json(await sessions.stop(sessionId, timeoutSeconds));
  });

  router.post('/sessions/:id/start', async (req, res) => {
    res.json(await sessions.start(sessionIdParam(req.params.id)));
  });

  router.delete('/sessions/:id', async (req, res) => {
    res.json(await sessions.remove(sessionIdParam(req.params.id)));
  });

  router.post('/sessions/:id/exec', ...json, async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const request = parseBody(execBodySchema, req.body);
    const exec = await startExec(streams, sessionId, request);
    try {
      await streamExec(req, res, exec);
    } catch (error) {
      // The head is sent: a failure now can only be told in the stream.
      void exec.kill();
      if (!res.writableEnded && !res.destroyed) {
        const failure = isPreviewError(error) ? error : previewErrors.dockerEngineError(error);
        res.end(`${JSON.stringify({ type: 'error', code: failure.code, message: failure.message })}\n`);
      }
    }
  });

  router.get('/sessions/:id/files/stat', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    res.json(await files.stat(sessionId, pathQuery(req)));
  });

  router.get('/sessions/:id/files/list', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    res.json(await files.list(sessionId, pathQuery(req)));
  });

  router.get('/sessions/:id/files', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const { stat, body } = await files.read(sessionId, pathQuery(req));
    res.status(200);
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', String(stat.size));
    res.setHeader('last-modified', new Date(stat.modifiedAt).toUTCString());
    body.on('error', () => res.destroy());
    // A client that goes away must not leave the engine's archive stream open.
    res.on('close', () => body.destroy());
    body.pipe(res);
  });

  router.put('/sessions/:id/files', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const path = pathQuery(req);
    const written = await files.write(sessionId, path, req, contentLengthOf(req));
    res.status(201).json({ ...written, written: true });
  });

  return { router, document: SESSIONS_API_DOCUMENT };
}
