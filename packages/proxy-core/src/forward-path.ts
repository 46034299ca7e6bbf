/** A request URL split at its route: the raw session id segment and the path the container receives. */
export interface PreviewPath {
  /** The raw (still percent-encoded) segment after the prefix. */
  rawSessionId: string;
  /** The rest of the URL, byte for byte, starting with `/` (query kept); `/` when nothing follows. */
  forwardPath: string;
}

/**
 * Splits `{prefix}/{sessionId}{rest}` without decoding or re-encoding anything, so the container sees the
 * exact bytes the client sent. `prefix` has no trailing slash (`/previews`). Returns `undefined` when the
 * URL is not under the prefix.
 */
export function splitPreviewPath(url: string, prefix: string): PreviewPath | undefined {
  if (!url.startsWith(prefix) || url.charCodeAt(prefix.length) !== 47 /* / */) return undefined;
  const idStart = prefix.length + 1;
  let idEnd = idStart;
  while (idEnd < url.length) {
    const c = url.charCodeAt(idEnd);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    idEnd++;
  }
  const rest = url.slice(idEnd);
  return {
    rawSessionId: url.slice(idStart, idEnd),
    forwardPath: rest.charCodeAt(0) === 47 ? rest : `/${rest}`,
  };
}

function isHexDigit(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102);
}

/** Whether the path part of a URL (before `?`) has a `%` not followed by two hex digits (RFC 3986). */
export function hasMalformedPercentEncoding(url: string): boolean {
  const queryAt = url.indexOf('?');
  const end = queryAt === -1 ? url.length : queryAt;
  for (let i = url.indexOf('%'); i !== -1 && i < end; i = url.indexOf('%', i + 1)) {
    if (i + 2 >= end || !isHexDigit(url.charCodeAt(i + 1)) || !isHexDigit(url.charCodeAt(i + 2))) return true;
  }
  return false;
}
