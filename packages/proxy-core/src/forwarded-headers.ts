import type { IncomingHttpHeaders } from 'node:http';
import { normalizeRemoteAddress } from './trusted-proxies.js';

/** What this hop knows about one request, for {@link applyForwardedHeaders}. */
export interface ForwardedContext {
  /** The direct peer's socket address (`req.socket.remoteAddress`); `undefined` once the socket is gone. */
  remoteAddress: string | undefined;
  /** Whether the client's connection to this hop is TLS. */
  encrypted: boolean;
  /** The route prefix the client used, e.g. `/previews/abc`; sent as `X-Forwarded-Prefix`. */
  prefix: string;
  /** Whether the direct peer is a trusted proxy, whose X-Forwarded-* and Forwarded headers are kept. */
  trusted: boolean;
  /** The container; required when `preserveHost` is false. */
  target?: { host: string; port: number };
  /** `true`: `Host` as the client sent it; `false`: the target's `ip:port`. */
  preserveHost: boolean;
  /**
   * The app's own name for itself (`localhost:3000`): sent as `Host` whatever `preserveHost` says, with a
   * client's `Origin` replaced by `http://` and it. For a same-origin request of a host route only (see
   * `ForwardRequest.asLocalhost`).
   */
  appHost?: string | undefined;
}

const FORWARDED_PREFIX = 'x-forwarded-';
// RFC 9110 5.6.2 tchar: a Forwarded parameter value made only of these needs no quotes.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// Node joins repeated custom fields with ", " into a string, but a caller may have stored an array.
function headerText(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(', ') : value;
  const trimmed = text?.trim();
  return trimmed === '' ? undefined : trimmed;
}

function firstElement(list: string): string {
  const commaAt = list.indexOf(',');
  return (commaAt === -1 ? list : list.slice(0, commaAt)).trim();
}

/** The port written in a Host value (`example.com:8080`, `[::1]:3000`), if any. */
export function portOfHost(host: string): string | undefined {
  // An unbracketed value with several colons is an (invalid) bare IPv6 literal, not host:port.
  const colonAt = host.lastIndexOf(':');
  if (colonAt === -1 || host.lastIndexOf(']') > colonAt) return undefined;
  if (!host.startsWith('[') && host.indexOf(':') !== colonAt) return undefined;
  const digits = host.length - colonAt - 1;
  if (digits < 1 || digits > 5) return undefined;
  for (let i = colonAt + 1; i < host.length; i++) {
    const code = host.charCodeAt(i);
    if (code < 0x30 || code > 0x39) return undefined;
  }
  return host.slice(colonAt + 1);
}

function defaultPort(proto: string): string {
  const scheme = proto.toLowerCase();
  return scheme === 'https' || scheme === 'wss' ? '443' : '80';
}

function authority(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function forwardedValue(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

// RFC 7239 6: an IPv6 node is bracketed (and so quoted); an unknown peer is the literal `unknown`.
function forwardedNode(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return forwardedValue(address.includes(':') ? `[${address}]` : address);
}

function forwardedElement(address: string | undefined, host: string | undefined, proto: string): string {
  const params = [`for=${forwardedNode(address)}`];
  if (host !== undefined) params.push(`host=${forwardedValue(host)}`);
  params.push(`proto=${proto}`);
  return params.join(';');
}

function setOrDelete(headers: IncomingHttpHeaders, name: string, value: string | undefined): void {
  if (value === undefined) delete headers[name];
  else headers[name] = value;
}

/**
 * Whether a request comes from a page of the origin it is addressed to, as far as its fields tell (pure):
 * no `Origin` (a navigation, a plain GET, a client that is not a browser) or an `Origin` whose host and
 * port are the request's `Host`. `Origin: null` (a sandboxed frame, a file) and any other origin are not.
 */
export function isSameOriginRequest(headers: IncomingHttpHeaders): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  const host = headers.host;
  if (host === undefined) return false;
  const schemeEnd = origin.indexOf('://');
  if (schemeEnd === -1) return false;
  const scheme = origin.slice(0, schemeEnd).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return false;
  return origin.slice(schemeEnd + 3).toLowerCase() === host.toLowerCase();
}

/** The values this hop sends in the forwarding fields; `undefined` ones are not sent. */
export interface ForwardedFields {
  'x-forwarded-for': string | undefined;
  'x-forwarded-host': string | undefined;
  'x-forwarded-proto': string;
  'x-forwarded-port': string;
  'x-forwarded-prefix': string | undefined;
  forwarded: string | undefined;
  /** The `Host` to send instead of the client's, when it is not preserved. */
  host: string | undefined;
  /** The `Origin` to send instead of the client's (when it sent one). */
  origin: string | undefined;
}

/** The names of {@link ForwardedFields} other than `host`, in the order they are sent. */
export const FORWARDED_FIELD_NAMES = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'forwarded',
] as const;

/** Whether a (lowercase) field name belongs to the forwarding family a client cannot be believed on. */
export function isForwardingField(lower: string): boolean {
  return lower.startsWith(FORWARDED_PREFIX) || lower === 'forwarded';
}

/**
 * The one header contract of HTTP and WebSocket requests, computed from the client's fields (pure):
 * `Host`, `X-Forwarded-For` (appended), `-Host`, `-Proto`, `-Port`, `-Prefix`, and `Forwarded`.
 */
export function forwardedFields(headers: IncomingHttpHeaders, context: ForwardedContext): ForwardedFields {
  const { remoteAddress, encrypted, prefix, trusted, target, preserveHost, appHost } = context;
  if (!preserveHost && !target) {
    throw new TypeError('forwarded headers: preserveHost is false but no target was given');
  }
  const clientHost = headerText(headers.host);
  const peer = remoteAddress === undefined ? undefined : normalizeRemoteAddress(remoteAddress);
  const hopProto = encrypted ? 'https' : 'http';
  // What an untrusted peer wrote in these is never read: it could be anything.
  const incomingFor = trusted ? headerText(headers['x-forwarded-for']) : undefined;
  const incomingHost = trusted ? headerText(headers['x-forwarded-host']) : undefined;
  const incomingProto = trusted ? headerText(headers['x-forwarded-proto']) : undefined;
  const incomingPort = trusted ? headerText(headers['x-forwarded-port']) : undefined;
  const incomingForwarded = trusted ? headerText(headers.forwarded) : undefined;

  // Each proxy appends its peer, so the list reads client-first; an unknown peer is left out rather than
  // written as a token that address parsers downstream would choke on.
  let forwardedFor: string | undefined;
  if (incomingFor === undefined) forwardedFor = peer;
  else {
    const chain = splitList(incomingFor);
    if (peer !== undefined) chain.push(peer);
    forwardedFor = chain.length > 0 ? chain.join(', ') : undefined;
  }

  // A trusted peer's values describe the client-facing edge, which this hop cannot see; each field falls
  // back to what this hop sees on its own, as Traefik does.
  const forwardedHost = incomingHost ?? clientHost;
  const forwardedProto = incomingProto ?? hopProto;
  // Derived from the effective host and scheme, so `https` + `a.test` from a trusted edge yields 443.
  const forwardedPort =
    incomingPort ??
    (forwardedHost === undefined ? undefined : portOfHost(firstElement(forwardedHost))) ??
    defaultPort(firstElement(forwardedProto));

  return {
    'x-forwarded-for': forwardedFor,
    'x-forwarded-host': forwardedHost,
    'x-forwarded-proto': forwardedProto,
    'x-forwarded-port': forwardedPort,
    'x-forwarded-prefix': prefix === '' ? undefined : prefix,
    // Forwarded (RFC 7239) is never created, only extended when a trusted peer started it, so that it
    // tells the same chain as X-Forwarded-For. An empty field from a trusted peer has nothing to extend,
    // and is dropped like any other.
    forwarded:
      incomingForwarded === undefined
        ? undefined
        : `${incomingForwarded}, ${forwardedElement(peer, clientHost, hopProto)}`,
    host: appHost ?? (!preserveHost && target ? authority(target.host, target.port) : undefined),
    origin: appHost !== undefined && headers.origin !== undefined ? `http://${appHost}` : undefined,
  };
}

/**
 * Sets, in place, the one header contract of HTTP and WebSocket requests (see {@link forwardedFields}).
 * Run it after `stripRequestHeaders`, with httpxy's own `xfwd` off (it would append its values a
 * second time).
 */
export function applyForwardedHeaders(headers: IncomingHttpHeaders, context: ForwardedContext): void {
  const fields = forwardedFields(headers, context);
  if (!context.trusted) {
    // An untrusted peer can write anything in these: keep none of them (X-Forwarded-Server, -Ssl... too),
    // so an app trusting its proxy never believes a spoofed client address, host or scheme. Node lowercases
    // names, but a caller may have added a field by hand.
    for (const name of Object.keys(headers)) if (isForwardingField(name.toLowerCase())) delete headers[name];
  }
  for (const name of FORWARDED_FIELD_NAMES) setOrDelete(headers, name, fields[name]);
  if (fields.host !== undefined) headers.host = fields.host;
  if (fields.origin !== undefined) headers.origin = fields.origin;
}

// Tolerates the empty elements (`a,,b`, a trailing comma) that sloppy proxies and repeated fields produce.
function splitList(list: string): string[] {
  return list
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
