import type { IncomingMessage, ServerResponse } from 'node:http';
import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { type PreviewTokens, TOKEN_REFUSAL_MESSAGES } from './tokens.js';

/** The header an API client presents a token in (or `Authorization: Bearer <token>`). */
export const TOKEN_HEADER = 'x-preview-token';
/** The query parameter of a shared link; a navigation with it is answered 303 with the cookie. */
export const TOKEN_QUERY_PARAMETER = 'preview_token';
/** The cookie a browser holds the token in, scoped to one preview. */
export const TOKEN_COOKIE = 'sandbox_preview_token';

/** Where a request came in: what the token cookie is scoped to. */
export interface PrivateRoute {
  /** `Path` of the cookie: `/previews/<id>/` on a path route, `/` on a host route (host-only there). */
  cookiePath: string;
  /** The request came over https (directly, or per X-Forwarded-Proto from a trusted proxy): `Secure`. */
  secure: boolean;
}

/** What to do with one request to a private port. */
export type PrivateAccessDecision =
  | { kind: 'allow' }
  | { kind: 'refuse'; error: PreviewError }
  /** A navigation with a valid `preview_token`: 303 to `location`, setting `cookie`. */
  | { kind: 'exchange'; location: string; cookie: string };

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The value of our cookie in a `Cookie` header, and the header without it (`undefined`: nothing left). */
function splitCookie(header: string | undefined): { token?: string; rest?: string } {
  if (header === undefined || !header.includes(TOKEN_COOKIE))
    return header === undefined ? {} : { rest: header };
  let token: string | undefined;
  const kept: string[] = [];
  for (const part of header.split(';')) {
    const pair = part.trim();
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq) === TOKEN_COOKIE) token ??= pair.slice(eq + 1);
    else if (pair !== '') kept.push(pair);
  }
  const result: { token?: string; rest?: string } = {};
  if (token !== undefined) result.token = token;
  if (kept.length > 0) result.rest = kept.join('; ');
  return result;
}

/** The bearer token of an `Authorization` header, when it has the shape of ours (else the app's own). */
function bearerToken(header: string | undefined, tokens: PreviewTokens): string | undefined {
  if (header === undefined || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ')
    return undefined;
  const value = header.slice(7).trim();
  return tokens.looksLikeToken(value) ? value : undefined;
}

/** The request target without the `preview_token` parameter, and its value; `undefined` when absent. */
function withoutQueryToken(url: string): { location: string; token: string } | undefined {
  const q = url.indexOf('?');
  if (q === -1 || !url.includes(TOKEN_QUERY_PARAMETER, q)) return undefined;
  let token: string | undefined;
  const kept: string[] = [];
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (name === TOKEN_QUERY_PARAMETER) token ??= eq === -1 ? '' : decodeURIComponentSafe(part.slice(eq + 1));
    else if (part !== '') kept.push(part);
  }
  if (token === undefined) return undefined;
  return { location: url.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : ''), token };
}

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** `Set-Cookie` for a token: HttpOnly, SameSite=Lax, scoped to the preview, expiring with the token. */
export function tokenCookie(token: string, expiresAt: number, route: PrivateRoute, now = Date.now()): string {
  const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000));
  return (
    `${TOKEN_COOKIE}=${token}; Path=${route.cookiePath}; Max-Age=${maxAge}; ` +
    `Expires=${new Date(expiresAt).toUTCString()}; HttpOnly; SameSite=Lax${route.secure ? '; Secure' : ''}`
  );
}

/**
 * Decides for one request to a private (sessionId, port), and removes our credentials from the request
 * it allows, so that none reaches the container: the token header, a bearer token of ours, our cookie.
 * An app's own `Authorization` (not shaped as our token) and its own cookies pass untouched.
 *
 * A token is looked for in this order: the `preview_token` query parameter of a GET or HEAD (a shared
 * link: answered 303 with the cookie, so the token leaves the address bar and the app never sees it), the
 * `X-Preview-Token` header, `Authorization: Bearer`, the cookie. The first one found decides.
 */
export function decidePrivateAccess(
  req: IncomingMessage & { originalUrl?: string },
  sessionId: string,
  port: number,
  tokensNotBefore: number,
  tokens: PreviewTokens | undefined,
  route: PrivateRoute,
  now = Date.now(),
): PrivateAccessDecision {
  const refuse = (reason: string): PrivateAccessDecision => ({
    kind: 'refuse',
    error: previewErrors.previewTokenInvalid(sessionId, port, reason),
  });
  const upgrade = req.headers.upgrade !== undefined;
  const url = req.originalUrl ?? req.url ?? '/';
  const fromQuery = withoutQueryToken(url);
  // Only a link's navigation is answered with the cookie; anything else carrying the parameter would take
  // it to the container, so it is refused instead.
  if (fromQuery !== undefined && (upgrade || (req.method !== 'GET' && req.method !== 'HEAD')))
    return refuse(
      `${TOKEN_QUERY_PARAMETER} is only taken by a GET or HEAD; send X-Preview-Token or the cookie`,
    );
  const headerToken = firstValue(req.headers[TOKEN_HEADER]);
  const cookies = splitCookie(req.headers.cookie);
  const bearer = tokens === undefined ? undefined : bearerToken(req.headers.authorization, tokens);
  const presented = fromQuery?.token ?? headerToken ?? bearer ?? cookies.token;
  if (presented === undefined)
    return { kind: 'refuse', error: previewErrors.previewTokenRequired(sessionId, port) };
  // A private port is only registered where tokens are configured; an edge without the secret cannot check.
  if (tokens === undefined) return refuse('this service has no PREVIEW_TOKEN_SECRET to check tokens with');
  const verdict = tokens.verify(presented, sessionId, port, tokensNotBefore, now);
  if (!verdict.ok) return refuse(TOKEN_REFUSAL_MESSAGES[verdict.refusal]);
  if (fromQuery !== undefined)
    return {
      kind: 'exchange',
      location: fromQuery.location,
      cookie: tokenCookie(presented, verdict.claims.expiresAt, route, now),
    };
  // Allowed: ours stay on this hop. X-Preview-Token is never forwarded (proxy-core drops it for every
  // port), so it is left in place: a delete would turn Node's header object into a slow dictionary.
  if (bearer !== undefined) delete req.headers.authorization;
  if (cookies.token !== undefined) {
    if (cookies.rest === undefined) delete req.headers.cookie;
    else req.headers.cookie = cookies.rest;
  }
  return { kind: 'allow' };
}

/** Whether a request came over https: a TLS socket, or `X-Forwarded-Proto: https` from a trusted proxy. */
export function cameOverHttps(
  req: IncomingMessage,
  trustsForwardedHeaders: (address: string | undefined) => boolean,
): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  if (!trustsForwardedHeaders(req.socket.remoteAddress)) return false;
  const proto = firstValue(req.headers['x-forwarded-proto']);
  return proto !== undefined && proto.split(',', 1)[0]?.trim().toLowerCase() === 'https';
}

/** What a route needs to admit requests to private ports. */
export interface PrivateAccessContext {
  tokens: PreviewTokens | undefined;
  trustsForwardedHeaders: (address: string | undefined) => boolean;
}

/** A route built without tokens: a private port refuses every request (none can be checked). */
export const NO_PRIVATE_ACCESS: PrivateAccessContext = {
  tokens: undefined,
  trustsForwardedHeaders: () => false,
};

/**
 * Admits one request to `target` (of `sessionId`): `true` when it may be forwarded (a public port, or a
 * valid token, our credentials then removed); otherwise it has been answered: the 303 of a link's token
 * exchange written on `res`, or the refusal passed to `fail`.
 */
export function admit(
  req: IncomingMessage & { originalUrl?: string },
  res: ServerResponse | undefined,
  target: { port: number; tokensNotBefore?: number },
  sessionId: string,
  cookiePath: string,
  context: PrivateAccessContext,
  fail: (error: unknown) => void,
): boolean {
  if (target.tokensNotBefore === undefined) return true;
  const route = { cookiePath, secure: cameOverHttps(req, context.trustsForwardedHeaders) };
  const decision = decidePrivateAccess(
    req,
    sessionId,
    target.port,
    target.tokensNotBefore,
    context.tokens,
    route,
  );
  if (decision.kind === 'allow') return true;
  if (decision.kind === 'refuse' || res === undefined) {
    fail(
      decision.kind === 'refuse'
        ? decision.error
        : previewErrors.previewTokenInvalid(sessionId, target.port, 'unexpected'),
    );
    return false;
  }
  res
    .writeHead(303, {
      location: decision.location,
      'set-cookie': decision.cookie,
      // The link's URL held the token: no cache keeps the answer, no page it leads to is told where it came from.
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'content-length': '0',
    })
    .end();
  return false;
}
