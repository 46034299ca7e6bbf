import type { IncomingHttpHeaders } from 'node:http';
import { splitPreviewPath } from './forward-path.js';

// The container believes it is served at `/`; the browser sees it under a route prefix (`/previews/abc`).
// These helpers keep the browser under that prefix through response headers. Bodies are never rewritten.

function withoutTrailingSlash(prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

// Segment-aware: `/previews/abc2` is not under `/previews/abc`.
function isUnderPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  const next = path.charAt(prefix.length);
  return next === '' || next === '/' || next === '?' || next === '#';
}

/**
 * Prefixes a root-relative `Location` (`/login` -> `/previews/abc/login`); absolute, protocol-relative,
 * relative and already-prefixed values are returned unchanged.
 */
export function rewriteLocation(location: string, prefix: string): string {
  const base = withoutTrailingSlash(prefix);
  if (base === '' || !location.startsWith('/')) return location;
  // Browsers read `//host` and `/\host` alike as another host (WHATWG URL treats `\` as `/` for http).
  const second = location.charAt(1);
  if (second === '/' || second === '\\') return location;
  // A prefix-aware app (it reads X-Forwarded-Prefix) already points at the right place.
  if (isUnderPrefix(location, base)) return location;
  return `${base}${location}`;
}

// A loop, not /[\s;]+$/: that regex is quadratic on a long run of spaces, and the container writes this.
function withoutTrailingSeparators(text: string): string {
  let end = text.length;
  while (end > 0 && /[\s;]/.test(text.charAt(end - 1))) end--;
  return text.slice(0, end);
}

function scopedPath(path: string, base: string): string {
  // RFC 6265 5.2.4: a value not starting with `/` is ignored in favour of the default-path, handled below.
  if (!path.startsWith('/')) return base;
  if (isUnderPrefix(path, base)) return path;
  // `Path=/` becomes `/previews/abc`, not `/previews/abc/`: RFC 6265 5.1.4 path-match already stops at a
  // segment boundary (`/previews/abc` matches `/previews/abc` and `/previews/abc/x`, never `/previews/abcd`),
  // and only the slash-less form also covers the bare `/previews/abc` URL.
  return path === '/' ? base : `${base}${path}`;
}

// Rewrites one `;`-separated attribute if it is a Path (RFC 6265 5.2: name before the first `=`, both parts
// trimmed, name case-insensitive), keeping the spacing around the value.
function scopeAttribute(attribute: string, base: string): string | undefined {
  const equalsAt = attribute.indexOf('=');
  const name = equalsAt === -1 ? attribute : attribute.slice(0, equalsAt);
  if (name.trim().toLowerCase() !== 'path') return undefined;
  // A valueless `Path` has an empty value, which RFC 6265 replaces with the default-path.
  if (equalsAt === -1) return `${name.trimEnd()}=${base}${name.slice(name.trimEnd().length)}`;
  const raw = attribute.slice(equalsAt + 1);
  const rest = raw.trimStart();
  const value = rest.trimEnd();
  const before = attribute.slice(0, equalsAt + 1) + raw.slice(0, raw.length - rest.length);
  return `${before}${scopedPath(value, base)}${rest.slice(value.length)}`;
}

/**
 * Scopes a Set-Cookie value to the route prefix: each `Path` attribute becomes `${prefix}${path}`, and one is
 * added when missing. Other attributes (Domain included), their order and spacing are kept.
 */
export function scopeSetCookiePath(setCookie: string, prefix: string): string {
  const base = withoutTrailingSlash(prefix);
  if (base === '' || setCookie.trim() === '') return setCookie;
  const [pair = '', ...attributes] = setCookie.split(';');
  let hasPath = false;
  // The first element is the cookie's own name=value (a cookie may be named `Path`); never touch it.
  const rewritten = attributes.map((attribute) => {
    const scoped = scopeAttribute(attribute, base);
    if (scoped === undefined) return attribute;
    hasPath = true;
    return scoped;
  });
  if (hasPath) return [pair, ...rewritten].join(';');
  // No Path means RFC 6265's default-path: the directory of the URL the browser requested. That is under the
  // prefix for `/previews/abc/...`, but for the bare `/previews/abc` (a POST, which the slash redirect does
  // not cover) it is `/previews`, which every session shares. An explicit Path closes that leak; it only
  // widens a directory-scoped cookie to the rest of its own session's URLs.
  return `${withoutTrailingSeparators(setCookie)}; Path=${base}`;
}

/** Rewrites, in place, an upstream response's `Location` and every `Set-Cookie` to stay under the prefix. */
export function rewriteResponseHeaders(headers: IncomingHttpHeaders, prefix: string): void {
  const { location } = headers;
  if (typeof location === 'string') headers.location = rewriteLocation(location, prefix);
  const cookies: string | string[] | undefined = headers['set-cookie'];
  if (Array.isArray(cookies)) headers['set-cookie'] = cookies.map((c) => scopeSetCookiePath(c, prefix));
  else if (typeof cookies === 'string') headers['set-cookie'] = [scopeSetCookiePath(cookies, prefix)];
}

/**
 * Where a GET/HEAD on exactly `{routePrefix}/{id}` (query allowed) is sent with a 308: the same URL with a
 * slash after the id, query kept; `undefined` when no redirect applies. `url` and `routePrefix` share a base
 * (Express: `req.originalUrl` with `${req.baseUrl}${prefix}`), so the result is what the browser requests.
 */
export function slashRedirectLocation(method: string, url: string, routePrefix: string): string | undefined {
  // Relative links of the app's pages resolve against the directory: from `/previews/abc` a `login` link
  // would leave the session (`/previews/login`); from `/previews/abc/` it stays in it. Other methods still
  // reach `/` directly: only page loads need the slash, and a redirect would make clients resend bodies.
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const match = splitPreviewPath(url, routePrefix);
  if (!match || match.rawSessionId === '') return undefined;
  const idEnd = routePrefix.length + 1 + match.rawSessionId.length;
  const rest = url.slice(idEnd);
  if (rest !== '' && !rest.startsWith('?')) return undefined;
  return `${url.slice(0, idEnd)}/${rest}`;
}
