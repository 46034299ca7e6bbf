import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Preview tokens: what opens one private (session, port) until it expires or is revoked.
 *
 * A token is `v1.<claims>.<signature>`, both parts base64url. The claims are JSON `{ s, p, iat, exp, n }`
 * (session id, port, issued-at and expiry in ms since the epoch, a random nonce); the signature is
 * HMAC-SHA256 under the service's secret over `v1.<claims>`. It holds nothing secret of ours: anyone may
 * read its claims, no one without the secret can make or alter one. Revocation needs no list: a port keeps
 * the time before which its tokens no longer count (`tokensNotBefore`), which a revocation, a removal or a
 * new registration of a removed port moves to now.
 */

/** Shortest secret accepted: 32 characters (256 bits when random). */
export const MIN_TOKEN_SECRET_LENGTH = 32;
/** Longest token considered at all: a bound on the work an attacker can ask of the verifier. */
export const MAX_TOKEN_LENGTH = 512;
const VERSION = 'v1';

/** What a token says. */
export interface TokenClaims {
  sessionId: string;
  port: number;
  /** Issued at, ms since the epoch. */
  issuedAt: number;
  /** Expires at, ms since the epoch. */
  expiresAt: number;
}

/** Why a presented token does not open a preview; the message of the 403 says it in words. */
export type TokenRefusal =
  | 'malformed'
  | 'bad-signature'
  | 'expired'
  | 'revoked'
  | 'other-session'
  | 'other-port';

/** The words of a refusal, for the 403's message. */
export const TOKEN_REFUSAL_MESSAGES: Readonly<Record<TokenRefusal, string>> = {
  malformed: 'the token is malformed',
  'bad-signature': 'the token was not issued by this service',
  expired: 'the token has expired',
  revoked: 'the token was revoked',
  'other-session': 'the token is for another session',
  'other-port': 'the token is for another port',
};

/** Mints and checks tokens under one secret. */
export interface PreviewTokens {
  /** A token for (sessionId, port), valid from `now` for `ttlMs`. */
  mint(sessionId: string, port: number, ttlMs: number, now?: number): { token: string; claims: TokenClaims };
  /**
   * Whether `token` opens (sessionId, port) now, given the port's `tokensNotBefore`: the claims, or why
   * not. Constant-time on the signature; reads nothing but the token.
   */
  verify(
    token: string,
    sessionId: string,
    port: number,
    tokensNotBefore: number,
    now?: number,
  ): { ok: true; claims: TokenClaims } | { ok: false; refusal: TokenRefusal };
  /** Whether `value` has the shape of one of our tokens (to tell ours from an app's own `Authorization`). */
  looksLikeToken(value: string): boolean;
}

const TOKEN_SHAPE = /^v1\.[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{43}$/;

/** How many verified tokens are remembered (their claims), so that a page's requests cost one HMAC. */
const VERIFIED_CACHE_SIZE = 4096;

/** Creates the token functions for one secret; throws on a secret shorter than 32 characters. */
export function createPreviewTokens(secret: string): PreviewTokens {
  if (secret.length < MIN_TOKEN_SECRET_LENGTH)
    throw new RangeError(`the preview token secret must be at least ${MIN_TOKEN_SECRET_LENGTH} characters`);
  const key = Buffer.from(secret, 'utf8');
  const sign = (signed: string) => createHmac('sha256', key).update(signed).digest();
  const looksLikeToken = (value: string) => value.length <= MAX_TOKEN_LENGTH && TOKEN_SHAPE.test(value);
  // Claims of tokens whose signature checked out, by the whole token string: only that exact string, which
  // we signed, finds them. Expiry, revocation, session and port are still judged on every request.
  const verified = new Map<string, TokenClaims>();
  const signedClaims = (token: string): TokenClaims | TokenRefusal => {
    const known = verified.get(token);
    if (known !== undefined) return known;
    if (!looksLikeToken(token)) return 'malformed';
    const cut = token.lastIndexOf('.');
    const signed = token.slice(0, cut);
    const presented = Buffer.from(token.slice(cut + 1), 'base64url');
    const expected = sign(signed);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return 'bad-signature';
    // Signed by us: the claims are ours, but still checked as data.
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(signed.slice(VERSION.length + 1), 'base64url').toString('utf8'));
    } catch {
      return 'malformed';
    }
    const { s, p, iat, exp } = (raw ?? {}) as Record<string, unknown>;
    if (typeof s !== 'string' || typeof p !== 'number' || typeof iat !== 'number' || typeof exp !== 'number')
      return 'malformed';
    const claims: TokenClaims = { sessionId: s, port: p, issuedAt: iat, expiresAt: exp };
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
    verified.set(token, claims);
    return claims;
  };
  return {
    mint(sessionId, port, ttlMs, now = Date.now()) {
      const claims: TokenClaims = { sessionId, port, issuedAt: now, expiresAt: now + ttlMs };
      const json = JSON.stringify({
        s: sessionId,
        p: port,
        iat: claims.issuedAt,
        exp: claims.expiresAt,
        n: randomBytes(6).toString('base64url'),
      });
      const signed = `${VERSION}.${Buffer.from(json).toString('base64url')}`;
      return { token: `${signed}.${sign(signed).toString('base64url')}`, claims };
    },
    verify(token, sessionId, port, tokensNotBefore, now = Date.now()) {
      const claims = signedClaims(token);
      if (typeof claims === 'string') return { ok: false, refusal: claims };
      if (claims.sessionId !== sessionId) return { ok: false, refusal: 'other-session' };
      if (claims.port !== port) return { ok: false, refusal: 'other-port' };
      if (now >= claims.expiresAt) return { ok: false, refusal: 'expired' };
      if (claims.issuedAt < tokensNotBefore) return { ok: false, refusal: 'revoked' };
      return { ok: true, claims };
    },
    looksLikeToken,
  };
}
