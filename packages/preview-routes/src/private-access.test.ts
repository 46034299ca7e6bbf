import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { decidePrivateAccess, TOKEN_COOKIE, tokenCookie } from './private-access.js';
import { createPreviewTokens } from './tokens.js';

const tokens = createPreviewTokens('s'.repeat(32));
const NOW = 1_800_000_000_000;
const route = { cookiePath: '/previews/abc/', secure: false };

function request(url: string, headers: Record<string, string> = {}, method = 'GET'): IncomingMessage {
  return { url, method, headers: { ...headers } } as unknown as IncomingMessage;
}

const decide = (req: IncomingMessage, notBefore = 0) =>
  decidePrivateAccess(req, 'abc', 3000, notBefore, tokens, route, NOW);

describe('decidePrivateAccess', () => {
  const { token } = tokens.mint('abc', 3000, 3_600_000, NOW);

  it('no credential: the 401', () => {
    const decision = decide(request('/x'));
    expect(decision.kind === 'refuse' && decision.error.code).toBe('PREVIEW_TOKEN_REQUIRED');
  });

  it('a link: 303 to the same URL without the parameter, setting the cookie', () => {
    expect(decide(request(`/previews/abc/page?a=1&preview_token=${token}&b=2`))).toEqual({
      kind: 'exchange',
      location: '/previews/abc/page?a=1&b=2',
      cookie: tokenCookie(token, NOW + 3_600_000, route, NOW),
    });
    expect(tokenCookie(token, NOW + 3_600_000, route, NOW)).toBe(
      `${TOKEN_COOKIE}=${token}; Path=/previews/abc/; Max-Age=3600; Expires=${new Date(NOW + 3_600_000).toUTCString()}; HttpOnly; SameSite=Lax`,
    );
    expect(tokenCookie(token, NOW + 1000, { cookiePath: '/', secure: true }, NOW)).toMatch(
      /; Path=\/; .*; Secure$/,
    );
  });

  it('a parameter on anything but a GET or HEAD is refused, so it never reaches the app', () => {
    const post = decide(request(`/x?preview_token=${token}`, {}, 'POST'));
    expect(post.kind === 'refuse' && post.error.code).toBe('PREVIEW_TOKEN_INVALID');
    const upgrade = decide(request(`/x?preview_token=${token}`, { upgrade: 'websocket' }));
    expect(upgrade.kind === 'refuse' && upgrade.error.code).toBe('PREVIEW_TOKEN_INVALID');
  });

  it('header, bearer or cookie: allowed, and ours removed while the app keeps its own', () => {
    const viaHeader = request('/x', { 'x-preview-token': token, authorization: 'Basic dXNlcjpwYXNz' });
    expect(decide(viaHeader)).toEqual({ kind: 'allow' });
    // The header stays on the request; the proxy never forwards it (proxy-core's headers test).
    expect(viaHeader.headers).toEqual({ 'x-preview-token': token, authorization: 'Basic dXNlcjpwYXNz' });

    const viaBearer = request('/x', { authorization: `Bearer ${token}`, cookie: 'app=1' });
    expect(decide(viaBearer)).toEqual({ kind: 'allow' });
    expect(viaBearer.headers).toEqual({ cookie: 'app=1' });

    const viaCookie = request('/x', { cookie: `app=1; ${TOKEN_COOKIE}=${token}; theme=dark` });
    expect(decide(viaCookie)).toEqual({ kind: 'allow' });
    expect(viaCookie.headers).toEqual({ cookie: 'app=1; theme=dark' });

    const onlyOurs = request('/x', { cookie: `${TOKEN_COOKIE}=${token}` });
    expect(decide(onlyOurs)).toEqual({ kind: 'allow' });
    expect(onlyOurs.headers).toEqual({});
  });

  it("an app's own bearer token is not ours: it is left alone, and the request needs ours", () => {
    const req = request('/x', { authorization: 'Bearer app-own-jwt.abc.def' });
    const decision = decide(req);
    expect(decision.kind === 'refuse' && decision.error.code).toBe('PREVIEW_TOKEN_REQUIRED');
    expect(req.headers.authorization).toBe('Bearer app-own-jwt.abc.def');
  });

  it('refusals say why, never echoing the token', () => {
    const other = tokens.mint('abc', 4000, 1000, NOW).token;
    const decision = decide(request('/x', { 'x-preview-token': other }));
    expect(decision.kind === 'refuse' && decision.error.message).toBe(
      'Preview token refused for port 3000 of session abc: the token is for another port',
    );
    const revoked = decide(request('/x', { 'x-preview-token': token }), NOW + 1);
    expect(revoked.kind === 'refuse' && revoked.error.message).toMatch(/revoked$/);
    expect(revoked.kind === 'refuse' && revoked.error.message).not.toContain(token);
  });

  it('without a secret, a private port refuses every credential', () => {
    const decision = decidePrivateAccess(
      request('/x', { 'x-preview-token': token }),
      'abc',
      3000,
      0,
      undefined,
      route,
      NOW,
    );
    expect(decision.kind === 'refuse' && decision.error.code).toBe('PREVIEW_TOKEN_INVALID');
  });
});
