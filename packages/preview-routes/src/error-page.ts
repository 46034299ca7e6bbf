import type { IncomingMessage } from 'node:http';
import type { ErrorBody } from '@sandbox/error-contract';

// A person who opens a preview before its app listens would otherwise read a line of JSON. Navigations
// get a page with the same status and message instead; every other client (curl, fetch, an app's own
// requests) keeps the contract's JSON, byte for byte.

/** The statuses a navigation gets a page for: the 502 (the app is starting), 404 and 500. */
const PAGE_STATUSES = new Set([404, 500, 502]);
// A private preview's refusals: a person following a link meets them. (The internal API's 403 stays JSON.)
const PAGE_CODES = new Set(['PREVIEW_TOKEN_REQUIRED', 'PREVIEW_TOKEN_INVALID']);

/**
 * Whether a request is a browser's navigation: `Sec-Fetch-Mode: navigate` where the browser sends it (a
 * `fetch` from a page says `cors` or `same-origin`), else an `Accept` that prefers `text/html` to JSON.
 */
export function isNavigation(req: IncomingMessage): boolean {
  const mode = req.headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  const accept = req.headers.accept;
  return accept !== undefined && prefersHtml(accept);
}

/** Whether an `Accept` value names `text/html` with a weight above that of JSON (and above 0). */
export function prefersHtml(accept: string): boolean {
  let html = 0;
  let json = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    const qParam = params.find((param) => param.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!Number.isFinite(q)) continue;
    if (type === 'text/html') html = Math.max(html, q);
    else if (type === 'application/json') json = Math.max(json, q);
  }
  return html > 0 && html > json;
}

/** Whether an error answered with `status` (and contract `code`) to `req` is a page rather than JSON. */
export function wantsErrorPage(req: IncomingMessage | undefined, status: number, code?: string): boolean {
  return (
    req !== undefined &&
    (PAGE_STATUSES.has(status) || (code !== undefined && PAGE_CODES.has(code))) &&
    isNavigation(req)
  );
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);

// Reloads with a growing delay (1 s, then half again each time, at most 10 s), counted across reloads in
// the tab's sessionStorage, and stops after 3 minutes with a line saying so. A tab that comes back to it
// after a minute starts over.
const RELOAD_SCRIPT = `(function () {
  var key = 'sandbox-preview-starting:' + location.pathname + location.search;
  var now = Date.now();
  var state = null;
  try { state = JSON.parse(sessionStorage.getItem(key) || 'null'); } catch (e) {}
  if (!state || now - state.last > 60000) state = { start: now, tries: 0 };
  state.tries += 1;
  state.last = now;
  var status = document.getElementById('status');
  if (now - state.start > 180000) {
    try { sessionStorage.removeItem(key); } catch (e) {}
    status.textContent = 'It has not answered for 3 minutes. Reload the page to try again.';
    return;
  }
  try { sessionStorage.setItem(key, JSON.stringify(state)); } catch (e) {}
  var delay = Math.min(1000 * Math.pow(1.5, state.tries - 1), 10000);
  status.textContent = 'Trying again in ' + Math.round(delay / 1000) + ' s (attempt ' + state.tries + ').';
  setTimeout(function () { location.reload(); }, delay);
})();`;

/**
 * The page for an error answered to a navigation: the status, the contract's message and code, the
 * request id; for the 502, a page that says the app is starting and reloads itself.
 */
export function errorPage(status: number, body: ErrorBody, requestId: string | undefined): string {
  const starting = status === 502;
  const title = starting ? 'The app is starting' : `${status} ${body.error}`;
  const lead = starting
    ? 'The app in this preview is not answering yet: it may still be starting. This page reloads by itself once it can.'
    : escapeHtml(body.message);
  const details = [
    `<dt>Status</dt><dd>${status} ${escapeHtml(body.error)}</dd>`,
    starting ? `<dt>Message</dt><dd>${escapeHtml(body.message)}</dd>` : '',
    `<dt>Code</dt><dd><code>${escapeHtml(body.code)}</code></dd>`,
    requestId === undefined ? '' : `<dt>Request id</dt><dd><code>${escapeHtml(requestId)}</code></dd>`,
  ].join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; color: #222; max-width: 40rem; margin: 12vh auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; } dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; color: #555; }
dt { font-weight: 600; } dd { margin: 0; } code { font-size: .9em; }
</style>
</head>
<body>
<h1 id="title">${escapeHtml(title)}</h1>
<p id="lead">${lead}</p>
${starting ? '<p id="status"></p>' : ''}
<dl>${details}</dl>
${starting ? `<script>${RELOAD_SCRIPT}</script>` : ''}
</body>
</html>
`;
}
