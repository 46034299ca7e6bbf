import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { previewErrors } from '@sandbox/error-contract';
import { sendErrorResponse } from '@sandbox/preview-routes';
import { DASHBOARD_COOKIE } from '@sandbox/proxy-core';
import { DASHBOARD_CSS, DASHBOARD_SCRIPT, dashboardPage, loginPage } from './dashboard-assets.js';
import { createKeyMatcher } from './internal-key.js';

// The dashboard: a page for people, on a server of its own (its own port, so its own origin). Its login
// form takes the internal key and answers with an HttpOnly, SameSite=Strict session cookie; its script
// calls the internal API through this server, which checks the cookie and adds the key.
//
// Why a port of its own: the previews are served on the service's main port, and a page of a preview runs
// code from a sandbox. On the same origin as the dashboard, that code could call the API with the user's
// cookie. On another origin it cannot: its requests that change anything need the `X-Sandbox-Dashboard`
// header, which a cross-origin page can only send after a CORS preflight nobody answers, and what it reads is
// refused to it by the browser; a request the browser marks as from elsewhere (Sec-Fetch-Site) is refused
// outright, reads too. Cookies are not kept apart by port, so the cookie also reaches the main port:
// proxy-core takes it out of every request it forwards, and the main port's API never takes it.

/** The header the dashboard's script sends with every request that changes something. */
export const DASHBOARD_REQUEST_HEADER = 'x-sandbox-dashboard';

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** The key the login form asks for, and what the API calls are made with. */
  internalServiceKey: string;
  /** Where the API calls of a logged-in page go, the key added (the service's request listener). */
  api: (req: IncomingMessage, res: ServerResponse) => void;
  /** The internal API's prefix on `api`. Default `/api/internal`. */
  apiPrefix?: string;
  /** How long a login lasts. Default 12 hours. */
  sessionTtlMs?: number;
  /** Shown in the page's title and header. Default `container-manager`. */
  title?: string;
  /** The clock, for tests. */
  now?: () => number;
}

/** The dashboard's request listener; `close()` forgets every login. */
export interface Dashboard {
  requestListener(req: IncomingMessage, res: ServerResponse): void;
  close(): void;
}

/** Logins kept at most; the oldest goes first (each login is a new one). */
const MAX_LOGINS = 1000;
const LOGIN_BODY_LIMIT_BYTES = 4096;

// Every page: no framing, no referrer, nothing cached, scripts and styles from this server only.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

// Every value of our cookie in the request: a page of another port of the host can plant one of the same
// name (on a longer path, sent first), which must not hide the real one.
function cookiesOf(req: IncomingMessage): string[] {
  const header = req.headers.cookie;
  if (header === undefined) return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const pair = part.trim();
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === DASHBOARD_COOKIE) values.push(pair.slice(eq + 1).trim());
  }
  return values;
}

// Browsers say where a request comes from. The previews are on another port of the same host, so the
// same site: SameSite cookies still go with their requests, reads included. Anything a browser marks as
// not from this origin is refused (a user's own navigation is `none`; tools send nothing).
function fromElsewhere(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'same-origin' && site !== 'none';
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The dashboard: its pages, its login, and the internal API for a logged-in page. */
export function createDashboard(options: DashboardOptions): Dashboard {
  const {
    api,
    apiPrefix = '/api/internal',
    sessionTtlMs = 12 * 3600_000,
    title = 'container-manager',
  } = options;
  const now = options.now ?? Date.now;
  const matches = createKeyMatcher(options.internalServiceKey);
  // Login token -> when it expires. Held in this process only: a restart logs everyone out.
  const logins = new Map<string, number>();

  const loggedIn = (req: IncomingMessage): string | undefined => {
    for (const token of cookiesOf(req)) {
      const expires = logins.get(token);
      if (expires === undefined) continue;
      if (expires > now()) return token;
      logins.delete(token);
    }
    return undefined;
  };

  const cookie = (req: IncomingMessage, value: string, maxAgeSeconds: number) => {
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true ? '; Secure' : '';
    return `${DASHBOARD_COOKIE}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure}`;
  };

  const page = (res: ServerResponse, status: number, html: string) => {
    res.writeHead(status, PAGE_HEADERS);
    res.end(html);
  };

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, LOGIN_BODY_LIMIT_BYTES);
    const key = body === undefined ? undefined : new URLSearchParams(body).get('key');
    if (!matches(key)) {
      page(res, 403, loginPage(title, "That is not this service's key."));
      return;
    }
    const token = randomBytes(32).toString('base64url');
    if (logins.size >= MAX_LOGINS) logins.delete(logins.keys().next().value as string);
    logins.set(token, now() + sessionTtlMs);
    res.writeHead(303, {
      location: '/',
      'set-cookie': cookie(req, token, Math.floor(sessionTtlMs / 1000)),
      'cache-control': 'no-store',
    });
    res.end();
  }

  function callApi(req: IncomingMessage, res: ServerResponse): void {
    const changes = req.method !== 'GET' && req.method !== 'HEAD';
    // A cross-origin page cannot add this header without a preflight, which is never answered.
    if (
      fromElsewhere(req) ||
      loggedIn(req) === undefined ||
      (changes && req.headers[DASHBOARD_REQUEST_HEADER] !== '1')
    ) {
      sendErrorResponse(res, previewErrors.forbidden());
      return;
    }
    req.headers['x-internal-service-key'] = options.internalServiceKey;
    api(req, res);
  }

  function requestListener(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0] ?? '/';
    const method = req.method ?? 'GET';
    if (path === apiPrefix || path.startsWith(`${apiPrefix}/`)) {
      callApi(req, res);
      return;
    }
    const read = method === 'GET' || method === 'HEAD';
    if (path === '/' && read) {
      page(res, 200, loggedIn(req) === undefined ? loginPage(title) : dashboardPage(title, apiPrefix));
      return;
    }
    if ((path === '/login' || path === '/logout') && method === 'POST' && fromElsewhere(req)) {
      sendErrorResponse(res, previewErrors.forbidden());
      return;
    }
    if (path === '/login' && method === 'POST') {
      login(req, res).catch((error: unknown) => sendErrorResponse(res, error));
      return;
    }
    if (path === '/logout' && method === 'POST') {
      const token = loggedIn(req);
      if (token !== undefined) logins.delete(token);
      res.writeHead(303, { location: '/', 'set-cookie': cookie(req, '', 0), 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const asset =
      path === '/dashboard.js'
        ? { type: 'text/javascript; charset=utf-8', body: DASHBOARD_SCRIPT }
        : path === '/dashboard.css'
          ? { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS }
          : undefined;
    if (asset !== undefined && read) {
      res.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      res.end(asset.body);
      return;
    }
    sendErrorResponse(res, previewErrors.routeNotFound(method, path));
  }

  return {
    requestListener,
    close() {
      logins.clear();
    },
  };
}
