import { randomUUID } from 'node:crypto';
import { type IncomingMessage, METHODS, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { attachTrace, type RequestTrace } from '@sandbox/proxy-core';

/** One access line: a request or WebSocket, once it is over. */
export interface AccessRecord {
  requestId: string;
  kind: 'http' | 'websocket';
  /**
   * The route prefix (`/previews`, `/internal-previews/proxy`), `host` for host routing, `server` for an
   * answer the server made itself before any route (see `error`); absent otherwise.
   */
  route?: string;
  sessionId?: string;
  port?: number;
  method: string;
  /** The path without its query string (a query may carry tokens; it is never recorded). */
  path: string;
  /** The status sent (101 for a WebSocket the container accepted); 0 when the client left before any. */
  status: number;
  /**
   * Body bytes received (as forwarded to the container; else as the client's Content-Length said) and
   * bytes sent to the client on its connection (head and body).
   */
  bytesIn: number;
  bytesOut: number;
  /** From the proxy's dispatch to the request being on a connected upstream socket (0 when reused). */
  upstreamConnectMs?: number;
  durationMs: number;
  /** A WebSocket's close code (the first close frame either side sent); absent when none was sent. */
  closeCode?: number;
  /** Whether the exchange ended before the response did (client gone, upstream cut). */
  aborted: boolean;
  /**
   * The contract code of an error answered instead of a container's response (`PREVIEW_NOT_REGISTERED`,
   * `UPSTREAM_CONNECT_FAILED`...), including those the server made itself before any route (route
   * `server`: 408, 431, 400, 417, 505).
   */
  error?: string;
}

/** Receives access records; it must not throw or block (a logger's async write). */
export type AccessRecorder = (record: AccessRecord) => void;

// An incoming id is kept only when it is short and plain, so it cannot forge or break log lines.
const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** The request's id: its `X-Request-Id` when usable, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

function pathOf(url: string | undefined): string {
  const value = url ?? '/';
  const queryAt = value.indexOf('?');
  return queryAt === -1 ? value : value.slice(0, queryAt);
}

function startTrace(req: IncomingMessage): RequestTrace {
  const trace: RequestTrace = { requestId: requestIdOf(req), startedAt: performance.now() };
  attachTrace(req, trace);
  // Forwarded to the container as the id this request is known by.
  req.headers['x-request-id'] = trace.requestId;
  return trace;
}

// One object built in one go, in a fixed field order: this runs once per request on the hot path.
function finish(
  trace: RequestTrace,
  req: IncomingMessage,
  url: string | undefined,
  fields: Pick<AccessRecord, 'kind' | 'status' | 'bytesIn' | 'bytesOut' | 'aborted'>,
): AccessRecord {
  const record: AccessRecord = {
    requestId: trace.requestId,
    kind: fields.kind,
    method: req.method ?? 'GET',
    path: pathOf(url),
    status: fields.status,
    bytesIn: fields.bytesIn,
    bytesOut: fields.bytesOut,
    durationMs: Math.round((performance.now() - trace.startedAt) * 1000) / 1000,
    aborted: fields.aborted,
  };
  if (trace.route !== undefined) record.route = trace.route;
  if (trace.sessionId !== undefined) record.sessionId = trace.sessionId;
  if (trace.port !== undefined) record.port = trace.port;
  if (trace.closeCode !== undefined) record.closeCode = trace.closeCode;
  if (trace.error !== undefined) record.error = trace.error;
  if (trace.connectedAt !== undefined && trace.dispatchedAt !== undefined)
    record.upstreamConnectMs = Math.round((trace.connectedAt - trace.dispatchedAt) * 1000) / 1000;
  return record;
}

/** Traces one HTTP request and records it when its response is over. Returns its id. */
export function traceHttpRequest(req: IncomingMessage, res: ServerResponse, record: AccessRecorder): string {
  const trace = startTrace(req);
  // `req.url` is rewritten on the way (the proxy strips the prefix): keep what the client asked for.
  const url = req.url;
  const socket = req.socket;
  const writtenAtStart = socket.bytesWritten;
  res.once('close', () => {
    record(
      finish(trace, req, url, {
        kind: 'http',
        status: res.headersSent ? res.statusCode : 0,
        bytesIn: trace.bytesIn ?? (Number(req.headers['content-length']) || 0),
        bytesOut: socket.bytesWritten - writtenAtStart,
        aborted: !res.writableFinished,
      }),
    );
  });
  return trace.requestId;
}

/**
 * Traces one upgrade and records it when its socket closes. Returns the `fail` wrapper that notes the
 * status of an error answered instead of the upgrade.
 */
export function traceUpgrade(
  req: IncomingMessage,
  socket: Duplex & { bytesRead?: number; bytesWritten?: number },
  record: AccessRecorder,
): { requestId: string; noteFailure(status: number, code?: string): void } {
  const trace = startTrace(req);
  const url = req.url;
  const readAtStart = socket.bytesRead ?? 0;
  const writtenAtStart = socket.bytesWritten ?? 0;
  let failedWith: number | undefined;
  socket.once('close', () => {
    record(
      finish(trace, req, url, {
        kind: 'websocket',
        status: failedWith ?? trace.upgradeStatus ?? 101,
        bytesIn: (socket.bytesRead ?? 0) - readAtStart,
        bytesOut: (socket.bytesWritten ?? 0) - writtenAtStart,
        aborted: false,
      }),
    );
  });
  return {
    requestId: trace.requestId,
    noteFailure(status, code) {
      failedWith = status;
      if (code !== undefined) trace.error = code;
    },
  };
}

const KNOWN_METHODS = new Set(METHODS);
// A request line as far as it can be read: `METHOD target`, the target up to its query.
const REQUEST_LINE = /^([A-Z]{1,24}) ([^\s?]{1,2048})/;

/**
 * The method and path of bytes the parser refused, when a request line can be read from them (`-`
 * otherwise, and for a method Node does not know, so that a client cannot invent metric labels).
 */
export function requestLineOf(raw: Buffer | undefined): { method: string; path: string } {
  const match = raw === undefined ? null : REQUEST_LINE.exec(raw.toString('latin1', 0, 2100));
  const method = match?.[1];
  if (match === null || method === undefined || !KNOWN_METHODS.has(method)) return { method: '-', path: '-' };
  return { method, path: match[2] ?? '-' };
}

/** What the server answered itself, for {@link refusalRecord}. */
export interface Refusal {
  requestId: string;
  method: string;
  path: string;
  status: number;
  /** The contract code answered. */
  error: string;
  bytesIn: number;
  bytesOut: number;
  startedAt: number;
}

/** The access line of an answer the server made before any route (route `server`). */
export function refusalRecord(refusal: Refusal): AccessRecord {
  return {
    requestId: refusal.requestId,
    kind: 'http',
    route: 'server',
    method: refusal.method,
    path: pathOf(refusal.path),
    status: refusal.status,
    bytesIn: refusal.bytesIn,
    bytesOut: refusal.bytesOut,
    durationMs: Math.round((performance.now() - refusal.startedAt) * 1000) / 1000,
    aborted: false,
    error: refusal.error,
  };
}
