import type { ServerResponse } from 'node:http';
import { previewErrors } from '@sandbox/error-contract';
import { isValidSessionId, sessionIdSchema } from '@sandbox/preview-registry';
import express from 'express';
import { z } from 'zod';
import type { InternalApiExtension } from './openapi.js';
import type { InternalApiModule } from './preview-router.js';
import type { RequestLog, RequestLogEntry } from './request-log.js';

/** Seconds between the comments that keep an idle follow open through proxies that cut silent streams. */
export const REQUEST_LOG_KEEPALIVE_MS = 15_000;
/**
 * Bytes a follower may have unsent before entries are skipped for it (and counted in a `dropped` event):
 * a stalled reader must not hold the service's memory.
 */
export const REQUEST_LOG_MAX_UNSENT_BYTES = 1024 * 1024;

const entrySchema = z.object({
  seq: z.number().int().min(1).describe("1 for the session's first entry; an SSE event's `id`."),
  time: z.string().describe('When it ended (ISO 8601).'),
  kind: z.enum(['http', 'websocket']),
  requestId: z.string().describe('The `X-Request-Id` it carried, also in the access line.'),
  route: z.string().optional().describe('`/previews`, `/internal-previews/proxy` or `host`.'),
  port: z.number().int().optional().describe('The container port, once resolved.'),
  method: z.string(),
  path: z.string().describe('As the client asked for it, without its query string.'),
  status: z
    .number()
    .int()
    .describe('0 when the client left before any status; 101 for a WebSocket the app accepted.'),
  durationMs: z.number(),
  bytesIn: z.number().int(),
  bytesOut: z.number().int(),
  upstreamConnectMs: z.number().optional(),
  closeCode: z.number().int().optional().describe("A WebSocket's first close code, either side."),
  aborted: z.boolean().describe('Whether it ended before its response did.'),
  error: z.string().optional().describe("The contract code answered instead of the app's response."),
});

const requestLogSchema = z.object({
  sessionId: sessionIdSchema,
  perSession: z.number().int().describe('Entries kept for a session; older ones are gone.'),
  entries: z.array(entrySchema).describe('Oldest first.'),
});

/** 200 of `GET /sessions/:id/previews/log`. */
export type RequestLogView = z.infer<typeof requestLogSchema>;

const DOCUMENT: InternalApiExtension = {
  schemas: { RequestLog: requestLogSchema, RequestLogEntry: entrySchema },
  operations: [
    {
      method: 'get',
      path: '/sessions/{id}/previews/log',
      operationId: 'getPreviewRequestLog',
      summary: "The preview's recent requests and WebSockets; `follow=1` streams them as they end (SSE).",
      description:
        'Each entry is an access record of the session: method, path without query, status, duration, bytes, ' +
        'a WebSocket and its close code, the contract code of an error. No header, cookie or query string is ' +
        'kept. A session has a log once a port is registered or a request reached one; it keeps the last ' +
        'REQUEST_LOG_SIZE entries. With `follow=1` the answer is `text/event-stream`: the kept entries after ' +
        '`after` (or `Last-Event-ID`), then each new one, one `data:` JSON entry per event with its `seq` as ' +
        'the `id`; a `dropped` event counts entries skipped for a reader that fell behind by 1 MiB.',
      query: [
        {
          name: 'follow',
          required: false,
          description: '1 or true: stream the entries as Server-Sent Events. Default 0.',
          schema: { type: 'string', enum: ['1', 'true', '0', 'false'] },
        },
        {
          name: 'after',
          required: false,
          description: 'Only the entries after this `seq` (a follow resumes from `Last-Event-ID` too).',
          schema: { type: 'integer', minimum: 0 },
        },
      ],
      success: {
        status: 200,
        description: 'The entries kept, oldest first; with follow=1, an event stream of RequestLogEntry',
        schema: 'RequestLog',
        alternatives: ['text/event-stream'],
      },
      errorCodes: ['FORBIDDEN', 'INTERNAL', 'MALFORMED_PATH', 'INVALID_SESSION_ID', 'INVALID_LOG_QUERY'],
    },
  ],
};

function parseFollow(raw: unknown): boolean {
  if (raw === undefined || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw previewErrors.invalidLogQuery('follow');
}

function parseAfter(raw: unknown): number {
  if (raw === undefined || raw === '') return 0;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) throw previewErrors.invalidLogQuery('after');
  return Number(raw);
}

const event = (entry: RequestLogEntry) => `id: ${entry.seq}\ndata: ${JSON.stringify(entry)}\n\n`;

// The stream of one follower: what is kept after `after`, then each new entry, until either side ends it.
function streamLog(res: ServerResponse, log: RequestLog, sessionId: string, after: number): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    // Entries must reach the reader as they happen, not when a buffering proxy in between sees fit.
    'x-accel-buffering': 'no',
  });
  // An EventSource reconnects a second after a cut, with the last id it saw.
  res.write('retry: 1000\n\n');
  let dropped = 0;
  const send = (entry: RequestLogEntry) => {
    if (res.writableLength > REQUEST_LOG_MAX_UNSENT_BYTES) {
      dropped++;
      return;
    }
    if (dropped > 0) {
      res.write(`event: dropped\ndata: ${JSON.stringify({ count: dropped })}\n\n`);
      dropped = 0;
    }
    res.write(event(entry));
  };
  for (const entry of log.entries(sessionId, after)) send(entry);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), REQUEST_LOG_KEEPALIVE_MS);
  keepAlive.unref();
  const unfollow = log.follow(sessionId, { entry: send, end: () => res.end() });
  res.once('close', () => {
    clearInterval(keepAlive);
    unfollow();
  });
}

/**
 * `GET /sessions/:id/previews/log` over `log`, for {@link PreviewRouterOptions.requestLog}: the entries as
 * JSON, or followed live as Server-Sent Events with `?follow=1`.
 */
export function createRequestLogApi(log: RequestLog): InternalApiModule {
  const router = express.Router();
  router.get('/sessions/:id/previews/log', (req, res) => {
    const sessionId = req.params.id;
    if (!isValidSessionId(sessionId)) throw previewErrors.invalidSessionId();
    const follow = parseFollow(req.query.follow);
    if (!follow) {
      const after = parseAfter(req.query.after);
      res.setHeader('cache-control', 'no-store');
      res.json({
        sessionId,
        perSession: log.perSession,
        entries: log.entries(sessionId, after),
      } satisfies RequestLogView);
      return;
    }
    // An EventSource reconnects to the same URL with the last id it saw: that wins over the URL's `after`.
    const lastEventId = req.headers['last-event-id'];
    streamLog(res, log, sessionId, parseAfter(lastEventId ?? req.query.after));
  });
  return { router, document: DOCUMENT };
}
