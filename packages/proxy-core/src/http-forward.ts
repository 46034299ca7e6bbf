import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Transform } from 'node:stream';
import { previewErrors } from '@sandbox/error-contract';
import type { ClientTransfer, ClientTransferGuard } from './client-transfer.js';
import { rewriteLocation, scopeSetCookiePath } from './response-rewrite.js';
import { type RequestTrace, traceOf } from './trace.js';
import type { UpstreamDispatcher, UpstreamHandler } from './upstream-client.js';
import { upstreamFailure } from './upstream-errors.js';

/** What one forwarded HTTP request needs besides the request and response. */
export interface HttpForward {
  origin: string;
  forwardPath: string;
  /** The fields the container receives (see `upstreamRequestHeaders`). */
  headers: string[];
  prefix: string;
  next: (error?: unknown) => void;
  /** Refuse request bodies larger than this many bytes (413). Default: no limit. */
  maxBodyBytes?: number | undefined;
  /** The session whose place this request holds, given back to `release` when the response closes. */
  sessionId?: string | undefined;
  release?: ((sessionId: string) => void) | undefined;
  /** The app's idea of its own origin and the client's (`//host`): see `ForwardRequest.asLocalhost`. */
  appOrigin?: AppOrigin | undefined;
  /** Watches the client's side of the transfer (slow uploads, slow readers); none when absent. */
  transfers?: ClientTransferGuard | undefined;
  /** The session the transfer's stalls count against (whether or not its places are counted). */
  transferSessionId?: string | undefined;
}

/** Whether a request announces a body (a length other than 0, or a transfer coding). */
export function requestHasBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

// Response fields that belong to the container's connection, not to the client's (RFC 9110 7.6.1), plus
// Transfer-Encoding: Node frames the body for its own client (chunked, or by the container's length).
const HOP_BY_HOP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'te',
  'trailer',
  'upgrade',
  'transfer-encoding',
]);

// Indexed by name length: true for the lengths of the names above and of those rewritten (Location,
// Set-Cookie). An array read per field, where a Set would hash.
const NEEDS_CARE_BY_LENGTH: boolean[] = [];
for (const name of [...HOP_BY_HOP_RESPONSE, 'location', 'set-cookie'])
  NEEDS_CARE_BY_LENGTH[name.length] = true;

/**
 * The container's response header fields as the client receives them, as a flat `[name, value, ...]` list
 * in the container's order and spelling (the form `writeHead` takes without copying): hop-by-hop fields and
 * those its `Connection` names dropped, `Location` and `Set-Cookie` kept under the route prefix.
 */
export function forwardableResponseHeaders(
  raw: ReadonlyArray<Buffer | string>,
  prefix: string,
  appOrigin?: AppOrigin,
): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // latin1 maps bytes to chars one to one, so a value's non-ASCII bytes leave exactly as they came.
    const name = latin1(raw[i]);
    let value = latin1(raw[i + 1]);
    // Only names as long as one that needs care are lowercased: most fields pass untouched.
    if (NEEDS_CARE_BY_LENGTH[name.length] === true) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP_RESPONSE.has(lower)) {
        if (lower === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
        continue;
      }
      if (lower === 'location')
        value = rewriteLocation(appOrigin === undefined ? value : toClientOrigin(value, appOrigin), prefix);
      else if (lower === 'set-cookie') value = scopeSetCookiePath(value, prefix);
    }
    out.push(name, value);
  }
  // Usually just `keep-alive`, already dropped; anything else it names (even `close`: a field called Close)
  // is dropped in a second pass.
  if (connection === undefined) return out;
  const lowerConnection = connection.toLowerCase();
  if (lowerConnection === 'keep-alive') return out;
  const named = lowerConnection
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '' && !HOP_BY_HOP_RESPONSE.has(token));
  if (named.length === 0) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    const name = out[i] as string;
    if (!named.includes(name.toLowerCase())) kept.push(name, out[i + 1] as string);
  }
  return kept;
}

/** The origin an app was presented with (`http://localhost:3000`), and the client's (`//host:port`). */
export interface AppOrigin {
  app: string;
  client: string;
}

/** A `Location` into the app's own origin, into the client's: the rest of it kept as written. */
export function toClientOrigin(location: string, { app, client }: AppOrigin): string {
  if (location.length < app.length || location.slice(0, app.length).toLowerCase() !== app) return location;
  const next = location.charAt(app.length);
  if (next !== '' && next !== '/' && next !== '?' && next !== '#') return location;
  return client + location.slice(app.length);
}

function hasField(headers: readonly string[], lower: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === lower) return true;
  return false;
}

function latin1(field: Buffer | string | undefined): string {
  if (field === undefined) return '';
  return typeof field === 'string' ? field : field.toString('latin1');
}

/**
 * Streams the container's response to the client. A class rather than closures: one object per request,
 * its methods shared, on the path every request takes. Its interface is undici's native handler interface
 * (typed deprecated there in favour of a wrapper that would parse every header into an object first,
 * which this proxy would only turn back into a list), which the native client speaks too.
 */
class ForwardHandler implements UpstreamHandler {
  private abortUpstream: ((reason?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private awaitingDrain = false;
  /** The watch over the client's side, when slow clients are limited. */
  transfer: ClientTransfer | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly forward: HttpForward,
  ) {}

  onConnect(abort: (reason?: Error) => void): void {
    this.abortUpstream = abort;
    const trace = traceOf(this.req);
    if (trace) trace.connectedAt = performance.now();
    // The client may have left while undici waited for a connection: spend none on no one.
    if (this.res.destroyed) abort(new Error('client closed the connection'));
  }

  onHeaders(
    statusCode: number,
    rawHeaders: ReadonlyArray<Buffer | string>,
    resume: () => void,
    statusText: string,
  ): boolean {
    // An informational answer (103 Early Hints, say; undici passes them on, the native client does not):
    // the final head follows, and only it is the client's response.
    if (statusCode < 200) return true;
    this.resumeUpstream = resume;
    const headers = forwardableResponseHeaders(rawHeaders, this.forward.prefix, this.forward.appOrigin);
    // The request id goes back to the client in the same head (a setHeader here would send Node down its
    // slow merge path for every response); the container's own X-Request-Id wins.
    const requestId = traceOf(this.req)?.requestId;
    if (requestId !== undefined && !hasField(headers, 'x-request-id'))
      headers.push('X-Request-Id', requestId);
    if (statusText) this.res.writeHead(statusCode, statusText, headers);
    else this.res.writeHead(statusCode, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // Backpressure is the rare case: its listener is made only then, once however many chunks the
    // container's client still hands over from what it had already read.
    if (!this.awaitingDrain) {
      this.awaitingDrain = true;
      // Watched from the first backpressure on: most responses never see one, and cost nothing here.
      this.transfer ??= this.watch();
      this.transfer?.sendStalled();
      this.res.once('drain', () => {
        this.awaitingDrain = false;
        this.transfer?.sendDrained();
        this.resumeUpstream?.();
      });
    }
    return false;
  }

  /** Starts watching the client's side of this transfer, when slow clients are limited. */
  watch(): ClientTransfer | undefined {
    const { transfers, transferSessionId } = this.forward;
    return transfers?.active === true ? transfers.watch(this.req, this.res, transferSessionId) : undefined;
  }

  onComplete(): void {
    // The container answered without reading the whole upload: the rest is not wanted, and the client's
    // connection ends with the response rather than waiting for a body no one reads.
    closeUnlessComplete(this.req, this.res);
    this.res.end();
    // The response's last bytes may still wait in the client's socket buffer, which takes up to its
    // highWaterMark before a write reports backpressure (64 KiB since Node 22, 16 KiB before): a client
    // that does not read them holds its connection as surely as one that stalls mid-response, and no
    // keep-alive timeout runs until they are out. That wait is on the client too.
    if (!this.res.writableFinished && this.res.writableLength > 0) {
      this.transfer ??= this.watch();
      this.transfer?.sendStalled();
      this.res.once('finish', () => this.transfer?.sendDrained());
    }
  }

  // The response's only 'close' listener, bound once per request. Nothing is stored on Node's own objects,
  // whose shapes its hot paths rely on.
  readonly closed = (): void => {
    const { sessionId, release } = this.forward;
    if (sessionId !== undefined) release?.(sessionId);
    if (this.transfer !== undefined) this.forward.transfers?.release(this.transfer);
    // The client left (or its connection broke) before the response was done: stop the upstream request.
    if (!this.res.writableFinished) this.abortUpstream?.(new Error('client closed the connection'));
  };

  onError(error: Error): void {
    const { res, req } = this;
    // Once bytes of the container's response went out, a second (error) response cannot follow: cut the
    // client's connection so it sees the truncation instead of waiting for an end that will not come.
    if (
      res.headersSent ||
      res.destroyed ||
      req.socket === null ||
      req.socket.destroyed ||
      req.socket.writableEnded
    ) {
      res.destroy();
      return;
    }
    closeUnlessComplete(req, res);
    this.forward.next(upstreamFailure(error));
  }
}

// An answer sent before the request body was all read ends the connection: the rest of the body would
// otherwise be read and thrown away (a refused 1 GiB upload, say) before the next request could start.
function closeUnlessComplete(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete) res.shouldKeepAlive = false;
}

// An observed request's body is counted on its way to the container (the socket's counters cannot tell
// a small body from the head it arrived with), and a limited one is cut where it passes the limit: a
// chunked body announces no length. A watched one tells its watch of each arrival.
function checkedBody(
  trace: RequestTrace | undefined,
  maxBodyBytes: number | undefined,
  transfer: ClientTransfer | undefined,
): Transform {
  if (trace) trace.bytesIn = 0;
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (trace) trace.bytesIn = seen;
      transfer?.bodyBytes(chunk.length);
      if (maxBodyBytes !== undefined && seen > maxBodyBytes)
        callback(previewErrors.payloadTooLarge(maxBodyBytes));
      else callback(null, chunk);
    },
  });
}

function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const length = headers['content-length'];
  return length === undefined ? undefined : Number(length);
}

/**
 * Forwards one HTTP request (its headers already prepared) through `dispatcher`. Hop-by-hop framing is
 * the client's: undici rejects the fields it owns, so those go here; the body is handed over through its
 * own stream because undici destroys the body it was given when the container cannot be reached, and that
 * must not take the client's socket (which still has to carry the 502) with it.
 */
export function forwardHttp(
  dispatcher: UpstreamDispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  forward: HttpForward,
): void {
  const { headers } = req;
  const { maxBodyBytes } = forward;
  const handler = new ForwardHandler(req, res, forward);
  res.on('close', handler.closed);
  const hasBody = requestHasBody(headers);
  if (hasBody && maxBodyBytes !== undefined && (declaredLength(headers) ?? 0) > maxBodyBytes) {
    // Refused before the container hears of it; Node has checked that the length is a number.
    closeUnlessComplete(req, res);
    forward.next(previewErrors.payloadTooLarge(maxBodyBytes));
    return;
  }
  const trace = traceOf(req);
  let body: PassThrough | Transform | null = null;
  if (hasBody) {
    const transfer = req.complete ? undefined : handler.watch();
    handler.transfer = transfer;
    body =
      trace === undefined && maxBodyBytes === undefined && transfer === undefined
        ? new PassThrough()
        : checkedBody(trace, maxBodyBytes, transfer);
    if (transfer !== undefined) {
      transfer.watchBody(body);
      const done = () => transfer.bodyDone();
      req.once('end', done);
      body.once('error', done);
    }
    req.pipe(body);
  }
  if (trace) trace.dispatchedAt = performance.now();
  dispatcher.dispatch(
    {
      origin: forward.origin,
      path: forward.forwardPath,
      method: req.method ?? 'GET',
      headers: forward.headers,
      body,
    },
    handler,
  );
}
