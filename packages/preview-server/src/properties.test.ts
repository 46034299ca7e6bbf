import { ERROR_STATUS, isPreviewError, type PreviewError } from '@sandbox/error-contract';
import { isValidSessionId, SESSION_ID_PATTERN } from '@sandbox/preview-registry';
import {
  isHostRoutableSessionId,
  matchPreviewHost,
  matchPreviewRoute,
  normalizePreviewDomain,
} from '@sandbox/preview-routes';
import type { Request, Response } from 'express';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createKeyMatcher, requireInternalKey } from './internal-key.js';

// Properties over generated input: what must hold for every URL, Host and key, not just for the examples
// the example-based tests pick.

const RUNS = { numRuns: 1500 };
const PREFIXES = ['/previews', '/internal-previews/proxy'] as const;
const prefixArb = fc.constantFrom(...PREFIXES);

const TRICKY_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  'a%2e%2e',
  'a..b',
  '%2f',
  'a%2Fb',
  '%5c',
  '\\',
  '%00',
  'a%00',
  '\u0000',
  '%',
  'a%g1',
  'a%2',
  '%25',
  'é',
  'caf%C3%A9',
  '%C3',
  '%E2%80%AE',
  '\u202e',
  '😀',
  '-a',
  '_a',
  'A'.repeat(128),
  'A'.repeat(129),
  `${'%41'.repeat(128)}`,
  `${'%41'.repeat(129)}`,
  'abc',
  'session-1',
  'a.b_c-D9',
  '%61bc',
  '',
] as const;

const segmentArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...TRICKY_SEGMENTS) },
  {
    weight: 3,
    arbitrary: fc
      .array(fc.constantFrom(...TRICKY_SEGMENTS, 'x', '1', '-', '.', '_'), { maxLength: 4 })
      .map((parts) => parts.join('')),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,135}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(/[/?]/g, '')) },
);
const restArb = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '/',
    '//',
    '/..',
    '/../other/x',
    '/%2e%2e/%2e%2e/etc',
    '/a%2Fb',
    '?',
    '?q=%26',
    '/%00',
    '/%',
  ),
  fc
    .tuple(fc.constantFrom('/', '?', '/x?'), fc.array(fc.constantFrom(...TRICKY_SEGMENTS, '/', '?', '&')))
    .map(([lead, parts]) => `${lead}${parts.join('')}`),
  fc.string({ unit: 'binary', maxLength: 20 }).map((s) => `/${s}`),
);
const urlArb = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(prefixArb, segmentArb, restArb).map(([p, s, r]) => `${p}/${s}${r}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('/preview', '/previewsX', '/PREVIEWS', '//previews', 'http://h/previews'),
        restArb,
      )
      .map(([head, rest]) => `${head}${rest}`),
  },
);

/** What must come out for a URL: computed by hand from the spec, not by the code under test. */
function expectedRoute(url: string, prefix: string) {
  if (!url.startsWith(`${prefix}/`)) return { kind: 'none' } as const;
  const after = url.slice(prefix.length + 1);
  const end = after.search(/[/?]/);
  const raw = end === -1 ? after : after.slice(0, end);
  const rest = end === -1 ? '' : after.slice(end);
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  let decoded: string | undefined;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    decoded = undefined;
  }
  if (decoded === undefined || /%(?![0-9A-Fa-f]{2})/.test(path))
    return { kind: 'error', code: 'MALFORMED_PATH' } as const;
  if (!SESSION_ID_PATTERN.test(decoded)) return { kind: 'error', code: 'INVALID_SESSION_ID' } as const;
  return { kind: 'match', raw, rest, sessionId: decoded } as const;
}

function expectContractError(value: unknown, code: string): void {
  expect(isPreviewError(value)).toBe(true);
  const error = value as PreviewError;
  expect(error.code).toBe(code);
  expect(error.status).toBe(ERROR_STATUS[error.code]);
}

describe('matchPreviewRoute', () => {
  it('never throws; gives nothing, the contract error, or the literal first segment (decoded) and the raw rest', () => {
    fc.assert(
      fc.property(urlArb, prefixArb, fc.constantFrom('', '/base'), (url, prefix, basePath) => {
        const result = matchPreviewRoute(url, prefix, basePath);
        const expected = expectedRoute(url, prefix);
        if (expected.kind === 'none') {
          expect(result).toBeUndefined();
          return;
        }
        if (expected.kind === 'error') {
          expectContractError(result, expected.code);
          return;
        }
        expect(result).toEqual({
          sessionId: expected.sessionId,
          forwardPath: expected.rest.startsWith('/') ? expected.rest : `/${expected.rest}`,
          routePrefix: `${basePath}${prefix}/${expected.raw}`,
        });
      }),
      RUNS,
    );
  });

  it('a matched session id is always a container-name tail: no traversal, separator, NUL, non-ASCII or overlong id', () => {
    fc.assert(
      fc.property(urlArb, prefixArb, (url, prefix) => {
        const result = matchPreviewRoute(url, prefix);
        if (result === undefined || isPreviewError(result)) return;
        const { sessionId, forwardPath } = result;
        expect(isValidSessionId(sessionId)).toBe(true);
        expect(sessionId.length).toBeLessThanOrEqual(128);
        expect(sessionId).not.toMatch(/^\.|[/\\%\0?#\s]|[^\x21-\x7e]/);
        expect(forwardPath.startsWith('/')).toBe(true);
        // The id is the first segment, never something assembled from the rest of the path.
        const raw = url.slice(prefix.length + 1).split(/[/?]/)[0] ?? '';
        expect(sessionId).toBe(raw.includes('%') ? decodeURIComponent(raw) : raw);
        const rest = url.slice(prefix.length + 1 + raw.length);
        expect(forwardPath).toBe(rest.startsWith('/') ? rest : `/${rest}`);
      }),
      RUNS,
    );
  });

  it('what follows a valid id (traversal, encoded slashes, other ids) never changes the session', () => {
    const validId = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/);
    fc.assert(
      fc.property(prefixArb, validId, restArb, (prefix, sessionId, rest) => {
        const result = matchPreviewRoute(`${prefix}/${sessionId}${rest}`, prefix);
        const queryAt = rest.indexOf('?');
        const restPath = queryAt === -1 ? rest : rest.slice(0, queryAt);
        if (/%(?![0-9A-Fa-f]{2})/.test(restPath)) {
          expectContractError(result, 'MALFORMED_PATH');
          return;
        }
        expect(result).toEqual({
          sessionId,
          forwardPath: rest.startsWith('/') ? rest : `/${rest}`,
          routePrefix: `${prefix}/${sessionId}`,
        });
      }),
      RUNS,
    );
  });
});

const DOMAIN = 'preview.example.com';
const domainArb = fc.constantFrom(DOMAIN, 'localhost', 'a.b.c.d.test');
const HOST_ID = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

type HostOutcome = undefined | { code: string } | { sessionId: string; port: number };

function outcome(result: ReturnType<typeof matchPreviewHost>): HostOutcome {
  if (result === undefined) return undefined;
  if (isPreviewError(result)) return { code: result.code };
  return { sessionId: result.sessionId, port: result.port };
}

// Hosts built from the pieces that matter (digits, a label, the domain, look-alike domains, a port
// suffix, a trailing dot, any case), plus anything at all.
const hostArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.integer({ min: 0, max: 99_999 }).map(String),
          fc.constantFrom('', '03000', '000001024', 'x'),
        ),
        fc.oneof(
          fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,70}$/),
          fc.constantFrom('abc', 'a_b', 'a.b', '-a', 'a-', 'ABC', 'é', '', 'a b'),
        ),
        fc.constantFrom('.', '.x.', '-', ''),
        domainArb,
        fc.constantFrom('', '.', '.evil.test', 'evil.test', '..'),
        fc.constantFrom('', ':80', ':443', ':', ':abc', ':3000:1', '@evil.test'),
      )
      .chain(([port, id, sep, domain, tail, suffix]) =>
        fc.mixedCase(fc.constant(`${port}-${id}${sep}${domain}${tail}${suffix}`)),
      ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('[::1]:3000', `[3000-abc.${DOMAIN}]`, DOMAIN, `.${DOMAIN}`, '') },
);

describe('matchPreviewHost', () => {
  it('never throws; a match names a DNS-label session id and a port in range, read from this very host', () => {
    fc.assert(
      fc.property(hostArb, domainArb, (host, domain) => {
        const result = matchPreviewHost(host, domain);
        if (result === undefined) return;
        // Only a host under `.domain` (a label boundary, not a look-alike suffix) is ever claimed.
        let name = host.split(':')[0]?.toLowerCase() ?? '';
        if (name.endsWith('.')) name = name.slice(0, -1);
        expect(name.endsWith(`.${domain}`)).toBe(true);
        const label = name.slice(0, -(domain.length + 1));
        expect(label.length).toBeLessThanOrEqual(63);
        if (isPreviewError(result)) {
          expect(result.code).toBe('INVALID_PORT');
          expect(result.status).toBe(ERROR_STATUS.INVALID_PORT);
          return;
        }
        expect(result.sessionId).toMatch(HOST_ID);
        expect(isValidSessionId(result.sessionId)).toBe(true);
        expect(result.port).toBeGreaterThanOrEqual(1024);
        expect(result.port).toBeLessThanOrEqual(65535);
        const dash = label.indexOf('-');
        expect(Number(label.slice(0, dash))).toBe(result.port);
        expect(label.slice(dash + 1)).toBe(result.sessionId);
      }),
      RUNS,
    );
  });

  it('is blind to letter case, a :port suffix and one trailing dot; an IPv6 literal is never a preview', () => {
    fc.assert(
      fc.property(hostArb, domainArb, fc.constantFrom(':80', ':8443', ':'), (host, domain, suffix) => {
        const base = outcome(matchPreviewHost(host, domain));
        expect(outcome(matchPreviewHost(host.toUpperCase(), domain))).toEqual(base);
        expect(outcome(matchPreviewHost(host.toLowerCase(), domain))).toEqual(base);
        if (!host.includes(':') && !host.startsWith('[')) {
          expect(outcome(matchPreviewHost(`${host}${suffix}`, domain))).toEqual(base);
          if (!host.endsWith('.')) expect(outcome(matchPreviewHost(`${host}.`, domain))).toEqual(base);
        }
        expect(matchPreviewHost(`[${host}`, domain)).toBeUndefined();
      }),
      RUNS,
    );
  });

  it('every host-routable id is reached on every port in range, and only there', () => {
    expect(matchPreviewHost('03000-abc.preview.test', 'preview.test')).toBeUndefined();
    const routableId = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,55}[a-z0-9])?$/);
    fc.assert(
      fc.property(routableId, fc.integer({ min: 0, max: 99_999 }), domainArb, (sessionId, port, domain) => {
        expect(isHostRoutableSessionId(sessionId)).toBe(true);
        const result = outcome(
          matchPreviewHost(`${port}-${sessionId}.${domain}`, normalizePreviewDomain(domain)),
        );
        // A port starting with 0 (only 0 itself here) is not a preview label at all.
        if (port === 0) expect(result).toBeUndefined();
        else if (port < 1024 || port > 65535) expect(result).toEqual({ code: 'INVALID_PORT' });
        else expect(result).toEqual({ sessionId, port });
      }),
      RUNS,
    );
  });
});

// A key as it arrives over HTTP: Node reads header values as latin1, one char per byte.
const latin1String = fc
  .uint8Array({ minLength: 1, maxLength: 40 })
  .map((bytes) => Buffer.from(bytes).toString('latin1'));
const keyArb = fc.oneof(
  fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
  latin1String,
);

/** Values a client could present that are close to the key without being it. */
function nearMisses(key: string): unknown[] {
  return [
    `${key}x`,
    `x${key}`,
    key.slice(0, -1),
    key.slice(1),
    ` ${key}`,
    `${key} `,
    `${key}, ${key}`,
    key.toUpperCase(),
    key.toLowerCase(),
    key.normalize('NFD'),
    key.normalize('NFKC'),
    `${key}\u0000`,
    Buffer.from(key, 'utf8').toString('latin1'),
    '',
    [key],
    Buffer.from(key),
    { toString: () => key },
    undefined,
    null,
    0,
  ];
}

describe('createKeyMatcher', () => {
  it('accepts exactly the configured key, nothing near it', () => {
    fc.assert(
      fc.property(keyArb, fc.oneof(keyArb, fc.anything()), (key, other) => {
        const matches = createKeyMatcher(key);
        expect(matches(key)).toBe(true);
        for (const presented of [other, ...nearMisses(key)]) {
          expect(matches(presented)).toBe(presented === key);
        }
      }),
      { numRuns: 800 },
    );
  });

  // JavaScript strings may hold unpaired surrogates (a library caller can pass any string); they are
  // distinct keys and must not match one another.
  it('accepts exactly the configured key, also for strings with unpaired surrogates', () => {
    const oddUnit = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ufffd');
    const surrogateString = fc.string({
      unit: fc.oneof(oddUnit, fc.constantFrom('a', 'b')),
      minLength: 1,
      maxLength: 4,
    });
    // The presented value is the key with its odd units swapped for other odd ones, or any such string.
    const keyAndPresented = surrogateString.chain((key) =>
      fc.tuple(
        fc.constant(key),
        fc.oneof(
          fc
            .array(oddUnit, { minLength: key.length, maxLength: key.length })
            .map((swaps) =>
              [...key].map((unit, i) => (/[\ud800-\udfff\ufffd]/.test(unit) ? swaps[i] : unit)).join(''),
            ),
          surrogateString,
        ),
      ),
    );
    fc.assert(
      fc.property(keyAndPresented, ([key, presented]) => {
        expect(createKeyMatcher(key)(presented)).toBe(presented === key);
      }),
      { numRuns: 800 },
    );
  });

  it('refuses to be built without a key', () => {
    expect(() => createKeyMatcher('')).toThrow();
  });

  it('the middleware lets a request through exactly when its key header is the key, else the contract 403', () => {
    const presentedArb = fc.option(fc.oneof(keyArb, fc.array(keyArb, { maxLength: 2 })), { nil: undefined });
    fc.assert(
      fc.property(keyArb, presentedArb, fc.boolean(), (key, other, useKey) => {
        const presented = useKey ? key : other;
        const middleware = requireInternalKey(key);
        const errors: unknown[] = [];
        const req = { headers: { 'x-internal-service-key': presented } } as unknown as Request;
        middleware(req, {} as Response, (error?: unknown) => {
          errors.push(error);
        });
        expect(errors).toHaveLength(1);
        if (presented === key) expect(errors[0]).toBeUndefined();
        else expectContractError(errors[0], 'FORBIDDEN');
      }),
      { numRuns: 800 },
    );
  });
});
