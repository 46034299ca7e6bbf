import type { IncomingHttpHeaders } from 'node:http';

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

// `expect` is answered by the Node server itself (it sends 100 Continue to the client), so it is spent on
// this hop; forwarding it would also make http-proxy skip its proxyReq event.
const REQUEST_ONLY = [INTERNAL_KEY_HEADER, 'expect'];

function connectionTokens(headers: IncomingHttpHeaders): string[] {
  const value = headers.connection;
  if (typeof value !== 'string' || value === '') return [];
  return value.split(',').map((token) => token.trim().toLowerCase());
}

/**
 * Removes, in place, the headers that must not travel to the container: hop-by-hop fields, every field the
 * `Connection` header names, `Expect`, and the internal key.
 */
export function stripRequestHeaders(headers: IncomingHttpHeaders): void {
  for (const token of connectionTokens(headers)) {
    if (token !== '' && token !== 'transfer-encoding') delete headers[token];
  }
  for (const name of HOP_BY_HOP) delete headers[name];
  for (const name of REQUEST_ONLY) delete headers[name];
}

/** Removes, in place, the hop-by-hop fields of an upstream response and every field its `Connection` names. */
export function stripResponseHeaders(headers: IncomingHttpHeaders): void {
  for (const token of connectionTokens(headers)) {
    if (token !== '' && token !== 'transfer-encoding') delete headers[token];
  }
  for (const name of HOP_BY_HOP) delete headers[name];
}
