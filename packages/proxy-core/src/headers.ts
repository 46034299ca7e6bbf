import type { IncomingHttpHeaders } from 'node:http';
import {
  FORWARDED_FIELD_NAMES,
  type ForwardedContext,
  forwardedFields,
  isForwardingField,
} from './forwarded-headers.js';

/** The internal credential header; it never reaches a container. */
export const INTERNAL_KEY_HEADER = 'x-internal-service-key';

// RFC 9110 7.6.1: connection-specific fields, plus the legacy ones proxies still see in the wild.
// `transfer-encoding` is absent on purpose: Node re-frames the body and needs it to know a body follows.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
];

/**
 * The cookie of container-manager's dashboard session. Cookies are not kept apart by port, so a browser
 * logged in to the dashboard sends it to the previews of the same host too: it is a credential of this
 * service, never the container's, and is taken out of every forwarded `Cookie`.
 */
export const DASHBOARD_COOKIE = 'sandbox_dashboard';

/** A `Cookie` value without the dashboard's cookie; `undefined` when nothing else was in it. */
export function withoutDashboardCookie(value: string): string | undefined {
  if (!value.includes(DASHBOARD_COOKIE)) return value;
  const kept: string[] = [];
  for (const part of value.split(';')) {
    const pair = part.trim();
    const eq = pair.indexOf('=');
    if (pair !== '' && (eq === -1 ? pair : pair.slice(0, eq).trim()) !== DASHBOARD_COOKIE) kept.push(pair);
  }
  return kept.length === 0 ? undefined : kept.join('; ');
}

/** The header a preview token may travel in: a credential of this hop, never the container's. */
export const PREVIEW_TOKEN_HEADER = 'x-preview-token';

// `expect` is answered by the Node server itself (it sends 100 Continue to the client), so it is spent on
// this hop; forwarding it would also make httpxy (the WebSocket path) skip its proxyReq event.
const REQUEST_ONLY = [INTERNAL_KEY_HEADER, PREVIEW_TOKEN_HEADER, 'expect'];

function connectionTokens(headers: IncomingHttpHeaders): string[] {
  const value = headers.connection;
  if (typeof value !== 'string' || value === '') return [];
  return value.split(',').map((token) => token.trim().toLowerCase());
}

/**
 * Removes, in place, the headers that must not travel to the container: hop-by-hop fields, every field the
 * `Connection` header names, `Expect`, the internal key, a preview token header and the dashboard's cookie.
 */
export function stripRequestHeaders(headers: IncomingHttpHeaders): void {
  for (const token of connectionTokens(headers)) {
    if (token !== '' && token !== 'transfer-encoding') delete headers[token];
  }
  for (const name of HOP_BY_HOP) delete headers[name];
  for (const name of REQUEST_ONLY) delete headers[name];
  if (headers.cookie !== undefined) {
    const cookie = withoutDashboardCookie(headers.cookie);
    if (cookie === undefined) delete headers.cookie;
    else headers.cookie = cookie;
  }
}

/** Removes, in place, the hop-by-hop fields of an upstream response and every field its `Connection` names. */
export function stripResponseHeaders(headers: IncomingHttpHeaders): void {
  for (const token of connectionTokens(headers)) {
    if (token !== '' && token !== 'transfer-encoding') delete headers[token];
  }
  for (const name of HOP_BY_HOP) delete headers[name];
}

// Every field name the request list leaves out, whatever the Connection header says: the hop-by-hop ones,
// the spent ones, and Transfer-Encoding (the upstream client frames the body itself, and both refuse the
// field; Node has already de-chunked what it read).
const NEVER_FORWARDED = new Set([...HOP_BY_HOP, ...REQUEST_ONLY, 'transfer-encoding']);
const COMPUTED_FORWARDING_FIELDS = new Set<string>(FORWARDED_FIELD_NAMES);

/**
 * The request fields a container receives, as a flat `[name, value, ...]` list (the form undici takes),
 * built in one pass without touching `headers`: what {@link stripRequestHeaders} keeps (Transfer-Encoding
 * aside), then `applyForwardedHeaders`' contract. Equal, field for field, to running those two in place
 * and dropping Transfer-Encoding; a fresh list rather than deletes on Node's object, which would turn it
 * into a slow dictionary on the path every request takes.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, context: ForwardedContext): string[] {
  // Usually absent, or just `keep-alive`. Other tokens name fields to drop before anything is read from
  // them (a client naming Host or X-Forwarded-For): that less usual case takes the in-place path.
  if (connectionNamesFields(headers.connection)) {
    const stripped = { ...headers };
    stripRequestHeaders(stripped);
    return upstreamRequestHeaders(stripped, context);
  }
  const fields = forwardedFields(headers, context);
  const { trusted } = context;
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || NEVER_FORWARDED.has(name)) continue;
    // Ours replace the client's; from an untrusted peer none of the family is kept.
    if (trusted ? COMPUTED_FORWARDING_FIELDS.has(name) : isForwardingFieldName(name)) continue;
    if (name === 'host' && fields.host !== undefined) out.push(name, fields.host);
    else if (name === 'origin' && fields.origin !== undefined) out.push(name, fields.origin);
    else if (name === 'cookie') {
      const cookie = withoutDashboardCookie(value as string);
      if (cookie !== undefined) out.push(name, cookie);
    }
    // Only Set-Cookie is ever a list in Node's object; undici sends each element as a field of its own.
    else out.push(name, value as string);
  }
  if (fields.host !== undefined && headers.host === undefined) out.push('host', fields.host);
  for (const name of FORWARDED_FIELD_NAMES) {
    const value = fields[name];
    if (value !== undefined) out.push(name, value);
  }
  return out;
}

// `keep-alive` names only a field dropped anyway. Even `close` names one: a field called Close is dropped
// too, as in the in-place path.
function connectionNamesFields(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value.toLowerCase() !== 'keep-alive';
}

// Node lowercases names, but a caller may have added a field by hand: only names that can belong to the
// family (x..., f...) are lowercased to be sure.
function isForwardingFieldName(name: string): boolean {
  const first = name.charCodeAt(0) | 0x20;
  if (first !== 0x78 && first !== 0x66) return false;
  return isForwardingField(name.toLowerCase());
}
