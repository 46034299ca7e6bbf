import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPreviewTokens, MIN_TOKEN_SECRET_LENGTH } from './tokens.js';

const SECRET = 'a'.repeat(MIN_TOKEN_SECRET_LENGTH);
const tokens = createPreviewTokens(SECRET);
const NOW = 1_800_000_000_000;

describe('preview tokens', () => {
  it('refuses a secret shorter than 32 characters', () => {
    expect(() => createPreviewTokens('short')).toThrow(/at least 32/);
  });

  it('opens the (session, port) it was minted for, until it expires', () => {
    const { token, claims } = tokens.mint('abc', 3000, 60_000, NOW);
    expect(claims).toEqual({ sessionId: 'abc', port: 3000, issuedAt: NOW, expiresAt: NOW + 60_000 });
    expect(tokens.verify(token, 'abc', 3000, 0, NOW + 59_999)).toEqual({ ok: true, claims });
    expect(tokens.verify(token, 'abc', 3000, 0, NOW + 60_000)).toEqual({ ok: false, refusal: 'expired' });
  });

  it('tells another session, another port, a revocation and a foreign secret apart', () => {
    const { token } = tokens.mint('abc', 3000, 60_000, NOW);
    expect(tokens.verify(token, 'abd', 3000, 0, NOW)).toEqual({ ok: false, refusal: 'other-session' });
    expect(tokens.verify(token, 'abc', 3001, 0, NOW)).toEqual({ ok: false, refusal: 'other-port' });
    expect(tokens.verify(token, 'abc', 3000, NOW + 1, NOW)).toEqual({ ok: false, refusal: 'revoked' });
    const foreign = createPreviewTokens('b'.repeat(MIN_TOKEN_SECRET_LENGTH)).mint('abc', 3000, 60_000, NOW);
    expect(tokens.verify(foreign.token, 'abc', 3000, 0, NOW)).toEqual({
      ok: false,
      refusal: 'bad-signature',
    });
  });

  it('holds no secret: the claims are readable, the token is URL- and cookie-safe', () => {
    const { token } = tokens.mint('abc', 3000, 60_000, NOW);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(token).not.toContain(SECRET);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
    expect(claims).toMatchObject({ s: 'abc', p: 3000, iat: NOW, exp: NOW + 60_000 });
    expect(tokens.looksLikeToken(token)).toBe(true);
    expect(tokens.looksLikeToken('Basic dXNlcjpwYXNz')).toBe(false);
  });

  it('two tokens minted at the same time differ', () => {
    expect(tokens.mint('abc', 3000, 1000, NOW).token).not.toBe(tokens.mint('abc', 3000, 1000, NOW).token);
  });
});

describe('preview tokens: properties', () => {
  const sessionId = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$/);
  const port = fc.integer({ min: 1024, max: 65535 });

  it('no string that was not minted for (session, port, secret) is accepted', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), sessionId, port, (candidate, id, p) => {
        expect(tokens.verify(candidate, id, p, 0, NOW).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('any change to a minted token, one character or more, is refused', () => {
    const { token } = tokens.mint('abc', 3000, 60_000, NOW);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: token.length - 1 }),
        fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.='),
        (index, char) => {
          fc.pre(token[index] !== char);
          const altered = token.slice(0, index) + char + token.slice(index + 1);
          // The signature covers the text of `v1.<claims>`; the signature itself is compared as bytes, and
          // base64url has spare bits in its last character: a change there that decodes to the same bytes
          // is the same signature, not a forgery.
          const same =
            altered.split('.').length === 3 &&
            altered.split('.').every((part, i) => {
              const original = token.split('.')[i] ?? '';
              return i < 2
                ? part === original
                : Buffer.from(part, 'base64url').equals(Buffer.from(original, 'base64url'));
            });
          expect(tokens.verify(altered, 'abc', 3000, 0, NOW).ok).toBe(same);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a token minted for one (session, port) opens no other', () => {
    fc.assert(
      fc.property(sessionId, port, sessionId, port, (id, p, otherId, otherPort) => {
        fc.pre(id !== otherId || p !== otherPort);
        const { token } = tokens.mint(id, p, 60_000, NOW);
        expect(tokens.verify(token, otherId, otherPort, 0, NOW).ok).toBe(false);
        expect(tokens.verify(token, id, p, 0, NOW).ok).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
