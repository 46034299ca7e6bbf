import { createHash } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import {
  createServiceLogger,
  errorBodySchema,
  PREVIEW_ERROR_CODES,
  PreviewError,
  type PreviewErrorCode,
  toErrorResponse,
} from '@sandbox/preview-core';
import {
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { register, startManager, TEST_KEY } from './harness.js';

// Property tests against a real container-manager and two real session containers: generated requests,
// written byte for byte on raw sockets (no client normalises anything), and one invariant for every
// answer. Either it is the echo of the container registered for the session the request names (by path
// or by Host), with the target it should see; or it is a contract error; or the route's slash redirect.
// Never the other session's container, never a connection dropped without an answer. Where the README
// fixes the outcome of a request (which error, a redirect, or proxied), that outcome is checked too, so a
// proxy that refused everything could not pass.

const DOMAIN = 'preview.test';
const PREFIXES = ['/previews', '/internal-previews/proxy'] as const;
const CONTAINER_PORT = 3000;
const SESSION_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const ANSWER_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------------------------------------
// Raw HTTP/1.1 on a socket.

/** One request as its bytes go on the wire; every string is latin1 (one char per byte). */
interface RawRequest {
  method: string;
  target: string;
  version: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** How the body is framed; `none` sends no framing field at all. */
  framing: 'length' | 'chunked' | 'none';
  /** Chunked only: chunk extensions and a trailer section, which the proxy must accept and not forward. */
  chunkExtras?: boolean;
  /** Sent instead of the head built from the fields above (malformed requests). */
  rawHead?: string;
}

interface Answer {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Interim (1xx) statuses seen before the final one. */
  interim: number[];
  /** Whether the server closed the connection after the answer (only waited for when asked). */
  closedByServer: boolean;
}

type Outcome = { kind: 'answer'; answer: Answer } | { kind: 'no-answer'; detail: string; received: string };

function serialize(request: RawRequest): Buffer {
  let body = request.body;
  if (request.framing === 'chunked') {
    // Uneven chunks, so that boundaries fall anywhere.
    const parts: Buffer[] = [];
    for (let at = 0, size = 1; at < body.length; at += size, size = size * 3 + 1) {
      const piece = body.subarray(at, at + size);
      const extension = request.chunkExtras ? ';ext="x";n=1' : '';
      parts.push(
        Buffer.from(`${piece.length.toString(16)}${extension}\r\n`, 'latin1'),
        piece,
        Buffer.from('\r\n'),
      );
    }
    parts.push(Buffer.from(request.chunkExtras ? '0\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n'));
    body = Buffer.concat(parts);
  }
  if (request.rawHead !== undefined) return Buffer.concat([Buffer.from(request.rawHead, 'latin1'), body]);
  const lines = [`${request.method} ${request.target} ${request.version}`];
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  if (request.framing === 'length') lines.push(`Content-Length: ${request.body.length}`);
  if (request.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function headerOf(headers: Array<[string, string]>, name: string): string | undefined {
  return headers.find(([field]) => field === name)?.[1];
}

type Parsed = { answer: Omit<Answer, 'closedByServer'>; consumed: number };

/** Parses one response (after any 1xx) from the bytes so far; `undefined` while more bytes are needed. */
function parseAnswer(data: Buffer, method: string, ended: boolean): Parsed | undefined {
  const interim: number[] = [];
  let offset = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', offset);
    if (headEnd === -1) return undefined;
    const [statusLine = '', ...lines] = data.subarray(offset, headEnd).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
    if (!match) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(statusLine)}`);
    const status = Number(match[1]);
    const headers = lines.map((line): [string, string] => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    });
    offset = headEnd + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(status);
      continue;
    }
    const done = (body: Buffer, consumed: number): Parsed => ({
      answer: { status, headers, body, interim },
      consumed,
    });
    if (method === 'HEAD' || status === 204 || status === 304 || status === 101) {
      return done(Buffer.alloc(0), offset);
    }
    if (/chunked/i.test(headerOf(headers, 'transfer-encoding') ?? '')) {
      const parts: Buffer[] = [];
      let at = offset;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at);
        if (lineEnd === -1) return undefined;
        const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size line');
        if (size === 0) {
          // The trailer section (none expected) ends with an empty line.
          const end = data.indexOf('\r\n\r\n', lineEnd);
          const bare = data.subarray(lineEnd, lineEnd + 4).toString('latin1') === '\r\n\r\n';
          if (end === -1) return undefined;
          return done(Buffer.concat(parts), (bare ? lineEnd : end) + 4);
        }
        if (data.length < lineEnd + 2 + size + 2) return undefined;
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    const length = headerOf(headers, 'content-length');
    if (length !== undefined) {
      const n = Number(length);
      if (data.length - offset < n) return undefined;
      return done(data.subarray(offset, offset + n), offset + n);
    }
    // Neither length nor chunks: the body runs to the end of the connection.
    return ended ? done(data.subarray(offset), data.length) : undefined;
  }
}

/**
 * Writes requests on one fresh connection and reads an answer to each: one after the other, or all
 * written at once (pipelined). After a `Connection: close` answer the rest get none, as HTTP says;
 * closes the socket at the end.
 */
function converse(
  port: number,
  requests: RawRequest[],
  { pipelined = false, waitForClose = false }: { pipelined?: boolean; waitForClose?: boolean } = {},
): Promise<Array<Outcome | 'closed-as-announced'>> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const outcomes: Array<Outcome | 'closed-as-announced'> = [];
    let data = Buffer.alloc(0);
    let ended = false;
    let error: Error | undefined;
    let pending: Parsed | undefined;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      while (outcomes.length < requests.length) {
        const last = outcomes.at(-1);
        const announced =
          last !== undefined &&
          last !== 'closed-as-announced' &&
          last.kind === 'answer' &&
          /close/i.test(headerOf(last.answer.headers, 'connection') ?? '');
        outcomes.push(
          announced || last === 'closed-as-announced'
            ? 'closed-as-announced'
            : {
                kind: 'no-answer',
                detail: ended ? (error?.message ?? 'closed') : 'timeout',
                received: data.toString('latin1').slice(0, 300),
              },
        );
      }
      resolve(outcomes);
    };
    const timer = setTimeout(settle, ANSWER_TIMEOUT_MS);
    const finish = (parsed: Parsed, closed: boolean) => {
      outcomes.push({ kind: 'answer', answer: { ...parsed.answer, closedByServer: closed } });
      data = data.subarray(parsed.consumed);
      pending = undefined;
      if (outcomes.length === requests.length) settle();
      else if (!pipelined) socket.write(serialize(requests[outcomes.length] as RawRequest), () => {});
    };
    const progress = () => {
      while (!settled && outcomes.length < requests.length) {
        if (pending) {
          // Waiting to see whether the server closes after this (last) answer.
          if (ended) finish(pending, true);
          return;
        }
        const request = requests[outcomes.length] as RawRequest;
        let parsed: Parsed | undefined;
        try {
          parsed = parseAnswer(data, request.method, ended);
        } catch (cause) {
          outcomes.push({
            kind: 'no-answer',
            detail: `unparsable answer: ${(cause as Error).message}`,
            received: data.toString('latin1').slice(0, 300),
          });
          settle();
          return;
        }
        if (!parsed) {
          if (ended) settle();
          return;
        }
        if (waitForClose && outcomes.length === requests.length - 1 && !ended) {
          pending = parsed;
          timer.refresh();
          return;
        }
        finish(parsed, ended);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      progress();
    });
    socket.on('error', (cause) => {
      error = cause;
    });
    socket.on('close', () => {
      ended = true;
      progress();
      settle();
    });
    // The server may answer (and close) before it read everything: a failed write is no concern here.
    if (pipelined) socket.write(Buffer.concat(requests.map(serialize)), () => {});
    else if (requests[0]) socket.write(serialize(requests[0]), () => {});
  });
}

async function exchange(port: number, request: RawRequest, options: { waitForClose?: boolean } = {}) {
  const [outcome] = await converse(port, [request], options);
  return outcome === undefined || outcome === 'closed-as-announced'
    ? ({ kind: 'no-answer', detail: 'closed', received: '' } as const)
    : outcome;
}

// ---------------------------------------------------------------------------------------------------------
// The oracle.

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  bodyLength: number;
  bodySha256: string;
  port: number;
  localAddress: string;
  hostname: string;
}

interface Registered {
  sessionId: string;
  ip: string;
  id: string;
}

const sessions = new Map<string, Registered>();

function describeContainer(echo: Echo): string {
  const known = [...sessions.values()].find((s) => s.ip === echo.localAddress);
  return known ? `the container of ${known.sessionId}` : `${echo.hostname}/${echo.localAddress}`;
}

function isSameContainer(echo: Echo, container: Registered): boolean {
  return echo.localAddress === container.ip && container.id.startsWith(echo.hostname);
}

const trimBlanks = (value: string) => value.replace(/^[ \t]+|[ \t]+$/g, '');

/** The first Host field as Node reads it (blanks around it dropped); Node ignores later ones. */
function hostOf(request: RawRequest): string | undefined {
  const value = request.headers.find(([name]) => name.toLowerCase() === 'host')?.[1];
  return value === undefined ? undefined : trimBlanks(value);
}

/** `{port}-{sessionId}.{DOMAIN}` per docs/contract.md "Host routing": any case, `:port` and one trailing dot ignored. */
function previewHostOf(
  host: string | undefined,
): { sessionId: string; port: number } | 'bad-port' | undefined {
  if (host === undefined || host.startsWith('[')) return undefined;
  let name = (host.split(':')[0] ?? '').toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!name.endsWith(`.${DOMAIN}`)) return undefined;
  const label = name.slice(0, -(DOMAIN.length + 1));
  const match = /^([1-9]\d{0,4})-([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)$/.exec(label);
  if (!match || label.length > 63) return undefined;
  const port = Number(match[1]);
  if (port < 1024 || port > 65535) return 'bad-port';
  return { sessionId: match[2] ?? '', port };
}

/** The path route a target names: prefix, raw first segment, its decoding (if it decodes), and the raw rest. */
function pathRouteOf(target: string) {
  for (const prefix of PREFIXES) {
    if (!target.startsWith(`${prefix}/`)) continue;
    const after = target.slice(prefix.length + 1);
    const end = after.search(/[/?]/);
    const raw = end === -1 ? after : after.slice(0, end);
    const rest = end === -1 ? '' : after.slice(end);
    let sessionId: string | undefined;
    try {
      sessionId = decodeURIComponent(raw);
    } catch {
      sessionId = undefined;
    }
    return { prefix, raw, rest, sessionId };
  }
  return undefined;
}

/** docs/contract.md "Errors": a `%` not followed by two hex digits in the path (the query is the app's business). */
function hasMalformedPath(target: string): boolean {
  return /%(?![0-9A-Fa-f]{2})/.test(target.split('?')[0] ?? '');
}

function connectionTokens(request: RawRequest): string[] {
  return request.headers
    .filter(([name]) => name.toLowerCase() === 'connection')
    .flatMap(([, value]) => value.split(','))
    .map((token) => token.trim().toLowerCase());
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

type Expected = { kind: 'echo' } | { kind: 'redirect' } | { kind: 'error'; code: PreviewErrorCode };

/**
 * The outcome the README fixes for a request to the proxy routes, in the order the manager decides:
 * upgrade, host route, path route (bad path, bad id, slash redirect, registration), else no route.
 * `undefined` where it is not pinned down here (the API, CONNECT, missing Host with an upgrade).
 */
function expectedAnswer(request: RawRequest): Expected | undefined {
  if (request.method === 'CONNECT' || request.rawHead !== undefined) return undefined;
  // Origin-form and absolute-form reach the router; any other target is the parser's to refuse.
  if (!request.target.startsWith('/') && !/^https?:\/\/[^/]/i.test(request.target)) return undefined;
  const host = hostOf(request);
  const upgrade =
    request.headers.some(([name]) => name.toLowerCase() === 'upgrade') &&
    connectionTokens(request).includes('upgrade');
  if (host === undefined && request.version === 'HTTP/1.1')
    return upgrade ? undefined : { kind: 'error', code: 'MALFORMED_REQUEST' };
  // Several Host fields are refused (RFC 9112 3.2): a proxy in front could read another one.
  if (request.headers.filter(([name]) => name.toLowerCase() === 'host').length > 1)
    return { kind: 'error', code: 'MALFORMED_REQUEST' };
  if (upgrade) return { kind: 'error', code: 'UPGRADE_NOT_SUPPORTED' };
  const byHost = previewHostOf(host);
  if (byHost === 'bad-port') return { kind: 'error', code: 'INVALID_PORT' };
  if (byHost !== undefined) {
    if (!request.target.startsWith('/') || hasMalformedPath(request.target))
      return { kind: 'error', code: 'MALFORMED_PATH' };
    const registered = sessions.has(byHost.sessionId) && byHost.port === CONTAINER_PORT;
    return registered ? { kind: 'echo' } : { kind: 'error', code: 'PREVIEW_NOT_REGISTERED' };
  }
  const route = pathRouteOf(request.target);
  if (!route) {
    if (/^\/api\/internal(\/|$)/i.test(request.target)) return undefined;
    // A request target never holds a fragment: refused before any routing.
    return request.target.includes('#')
      ? { kind: 'error', code: 'MALFORMED_PATH' }
      : { kind: 'error', code: 'ROUTE_NOT_FOUND' };
  }
  if (route.sessionId === undefined || hasMalformedPath(request.target))
    return { kind: 'error', code: 'MALFORMED_PATH' };
  if (!SESSION_ID.test(route.sessionId)) return { kind: 'error', code: 'INVALID_SESSION_ID' };
  if ((request.method === 'GET' || request.method === 'HEAD') && !route.rest.startsWith('/'))
    return { kind: 'redirect' };
  return sessions.has(route.sessionId) ? { kind: 'echo' } : { kind: 'error', code: 'PREVIEW_NOT_REGISTERED' };
}

const ALLOWED_FORWARDED = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
];
const NEVER_FORWARDED = [
  'x-internal-service-key',
  'proxy-authorization',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'forwarded',
  'x-trailer',
];

/** Header fields the generators send only to see them arrive unchanged (unless Connection names them). */
const isPassThroughName = (name: string) => /^x-p\d$/.test(name) || name.startsWith('z');

/** What is wrong with an echo of this request, if anything. */
function echoProblem(request: RawRequest, echo: Echo): string | undefined {
  const host = hostOf(request);
  const byHost = previewHostOf(host);
  let expectedUrl: string;
  let expectedPrefix: string | undefined;
  let expectedPort = CONTAINER_PORT;
  let container: Registered | undefined;
  if (byHost !== undefined) {
    // Host routes come first (README): the path is not looked at, the whole target is forwarded.
    if (byHost === 'bad-port') return 'proxied although the Host names a port outside 1024-65535';
    if (!request.target.startsWith('/')) return 'proxied a target that is not origin-form on a host route';
    container = sessions.get(byHost.sessionId);
    if (!container) return `proxied for ${byHost.sessionId}, which has no registration`;
    expectedUrl = request.target;
    expectedPrefix = undefined;
    expectedPort = byHost.port;
  } else {
    const route = pathRouteOf(request.target);
    if (!route) return 'proxied a request that is under no preview route';
    container = route.sessionId === undefined ? undefined : sessions.get(route.sessionId);
    if (!container)
      return `proxied for the segment ${JSON.stringify(route.raw)}, which names no registered session`;
    expectedUrl = route.rest.startsWith('/') ? route.rest : `/${route.rest}`;
    expectedPrefix = `${route.prefix}/${route.raw}`;
  }
  if (!isSameContainer(echo, container))
    return `answered by ${describeContainer(echo)}, but the request names ${container.sessionId}`;
  if (echo.port !== expectedPort) return `reached port ${echo.port}, expected ${expectedPort}`;
  if (echo.url !== expectedUrl)
    return `the container saw ${JSON.stringify(echo.url)}, expected ${JSON.stringify(expectedUrl)}`;
  if (echo.method !== request.method) return `the container saw method ${echo.method}`;
  if (echo.headers['x-forwarded-prefix'] !== expectedPrefix)
    return `X-Forwarded-Prefix ${JSON.stringify(echo.headers['x-forwarded-prefix'])}, expected ${JSON.stringify(expectedPrefix)}`;

  // The header contract: nothing a client forges about the hop survives, nothing hop-by-hop leaks.
  const headers = echo.headers;
  for (const name of NEVER_FORWARDED)
    if (headers[name] !== undefined) return `the container received ${name}`;
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-forwarded-') && !ALLOWED_FORWARDED.includes(name))
      return `the container received ${name}`;
  }
  if (headers['x-forwarded-for'] !== '127.0.0.1')
    return `X-Forwarded-For ${JSON.stringify(headers['x-forwarded-for'])} from an untrusted client`;
  if (headers['x-forwarded-proto'] !== 'http') return `X-Forwarded-Proto ${headers['x-forwarded-proto']}`;
  if (headers['x-forwarded-host'] !== (host === '' ? undefined : host))
    return `X-Forwarded-Host ${JSON.stringify(headers['x-forwarded-host'])}, the client's Host is ${JSON.stringify(host)}`;
  // With no Host at all (HTTP/1.0) the container gets its own address: HTTP/1.1 upstream needs one. A host
  // route presents its requests (none of them carries an Origin) to the app as addressed to localhost.
  const expectedHost =
    byHost !== undefined ? `localhost:${expectedPort}` : (host ?? `${container.ip}:${expectedPort}`);
  if (headers.host !== expectedHost)
    return `Host ${JSON.stringify(headers.host)} instead of ${JSON.stringify(expectedHost)}`;
  const named = connectionTokens(request);
  for (const [rawName, value] of request.headers) {
    const name = rawName.toLowerCase();
    if (!isPassThroughName(name)) continue;
    const arrived = headers[name];
    if (named.includes(name)) {
      if (arrived !== undefined) return `${name} was named by Connection but reached the container`;
    } else if (arrived !== trimBlanks(value)) {
      return `${name} arrived as ${JSON.stringify(arrived)}, sent ${JSON.stringify(value)}`;
    }
  }
  if (echo.bodyLength !== request.body.length || echo.bodySha256 !== sha256(request.body))
    return `the container received a ${echo.bodyLength}-byte body, ${request.body.length} were sent`;
  return undefined;
}

function statusOf(code: PreviewErrorCode): number {
  return new PreviewError(code, '').status;
}

const ERROR_STATUSES = new Set(PREVIEW_ERROR_CODES.map(statusOf));

/** What is wrong with an answer that should be a contract error, if anything. */
function contractProblem(request: RawRequest, answer: Answer): string | undefined {
  const type = headerOf(answer.headers, 'content-type') ?? '';
  if (!type.startsWith('application/json'))
    return `status ${answer.status} with content-type ${JSON.stringify(type)}`;
  if (request.method === 'HEAD') {
    return ERROR_STATUSES.has(answer.status) ? undefined : `status ${answer.status} is no contract status`;
  }
  let body: unknown;
  try {
    body = JSON.parse(answer.body.toString('utf8'));
  } catch {
    return `status ${answer.status} with a body that is not JSON`;
  }
  const parsed = errorBodySchema.safeParse(body);
  if (!parsed.success) return `status ${answer.status} with a body outside the contract: ${answer.body}`;
  const { code, statusCode, error, message } = parsed.data;
  if (statusCode !== answer.status || statusOf(code) !== answer.status)
    return `${code} answered with status ${answer.status} (body ${statusCode}, table ${statusOf(code)})`;
  const expected = toErrorResponse(new PreviewError(code, message)).body;
  if (error !== expected.error) return `${code} with error ${JSON.stringify(error)}`;
  // Anything unexpected is a bug the fuzzing found, even when it leaves in the contract's shape.
  if (code === 'INTERNAL') return `500 INTERNAL: ${message}`;
  return undefined;
}

/** What is wrong with a 3xx, if anything: only the path routes' bare-id redirect exists. */
function redirectProblem(request: RawRequest, answer: Answer): string | undefined {
  if (answer.status !== 308) return `status ${answer.status}`;
  if (request.method !== 'GET' && request.method !== 'HEAD') return `a redirect for ${request.method}`;
  if (previewHostOf(hostOf(request)) !== undefined) return 'a redirect on a host route';
  const route = pathRouteOf(request.target);
  if (!route || route.rest.startsWith('/')) return 'a redirect where no bare session id was requested';
  const expected = `${route.prefix}/${route.raw}/${route.rest}`;
  const location = headerOf(answer.headers, 'location');
  if (location !== expected)
    return `redirected to ${JSON.stringify(location)}, expected ${JSON.stringify(expected)}`;
  return undefined;
}

/** A proxied answer to HEAD has no body to tell the container by: only check that proxying was due. */
function headEchoProblem(request: RawRequest): string | undefined {
  const byHost = previewHostOf(hostOf(request));
  if (byHost === 'bad-port') return 'proxied although the Host names a bad port';
  if (byHost !== undefined)
    return sessions.has(byHost.sessionId) ? undefined : 'proxied a HEAD for an unregistered host';
  const route = pathRouteOf(request.target);
  return route?.sessionId !== undefined && sessions.has(route.sessionId)
    ? undefined
    : 'proxied a HEAD that names no registered session';
}

type Kind = 'echo' | 'error' | 'redirect' | 'api';
type Verdict = { kind: Kind; code?: string } | string;
const tally = new Map<string, number>();

function classify(
  request: RawRequest,
  outcome: Outcome,
  api: ((answer: Answer) => string | undefined) | undefined,
): Verdict {
  if (outcome.kind === 'no-answer')
    return `no answer (${outcome.detail}); received ${JSON.stringify(outcome.received)}`;
  const { answer } = outcome;
  if (headerOf(answer.headers, 'x-fixture') === 'echo') {
    if (request.method === 'HEAD') return headEchoProblem(request) ?? { kind: 'echo' };
    let echo: Echo;
    try {
      echo = JSON.parse(answer.body.toString('utf8')) as Echo;
    } catch {
      return `an echo whose body is not JSON: ${JSON.stringify(answer.body.toString('latin1').slice(0, 60))}`;
    }
    return echoProblem(request, echo) ?? { kind: 'echo' };
  }
  if (answer.status >= 300 && answer.status < 400)
    return redirectProblem(request, answer) ?? { kind: 'redirect' };
  if (answer.status < 400 && api) return api(answer) ?? { kind: 'api' };
  const problem = contractProblem(request, answer);
  if (problem !== undefined) return problem;
  const code =
    request.method === 'HEAD'
      ? `HEAD ${answer.status}`
      : (JSON.parse(answer.body.toString('utf8')) as { code: string }).code;
  return { kind: 'error', code };
}

/**
 * Classifies an outcome (a string is the problem found) and, where the README fixes the outcome, checks
 * it is that one. `api` judges the successful answers of the internal API.
 */
function judge(request: RawRequest, outcome: Outcome, api?: (answer: Answer) => string | undefined): Verdict {
  const verdict = classify(request, outcome, api);
  if (typeof verdict === 'string') return verdict;
  const key = verdict.code === undefined ? verdict.kind : `${verdict.kind} ${verdict.code}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  const expected = api ? undefined : expectedAnswer(request);
  if (expected === undefined) return verdict;
  const want =
    expected.kind !== 'error'
      ? { kind: expected.kind }
      : {
          kind: 'error',
          code: request.method === 'HEAD' ? `HEAD ${statusOf(expected.code)}` : expected.code,
        };
  const got =
    verdict.code === undefined ? { kind: verdict.kind } : { kind: verdict.kind, code: verdict.code };
  return JSON.stringify(got) === JSON.stringify(want)
    ? verdict
    : `answered ${JSON.stringify(got)}, but the README says ${JSON.stringify(want)}`;
}

function show(request: RawRequest): string {
  return JSON.stringify(serialize(request).toString('latin1').slice(0, 600));
}

/** Counterexamples print as the bytes sent (cut short), not as a dump of every body byte. */
function printable(request: RawRequest): RawRequest {
  return Object.defineProperty(request, fc.toStringMethod, { value: () => show(request), enumerable: false });
}

// ---------------------------------------------------------------------------------------------------------
// Set-up: one manager, two containers registered to their sessions.

let manager: RunningContainerManager;
let managerPort: number;
let a: SessionContainer;
let b: SessionContainer;
const logLines: string[] = [];
const unhandled: unknown[] = [];
const recordUnhandled = (error: unknown) => unhandled.push(error);

async function registerBoth(): Promise<void> {
  for (const container of [a, b]) {
    const reply = await register(manager.url, container.sessionId, { port: CONTAINER_PORT });
    expect(reply.status).toBe(201);
  }
}

beforeAll(async () => {
  process.on('unhandledRejection', recordUnhandled);
  process.on('uncaughtException', recordUnhandled);
  // The manager's own lines at warn and above, kept to check that nothing unexpected was logged.
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const line = chunk.toString('utf8');
      logLines.push(line);
      process.stdout.write(line);
      done();
    },
  });
  [manager, a, b] = await Promise.all([
    startManager(
      { PREVIEW_DOMAIN: DOMAIN, LOG_LEVEL: 'warn' },
      { logger: createServiceLogger({ name: 'container-manager', level: 'warn', destination }) },
    ),
    startSessionContainer(),
    startSessionContainer(),
  ]);
  managerPort = Number(new URL(manager.url).port);
  for (const container of [a, b]) {
    if (container.ip === undefined) throw new Error(`container of ${container.sessionId} has no IP`);
    sessions.set(container.sessionId, { sessionId: container.sessionId, ip: container.ip, id: container.id });
  }
  await registerBoth();
});

afterAll(async () => {
  process.off('unhandledRejection', recordUnhandled);
  process.off('uncaughtException', recordUnhandled);
  await manager?.close();
  await removeCreatedContainers();
  console.log('answers by kind:', Object.fromEntries([...tally].sort()));
});

// ---------------------------------------------------------------------------------------------------------
// Generators. They need the two session ids, so they are built inside the tests.

const STANDARD_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

/** Some characters of an id percent-encoded (either hex case); it decodes back to the id. */
function encodedVariant(id: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: id.length, maxLength: id.length }).chain((mask) =>
    fc.boolean().map((upper) =>
      [...id]
        .map((char, i) => {
          if (!mask[i]) return char;
          const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
          return `%${upper ? hex.toUpperCase() : hex}`;
        })
        .join(''),
    ),
  );
}

/** A raw session segment: registered (plain or encoded), another valid id, or one that must be refused. */
function sessionSegment(): fc.Arbitrary<string> {
  const ids = [a.sessionId, b.sessionId];
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...ids) },
    { weight: 2, arbitrary: fc.constantFrom(...ids).chain(encodedVariant) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        a.sessionId.toUpperCase(),
        `${a.sessionId}x`,
        `${b.sessionId}.`,
        'nobody-1',
        'x'.repeat(128),
        `${a.sessionId}_`,
      ),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '..',
        '.',
        '%2e%2e',
        '%2E%2E',
        '.%2e',
        `${a.sessionId}%2f..`,
        `%2f${a.sessionId}`,
        `..%2f${b.sessionId}`,
        `${a.sessionId}%2F${b.sessionId}`,
        '%00',
        `${a.sessionId}%00`,
        `${b.sessionId}%0a`,
        '%C3%A9',
        `${a.sessionId}%C3%A9`,
        `${a.sessionId}%E2%80%AE`,
        '%F0%9F%98%80',
        '%C3',
        'x'.repeat(129),
        `${a.sessionId}${'a'.repeat(129 - a.sessionId.length)}`,
        'y'.repeat(300),
        '',
        '-x',
        `_${b.sessionId}`,
        '%',
        `${a.sessionId}%`,
        '%zz',
        `${a.sessionId}%2`,
        `${a.sessionId}\\..`,
        '*',
        `${a.sessionId};${b.sessionId}`,
        `${a.sessionId}#x`,
      ),
    },
  );
}

const REST_PIECES = [
  '..',
  '.',
  '%2e%2e',
  '%2f',
  '%2F',
  '//',
  '%00',
  '%C3%A9',
  '%E2%80%AE',
  'a',
  'b1',
  '~',
  '*',
  ';p=1',
  '+',
  '%20',
  '%',
  '%zz',
  '#frag',
  "!$&'()*,=:@",
  'index.html',
] as const;

/** What follows the session segment: traversal, encoded separators, other ids, queries. */
function restOfPath(): fc.Arbitrary<string> {
  const piece = fc.oneof(
    fc.constantFrom(...REST_PIECES),
    fc.constantFrom(
      a.sessionId,
      b.sessionId,
      `previews/${b.sessionId}`,
      `internal-previews/proxy/${a.sessionId}`,
    ),
    fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/),
  );
  const path = fc.array(piece, { maxLength: 6 }).map((pieces) => `/${pieces.join('/')}`);
  const query = fc
    .array(fc.oneof(fc.constantFrom('a=1', 'b=%26', `x=${b.sessionId}`, '%zz', '', '?', '/..'), piece), {
      maxLength: 3,
    })
    .map((items) => `?${items.join('&')}`);
  return fc
    .tuple(fc.oneof(fc.constant(''), fc.constant('/'), path), fc.option(query, { nil: undefined }))
    .map(([p, q]) => `${p}${q ?? ''}`)
    .filter((rest) => !rest.startsWith('/__fixture/'));
}

function pathTarget(): fc.Arbitrary<string> {
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.constantFrom(...PREFIXES), sessionSegment(), restOfPath())
        .map(([p, s, r]) => `${p}/${s}${r}`),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        `/Previews/${a.sessionId}/`,
        `//previews/${a.sessionId}/`,
        `/previews/../previews/${b.sessionId}/`,
        `/internal-previews/proxy/../../previews/${b.sessionId}/`,
        `/previews%2f${a.sessionId}/`,
        '/previews',
        '/previews/',
        '/',
        `/internal-previews/${a.sessionId}/`,
      ),
    },
  );
}

/** Host values, plain and tricky; the preview hosts send the request down the host route. */
function hostValue(): fc.Arbitrary<string> {
  const [idA, idB] = [a.sessionId, b.sessionId];
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(`127.0.0.1:${managerPort}`) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'localhost',
        '',
        'evil.test',
        '127.0.0.1:2375',
        `${b.ip}:${CONTAINER_PORT}`,
        '[::1]:3000',
        DOMAIN,
        `www.${DOMAIN}`,
      ),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        `3000-${idA}.${DOMAIN}`,
        `3000-${idB}.${DOMAIN}:80`,
        `3000-${idA.toUpperCase()}.${DOMAIN.toUpperCase()}.`,
        `03000-${idB}.${DOMAIN}`,
        `80-${idA}.${DOMAIN}`,
        `99999-${idA}.${DOMAIN}`,
        `3001-${idA}.${DOMAIN}`,
        `3000-${idA}.${DOMAIN}.evil.test`,
        `x.3000-${idA}.${DOMAIN}`,
        `3000-nobody.${DOMAIN}`,
        `3000-${idA}.${DOMAIN}@evil.test`,
      ),
    },
  );
}

// Latin1 text Node accepts in a header value (no CTLs but HTAB, no DEL), blanks around it included.
const headerText = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0x21, max: 0x7e }),
      fc.integer({ min: 0x80, max: 0xff }),
      fc.constantFrom(0x20, 0x09),
    ),
    { maxLength: 24 },
  )
  .map((codes) => String.fromCharCode(...codes));

// Any RFC 9110 token, behind a `Z` so that it is no field with a meaning of its own.
const tokenName = fc.stringMatching(/^Z[!#$%&'*+.^_`|~0-9A-Za-z-]{0,12}$/);

const CUSTOM_NAMES = ['X-P0', 'x-p1', 'X-p2', 'X-P3'] as const;

/** Header fields besides Host and framing: forgeries, hop-by-hop fields, fields that must pass untouched. */
function extraHeaders(): fc.Arbitrary<Array<[string, string]>> {
  const tricks = fc.subarray(
    [
      ['X-Forwarded-For', '6.6.6.6'],
      ['X-Forwarded-Host', 'evil.test'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Port', '443'],
      ['X-Forwarded-Prefix', '/evil'],
      ['X-Forwarded-Server', 'evil'],
      ['x-forwarded-ssl', 'on'],
      ['Forwarded', 'for=6.6.6.6;host=evil.test;proto=https'],
      ['X-Internal-Service-Key', TEST_KEY],
      ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
      ['TE', 'trailers'],
      ['Trailer', 'X-Trailer'],
      ['Keep-Alive', 'timeout=5'],
      ['Proxy-Connection', 'keep-alive'],
      ['Expect', '100-continue'],
      ['Upgrade', 'h2c'],
      ['Cookie', 'a=b; c=d'],
      ['Accept-Encoding', 'gzip'],
      ['X-Real-IP', '6.6.6.6'],
      ['X-Request-Id', 'req-1'],
    ] as Array<[string, string]>,
    { maxLength: 6 },
  );
  const connection = fc.option(
    fc.constantFrom(
      'close',
      'keep-alive',
      'X-P0',
      'x-p1, close',
      'Upgrade',
      ' X-P2 , keep-alive',
      'x-p3,upgrade',
    ),
    { nil: undefined },
  );
  const custom = fc
    .subarray([...CUSTOM_NAMES])
    .chain((names) =>
      fc.tuple(...names.map((name) => headerText.map((value): [string, string] => [name, value]))),
    );
  const tokens = fc.uniqueArray(
    fc.tuple(tokenName, headerText).map(([name, value]): [string, string] => [name, value]),
    { maxLength: 3, selector: ([name]) => name.toLowerCase() },
  );
  return fc.tuple(tricks, connection, custom, tokens).chain(([t, c, x, z]) => {
    const all: Array<[string, string]> = [...t, ...x, ...z];
    if (c !== undefined) all.push(['Connection', c]);
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
  });
}

const bodyArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.integer({ min: 1024, max: 64 * 1024 }).map((n) => Buffer.alloc(n, n % 251)) },
);

function framedBody(): fc.Arbitrary<Pick<RawRequest, 'body' | 'framing' | 'chunkExtras'>> {
  return bodyArb.chain((body) =>
    fc.record({
      body: fc.constant(body),
      framing: fc.constantFrom<RawRequest['framing']>(
        ...(body.length === 0 ? (['none', 'length', 'chunked'] as const) : (['length', 'chunked'] as const)),
      ),
      chunkExtras: fc.boolean(),
    }),
  );
}

function request(
  target: fc.Arbitrary<string>,
  host: fc.Arbitrary<string>,
  {
    method = fc.constantFrom<string>(...STANDARD_METHODS),
    plain = false,
  }: { method?: fc.Arbitrary<string>; plain?: boolean } = {},
): fc.Arbitrary<RawRequest> {
  // `plain`: nothing that ends the connection (Connection: close, an upgrade), for keep-alive runs.
  const extra = plain
    ? extraHeaders().map((headers) =>
        headers.filter(([name]) => !['connection', 'upgrade'].includes(name.toLowerCase())),
      )
    : extraHeaders();
  return fc
    .record({
      method,
      target,
      host,
      hostName: fc.constantFrom('Host', 'host', 'HOST'),
      extra,
      framed: framedBody(),
    })
    .map(({ method: m, target: t, host: h, hostName, extra: x, framed }) =>
      printable({
        method: m,
        target: t,
        version: 'HTTP/1.1',
        headers: [[hostName, h] as [string, string], ...x],
        ...framed,
      }),
    );
}

type Judged = { request: RawRequest; verdict: Verdict };

/** Sends a batch at once (concurrency is where answers could get crossed) and judges every answer. */
async function sendAll(
  batch: RawRequest[],
  api?: (request: RawRequest, answer: Answer) => string | undefined,
): Promise<Judged[]> {
  const outcomes = await Promise.all(batch.map((r) => exchange(managerPort, r)));
  return batch.map((r, i) => ({
    request: r,
    verdict: judge(r, outcomes[i] as Outcome, api ? (answer) => api(r, answer) : undefined),
  }));
}

function expectNoProblems(results: Judged[]): void {
  const problems = results
    .filter(({ verdict }) => typeof verdict === 'string')
    .map(({ request: r, verdict }) => `${verdict}\n    request: ${show(r)}`);
  expect(problems, problems.join('\n')).toEqual([]);
}

const echoes = () => tally.get('echo') ?? 0;

// Sized for about 15 s in all on two cores; a property past its time limit stops generating
// (and passes on what it checked) rather than running into the test timeout.
const runs = (numRuns: number) => ({ numRuns, interruptAfterTimeLimit: 40_000 });

// ---------------------------------------------------------------------------------------------------------

describe('container-manager under generated requests', () => {
  it('path routes (public and internal): the named session answers with the raw rest, or the contract error', async () => {
    const before = echoes();
    await fc.assert(
      fc.asyncProperty(
        fc.array(request(pathTarget(), hostValue()), { minLength: 1, maxLength: 6 }),
        async (batch) => expectNoProblems(await sendAll(batch)),
      ),
      runs(600),
    );
    // Not vacuous: many of those requests were proxied and checked against their container.
    expect(echoes() - before).toBeGreaterThan(100);
  }, 120_000);

  it('host routes: the session of the Host answers with the whole target; the path is not looked at', async () => {
    const before = echoes();
    const previewHosts = fc.oneof(
      fc
        .constantFrom(a.sessionId, b.sessionId)
        .chain((id) =>
          fc
            .tuple(
              fc.mixedCase(fc.constant(`3000-${id}.${DOMAIN}`)),
              fc.constantFrom('', '.', ':80', ':3000', '.:1'),
            )
            .map(([name, suffix]) => `${name}${suffix}`),
        ),
      hostValue(),
    );
    const target = fc.oneof(
      pathTarget(),
      restOfPath().map((rest) => (rest.startsWith('/') ? rest : `/${rest}`)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(request(target, previewHosts), { minLength: 1, maxLength: 6 }),
        async (batch) => expectNoProblems(await sendAll(batch)),
      ),
      runs(600),
    );
    expect(echoes() - before).toBeGreaterThan(100);
  }, 120_000);

  // One request after the other, then all written at once: a proxy that tied a client connection to the
  // first session it served, or mixed up the order of answers, would show here. `Expect` has a property
  // of its own below.
  for (const pipelined of [false, true]) {
    it(`${pipelined ? 'pipelined' : 'keep-alive'} requests on one connection: each answered in turn, by its own session`, async () => {
      const before = echoes();
      const plain = request(pathTarget(), hostValue(), { plain: true }).map((r) =>
        printable({ ...r, headers: r.headers.filter(([name]) => name.toLowerCase() !== 'expect') }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(plain, { minLength: 2, maxLength: 6 }), async (conversation) => {
          const outcomes = await converse(managerPort, conversation, { pipelined });
          const judged = conversation.flatMap((r, i): Judged[] => {
            const outcome = outcomes[i];
            return outcome === undefined || outcome === 'closed-as-announced'
              ? []
              : [{ request: r, verdict: judge(r, outcome) }];
          });
          expectNoProblems(judged);
        }),
        runs(200),
      );
      expect(echoes() - before).toBeGreaterThan(100);
    }, 120_000);
  }

  // RFC 9110 15.2: interim answers come before the final one. A request that waits its turn behind another
  // (pipelined) must not get its 100 Continue after its own final head, inside the body.
  it('pipelined Expect: 100-continue behind another request: every answer framed and whole', async () => {
    const first = request(pathTarget(), hostValue(), { plain: true });
    const second = request(pathTarget(), hostValue(), { plain: true }).map((r) =>
      printable({
        ...r,
        method: r.method === 'HEAD' || r.method === 'GET' ? 'PUT' : r.method,
        headers: [
          ...r.headers.filter(([name]) => name.toLowerCase() !== 'expect'),
          ['Expect', '100-continue'],
        ],
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.tuple(first, second), async (conversation) => {
        const outcomes = await converse(managerPort, conversation, { pipelined: true });
        expectNoProblems(
          conversation.flatMap((r, i): Judged[] => {
            const outcome = outcomes[i];
            return outcome === undefined || outcome === 'closed-as-announced'
              ? []
              : [{ request: r, verdict: judge(r, outcome) }];
          }),
        );
      }),
      runs(80),
    );
  }, 120_000);

  it('internal API: answers only with the key, only for the session in its path; the proxy never leaks the key', async () => {
    const validKey = (r: RawRequest) => {
      const keys = r.headers.filter(([name]) => name.toLowerCase() === 'x-internal-service-key');
      return keys.length === 1 && trimBlanks(keys[0]?.[1] ?? '') === TEST_KEY;
    };
    const apiJudge = (r: RawRequest, answer: Answer): string | undefined => {
      if (!validKey(r)) return `status ${answer.status} without a valid key`;
      if (previewHostOf(hostOf(r)) !== undefined) return 'an API answer on a preview host';
      // Express answers OPTIONS itself with the methods of the route.
      if (r.method === 'OPTIONS' && answer.status === 200 && headerOf(answer.headers, 'allow') !== undefined)
        return undefined;
      if (r.method === 'HEAD') return answer.status === 200 ? undefined : `HEAD answered ${answer.status}`;
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
      } catch {
        return `status ${answer.status} with a body that is not JSON`;
      }
      const path = r.target.split('?')[0] ?? '';
      if ('openapi' in body)
        return /\/openapi\.json$/i.test(path) ? undefined : 'the OpenAPI document on another path';
      // The sessions listing (the sessions API) names no one session.
      if (/^\/api\/internal\/sessions\/?$/i.test(path) && Array.isArray(body.sessions)) return undefined;
      const raw = /^\/api\/internal\/sessions\/([^/?]*)/i.exec(path)?.[1];
      if (raw === undefined) return `a ${answer.status} outside the session routes`;
      let sessionId: string;
      try {
        sessionId = decodeURIComponent(raw);
      } catch {
        return 'a success for a segment that does not decode';
      }
      if (body.sessionId !== sessionId)
        return `answered for session ${JSON.stringify(body.sessionId)}, the path names ${JSON.stringify(sessionId)}`;
      return undefined;
    };
    const keyHeaders = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.constantFrom<Array<[string, string]>>(
          [['X-Internal-Service-Key', TEST_KEY]],
          [['x-internal-service-key', TEST_KEY]],
          [['X-INTERNAL-SERVICE-KEY', ` \t${TEST_KEY} `]],
        ),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom<Array<[string, string]>>(
          [],
          [['X-Internal-Service-Key', 'wrong']],
          [['X-Internal-Service-Key', '']],
          [['X-Internal-Service-Key', `${TEST_KEY}x`]],
          [['X-Internal-Service-Key', TEST_KEY.slice(0, -1)]],
          [['X-Internal-Service-Key', TEST_KEY.toUpperCase()]],
          [
            ['X-Internal-Service-Key', TEST_KEY],
            ['X-Internal-Service-Key', TEST_KEY],
          ],
          [
            ['X-Internal-Service-Key', 'wrong'],
            ['X-Internal-Service-Key', TEST_KEY],
          ],
          [['X-Internal-Service-Key-', TEST_KEY]],
        ),
      },
    );
    const portPart = fc.oneof(
      { weight: 4, arbitrary: fc.constant('') },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '/3000',
          '/4000',
          '/80',
          '/abc',
          '/03000',
          '/+3000',
          '/65536',
          '/%33000',
          '/3000/',
        ),
      },
    );
    const apiTarget = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .tuple(
            fc.constantFrom('/api/internal', '/API/Internal', '/api/internal/../internal'),
            sessionSegment(),
            fc.constantFrom('/previews', '/previews', '/previews/', '/PREVIEWS', '/previewsx'),
            portPart,
            fc.constantFrom('', '?x=1', `?sessionId=${b.sessionId}`),
          )
          .map(([base, id, previews, port, query]) => `${base}/sessions/${id}${previews}${port}${query}`),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '/api/internal',
          '/api/internal/',
          '/api/internal/openapi.json',
          '/api/internal/sessions',
          '/api/internalx',
          '/api/Internal/OpenAPI.json',
        ),
      },
    );
    const apiBody = fc.constantFrom(
      { type: 'application/json', body: `{"port":${CONTAINER_PORT}}` },
      { type: 'application/json', body: `{"port":${CONTAINER_PORT}}` },
      { type: 'application/json', body: '{"port":4000}' },
      { type: 'application/json', body: '{"port":"3000"}' },
      { type: 'application/json', body: '{"port":70000}' },
      { type: 'application/json', body: '{}' },
      { type: 'application/json', body: '[]' },
      { type: 'application/json', body: 'not json' },
      { type: 'text/plain', body: `{"port":${CONTAINER_PORT}}` },
      { type: 'application/merge-patch+json', body: `{"port":${CONTAINER_PORT}}` },
      { type: undefined, body: `{"port":${CONTAINER_PORT}}` },
      { type: 'application/json', body: '' },
      { type: 'application/json', body: `{"port":${CONTAINER_PORT},"x":"${'a'.repeat(17_000)}"}` },
    );
    const apiRequest = fc
      .record({
        method: fc.constantFrom(...STANDARD_METHODS),
        target: apiTarget,
        host: fc.oneof(
          { weight: 5, arbitrary: fc.constant(`127.0.0.1:${managerPort}`) },
          { weight: 1, arbitrary: hostValue() },
        ),
        keys: keyHeaders,
        body: apiBody,
        framing: fc.constantFrom<RawRequest['framing']>('length', 'chunked'),
      })
      .map(({ method, target, host, keys, body, framing }): RawRequest => {
        const headers: Array<[string, string]> = [['Host', host], ...keys];
        const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
        if (hasBody && body.type !== undefined) headers.push(['Content-Type', body.type]);
        return {
          method,
          target,
          version: 'HTTP/1.1',
          headers,
          body: hasBody ? Buffer.from(body.body) : Buffer.alloc(0),
          framing: hasBody ? framing : 'none',
        };
      });
    const before = tally.get('api') ?? 0;
    await fc.assert(
      fc.asyncProperty(fc.array(apiRequest, { minLength: 1, maxLength: 5 }), async (batch) => {
        const results = await sendAll(batch, apiJudge);
        // A successful change with the key may have moved or removed a registration: put both back.
        if (results.some(({ verdict }) => typeof verdict !== 'string' && verdict.kind === 'api'))
          await registerBoth();
        expectNoProblems(results);
        for (const { request: r, verdict } of results) {
          const path = (r.target.split('?')[0] ?? '').toLowerCase();
          const underApi = path === '/api/internal' || path.startsWith('/api/internal/');
          // Without the key everything under the API is the contract's 403 (unless a preview host took it).
          if (underApi && !validKey(r) && previewHostOf(hostOf(r)) === undefined)
            expect(verdict, show(r)).toEqual({
              kind: 'error',
              code: r.method === 'HEAD' ? 'HEAD 403' : 'FORBIDDEN',
            });
        }
      }),
      runs(400),
    );
    expect((tally.get('api') ?? 0) - before).toBeGreaterThan(20);
  }, 120_000);

  it('absolute-form and asterisk targets, unusual methods, HTTP/1.0: never proxied to an address the client chose', async () => {
    const [idA, idB] = [a.sessionId, b.sessionId];
    const target = fc.oneof(
      fc.constantFrom(
        'http://127.0.0.1:2375/containers/json',
        'http://127.0.0.1:2375/v1.43/containers/json?all=1',
        `http://${b.ip}:${CONTAINER_PORT}/`,
        `http://${a.ip}:${CONTAINER_PORT}/previews/${idB}/x`,
        `http://127.0.0.1:${managerPort}/previews/${idA}/x`,
        `http://3000-${idA}.${DOMAIN}/`,
        `https://evil.test/previews/${idB}/`,
        `http://localhost/internal-previews/proxy/${idA}/`,
        'HTTP://127.0.0.1:2375/containers/json',
        `http:/previews/${idA}/`,
        '*',
        `${idA}/x`,
        `previews/${idA}/`,
      ),
      pathTarget(),
    );
    const method = fc.constantFrom(
      'GET',
      'OPTIONS',
      'TRACE',
      'PROPFIND',
      'M-SEARCH',
      'PURGE',
      'MKCOL',
      'REPORT',
      'SEARCH',
      'LOCK',
      'UNLOCK',
      'LINK',
      'UNLINK',
      'QUERY',
      'ACL',
      'BIND',
      'SUBSCRIBE',
    );
    const odd = fc
      .tuple(request(target, hostValue(), { method }), fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'))
      .map(([r, version]): RawRequest => printable({ ...r, version }));
    await fc.assert(
      fc.asyncProperty(fc.array(odd, { minLength: 1, maxLength: 5 }), async (batch) =>
        expectNoProblems(await sendAll(batch)),
      ),
      runs(300),
    );
  }, 120_000);

  it('Host anomalies (missing, empty, repeated, HTTP/1.0 without one): an answer, never the wrong container', async () => {
    const [idA, idB] = [a.sessionId, b.sessionId];
    const hosts = fc.constantFrom<Array<[string, string]>>(
      [],
      [['Host', '']],
      [['Host', ' ']],
      [
        ['Host', `3000-${idA}.${DOMAIN}`],
        ['Host', `3000-${idB}.${DOMAIN}`],
      ],
      [
        ['Host', `127.0.0.1:${managerPort}`],
        ['Host', `3000-${idB}.${DOMAIN}`],
      ],
      [
        ['Host', `3000-${idA}.${DOMAIN}`],
        ['host', 'localhost'],
      ],
    );
    const anomalous = fc
      .record({
        base: request(pathTarget(), fc.constant('unused')),
        hosts,
        version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0'),
      })
      .map(
        ({ base, hosts: h, version }): RawRequest =>
          printable({
            ...base,
            version,
            headers: [...h, ...base.headers.slice(1)],
          }),
      );
    await fc.assert(
      fc.asyncProperty(fc.array(anomalous, { minLength: 1, maxLength: 4 }), async (batch) =>
        expectNoProblems(await sendAll(batch)),
      ),
      runs(200),
    );
  }, 120_000);

  it('CONNECT (to Docker, to a container, to a preview path): a contract answer, never a tunnel or a silent close', async () => {
    const connect = fc
      .record({
        target: fc.constantFrom(
          '127.0.0.1:2375',
          `${a.ip}:${CONTAINER_PORT}`,
          `${b.ip}:${CONTAINER_PORT}`,
          `3000-${a.sessionId}.${DOMAIN}:443`,
          `/previews/${a.sessionId}/`,
          'localhost:22',
        ),
        host: hostValue(),
      })
      .map(
        ({ target, host }): RawRequest =>
          printable({
            method: 'CONNECT',
            target,
            version: 'HTTP/1.1',
            headers: [['Host', host]],
            body: Buffer.alloc(0),
            framing: 'none',
          }),
      );
    await fc.assert(
      fc.asyncProperty(connect, async (r) => expectNoProblems(await sendAll([r]))),
      runs(10),
    );
  }, 60_000);

  it('malformed requests: the contract 400 MALFORMED_REQUEST, then the connection is closed', async () => {
    const [idA, idB] = [a.sessionId, b.sessionId];
    const line = (target: string) => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    const malformedHead = fc.constantFrom(
      `get /previews/${idA}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      `FOO /previews/${idA}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GE T /previews/${idA}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /previews/${idA}/a b HTTP/1.1\r\nHost: x\r\n\r\n`,
      `${line(`/previews/${idA}/\xc3\xa9`)}\r\n`,
      `${line(`/previews/${idA}\xc3\xa9/`)}\r\n`,
      `${line(`/previews/${idA}/\x7f`)}\r\n`,
      `${line(`/previews/${idA}/\x01`)}\r\n`,
      `${line(`/previews/${idA}/`)}X-A: a\x00b\r\n\r\n`,
      `${line(`/previews/${idA}/`)}X-A: a\x7fb\r\n\r\n`,
      `${line(`/previews/${idA}/`)}X-A: a\rb\r\n\r\n`,
      `${line(`/previews/${idA}/`)}X-A: 1\r\n 2\r\n\r\n`,
      `${line(`/previews/${idA}/`)}X A: 1\r\n\r\n`,
      `${line(`/previews/${idA}/`)}X-A 1\r\n\r\n`,
      `${line(`/previews/${idA}/`)}: 1\r\n\r\n`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
      `POST /previews/${idA}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
      `GET /previews/${idB}/ HTTP/1.1\nHost: x\n\n`,
      `GET /previews/${idB}/ HTTP/1.1\r\nHost: x\r\r\n\r\n`,
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
      'GET http://127.0.0.1:2375/containers/json HTTP/1.1\r\nHost: 127.0.0.1:2375\r\nX-A: \x00\r\n\r\n',
    );
    const malformed = malformedHead.map(
      (rawHead): RawRequest =>
        printable({
          method: rawHead.split(' ')[0] ?? '',
          target: '',
          version: '',
          headers: [],
          body: Buffer.alloc(0),
          framing: 'none',
          rawHead,
        }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(malformed, { minLength: 1, maxLength: 4 }), async (batch) => {
        const outcomes = await Promise.all(
          batch.map((r) => exchange(managerPort, r, { waitForClose: true })),
        );
        for (const [i, outcome] of outcomes.entries()) {
          const r = batch[i] as RawRequest;
          expect(judge(r, outcome), show(r)).toEqual({ kind: 'error', code: 'MALFORMED_REQUEST' });
          expect(outcome.kind === 'answer' && outcome.answer.closedByServer, show(r)).toBe(true);
        }
      }),
      runs(100),
    );
  }, 120_000);

  it('oversized heads (bytes or field count): the contract 431 HEADERS_TOO_LARGE, then the connection is closed', async () => {
    const oversized = fc
      .record({
        shape: fc.constantFrom('one big field', 'many fields', 'long target'),
        size: fc.integer({ min: 17 * 1024, max: 40 * 1024 }),
        fields: fc.integer({ min: 101, max: 300 }),
        target: pathTarget(),
      })
      .map(({ shape, size, fields, target }): RawRequest => {
        const headers: Array<[string, string]> = [['Host', `127.0.0.1:${managerPort}`]];
        let t = target;
        if (shape === 'one big field') headers.push(['X-Big', 'a'.repeat(size)]);
        if (shape === 'many fields') for (let i = 0; i < fields; i++) headers.push([`X-F${i}`, String(i)]);
        if (shape === 'long target') t = `/previews/${a.sessionId}/${'a'.repeat(size)}`;
        return {
          method: 'GET',
          target: t,
          version: 'HTTP/1.1',
          headers,
          body: Buffer.alloc(0),
          framing: 'none',
        };
      });
    await fc.assert(
      fc.asyncProperty(oversized, async (r) => {
        const outcome = await exchange(managerPort, r, { waitForClose: true });
        expect(classify(r, outcome, undefined), show(r)).toEqual({
          kind: 'error',
          code: 'HEADERS_TOO_LARGE',
        });
        expect(outcome.kind === 'answer' && outcome.answer.closedByServer, show(r)).toBe(true);
      }),
      runs(30),
    );
  }, 60_000);

  it('afterwards the manager still serves both sessions, and nothing unexpected surfaced', async () => {
    await registerBoth();
    for (const container of [a, b]) {
      for (const prefix of PREFIXES) {
        const r: RawRequest = {
          method: 'GET',
          target: `${prefix}/${container.sessionId}/still/alive?x=1`,
          version: 'HTTP/1.1',
          headers: [['Host', `127.0.0.1:${managerPort}`]],
          body: Buffer.alloc(0),
          framing: 'none',
        };
        expect(judge(r, await exchange(managerPort, r))).toEqual({ kind: 'echo' });
      }
    }
    expect(unhandled).toEqual([]);
    // The manager logs an unexpected error at level error (50) or worse.
    const severe = logLines.filter((line) => {
      try {
        return ((JSON.parse(line) as { level?: number }).level ?? 0) >= 50;
      } catch {
        return false;
      }
    });
    expect(severe).toEqual([]);
  }, 60_000);
});
