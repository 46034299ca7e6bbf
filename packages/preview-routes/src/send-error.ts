import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { getReasonPhrase, toErrorResponse, type UnexpectedErrorLogger } from '@sandbox/error-contract';
import { traceOf } from '@sandbox/proxy-core';
import { errorPage, wantsErrorPage } from './error-page.js';

// A framework mounting these routes maps its own input errors (a body parser's, say) to contract errors
// before it calls these; anything that is not a PreviewError here is an unexpected 500.

/**
 * Writes any failure as the contract's JSON on a plain `node:http` response; a browser's navigation that
 * gets a 404, 500 or 502 gets a readable page with the same status instead (for the 502, one that says the
 * app is starting and reloads itself). A response already under way cannot be replaced by an error body:
 * it is cut instead, so the client notices.
 */
export function sendErrorResponse(
  res: ServerResponse,
  error: unknown,
  logUnexpected?: UnexpectedErrorLogger,
): void {
  // Started, or the connection already ended (the server answered the client's bad bytes itself).
  if (res.headersSent || res.socket?.writableEnded === true) {
    res.destroy();
    return;
  }
  const { status, body } = toErrorResponse(error, logUnexpected);
  // The access line names the row answered.
  const trace = traceOf(res.req);
  if (trace !== undefined) trace.error = body.code;
  if (wantsErrorPage(res.req, status, body.code)) {
    const page = errorPage(status, body, trace?.requestId);
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(page),
      // A page that says "starting" must not be what a cache serves once the app runs.
      'cache-control': 'no-store',
    });
    res.end(page);
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

/**
 * Writes any failure as the contract's JSON on the raw socket of an upgrade request that was not
 * upgraded (or of bytes the parser refused), then closes it: a WebSocket client sees the same status and
 * body as an HTTP one. Returns the bytes written (0 when the socket could not take them).
 */
export function sendUpgradeErrorResponse(
  socket: Duplex,
  error: unknown,
  logUnexpected?: UnexpectedErrorLogger,
  requestId?: string,
): number {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return 0;
  }
  const { status, body } = toErrorResponse(error, logUnexpected);
  const payload = JSON.stringify(body);
  const response =
    `HTTP/1.1 ${status} ${getReasonPhrase(status)}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(payload)}\r\n` +
    (requestId === undefined ? '' : `X-Request-Id: ${requestId}\r\n`) +
    'Connection: close\r\n\r\n' +
    payload;
  socket.end(response);
  // The server does not close a half-open socket it handed over (upgrade, CONNECT, a client error), and
  // no timeout applies to it any more: a client that never closes its side must not hold it.
  setTimeout(() => socket.destroy(), 1000).unref();
  return Buffer.byteLength(response);
}
