import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasMalformedPercentEncoding, splitPreviewPath } from './forward-path.js';
import { applyForwardedHeaders, type ForwardedContext, portOfHost } from './forwarded-headers.js';
import { INTERNAL_KEY_HEADER, stripRequestHeaders, upstreamRequestHeaders } from './headers.js';
import { forwardableResponseHeaders } from './http-forward.js';
import { rewriteLocation, scopeSetCookiePath, slashRedirectLocation } from './response-rewrite.js';
import { normalizeRemoteAddress } from './trusted-proxies.js';

// Properties over generated input: each one states what must hold for every value, not for a few picked
// examples, so that a URL or header nobody thought of cannot slip through.

const RUNS = { numRuns: 1500 };
const PREFIXES = ['/previews', '/internal-previews/proxy'] as const;

// The pieces attackers and sloppy clients put in paths: traversal (raw and encoded, any case), encoded
// separators and NUL, malformed escapes, raw and encoded UTF-8, overlong ids.
const TRICKY_FRAGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2f',
  '%2F',
  '%5c',
  '\\',
  '%00',
  '%',
  '%g1',
  '%2',
  '%%',
  '%25',
  '%3f',
  '?',
  '#',
  '/',
  '//',
  ';',
  '+',
  ' ',
  'é',
  '%C3%A9',
  '%E2%80%AE',
  '\u202e',
  '😀',
  '\u0000',
  'a'.repeat(128),
  'b'.repeat(129),
  'abc',
  'A-b_c.9',
  'session-1',
] as const;

const fragment = fc.oneof(
  fc.constantFrom(...TRICKY_FRAGMENTS),
  fc.string({ unit: 'binary-ascii', maxLength: 6 }),
  fc.string({ unit: 'grapheme', maxLength: 3 }),
);
const pathish = fc.array(fragment, { maxLength: 8 }).map((parts) => parts.join(''));
const prefixArb = fc.constantFrom(...PREFIXES);

// Mostly URLs under a prefix (the interesting case), some near misses and some anything-goes strings.
const urlArb = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(prefixArb, pathish).map(([prefix, rest]) => `${prefix}/${rest}`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('/preview', '/previewsx', '/Previews', '', '//previews', 'http://x'), pathish)
      .map(([head, rest]) => `${head}/${rest}`),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

/** The raw session segment and the rest, split by hand: the reference the implementation is checked against. */
function referenceSplit(url: string, prefix: string): { raw: string; rest: string } | undefined {
  if (!url.startsWith(`${prefix}/`)) return undefined;
  const after = url.slice(prefix.length + 1);
  const end = after.search(/[/?]/);
  return end === -1 ? { raw: after, rest: '' } : { raw: after.slice(0, end), rest: after.slice(end) };
}

describe('splitPreviewPath', () => {
  it('never throws; splits exactly the URLs under the prefix, keeping the rest byte for byte', () => {
    fc.assert(
      fc.property(urlArb, prefixArb, (url, prefix) => {
        const split = splitPreviewPath(url, prefix);
        const expected = referenceSplit(url, prefix);
        if (expected === undefined) {
          expect(split).toBeUndefined();
          return;
        }
        expect(split).toBeDefined();
        if (split === undefined) return;
        expect(split.rawSessionId).toBe(expected.raw);
        expect(split.forwardPath.startsWith('/')).toBe(true);
        // Only a missing leading slash may be added: nothing decoded, merged or dropped.
        expect(split.forwardPath).toBe(expected.rest.startsWith('/') ? expected.rest : `/${expected.rest}`);
        expect(`${prefix}/${split.rawSessionId}${expected.rest}`).toBe(url);
      }),
      RUNS,
    );
  });

  it('a valid id followed by any rest keeps that id: the rest cannot move the request to another session', () => {
    const id = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}$/);
    const rest = fc.oneof(
      fc.constant(''),
      pathish.map((p) => `/${p}`),
      pathish.map((p) => `?${p}`),
    );
    fc.assert(
      fc.property(prefixArb, id, rest, (prefix, sessionId, tail) => {
        const split = splitPreviewPath(`${prefix}/${sessionId}${tail}`, prefix);
        expect(split?.rawSessionId).toBe(sessionId);
        expect(split?.forwardPath).toBe(tail.startsWith('/') ? tail : `/${tail}`);
      }),
      RUNS,
    );
  });
});

describe('hasMalformedPercentEncoding', () => {
  it('is true exactly when the path part has a % not followed by two hex digits', () => {
    fc.assert(
      fc.property(urlArb, (url) => {
        const queryAt = url.indexOf('?');
        const path = queryAt === -1 ? url : url.slice(0, queryAt);
        expect(hasMalformedPercentEncoding(url)).toBe(/%(?![0-9A-Fa-f]{2})/.test(path));
      }),
      RUNS,
    );
  });

  it('never flags what encodeURIComponent produces, in any segment', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 5 }), (segments) => {
        expect(hasMalformedPercentEncoding(`/${segments.map(encodeURIComponent).join('/')}`)).toBe(false);
      }),
      RUNS,
    );
  });
});

describe('slashRedirectLocation', () => {
  const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'get', 'head');
  const base = fc.constantFrom('', '/base', '/a/b');

  it('redirects only GET/HEAD on a bare id, to the same URL plus one slash, which the container sees alike', () => {
    fc.assert(
      fc.property(methods, base, prefixArb, urlArb, (method, basePath, prefix, url) => {
        const full = `${basePath}${url}`;
        const routePrefix = `${basePath}${prefix}`;
        const location = slashRedirectLocation(method, full, routePrefix);
        const split = referenceSplit(full, routePrefix);
        const applies =
          (method === 'GET' || method === 'HEAD') &&
          split !== undefined &&
          split.raw !== '' &&
          !split.rest.startsWith('/');
        if (!applies || split === undefined) {
          expect(location).toBeUndefined();
          return;
        }
        expect(location).toBe(`${routePrefix}/${split.raw}/${split.rest}`);
        if (location === undefined) return;
        // Never another host (`//evil`), never a loop, and the container receives the very same target.
        expect(location.startsWith(`${routePrefix}/`)).toBe(true);
        expect(location.startsWith('//')).toBe(false);
        expect(slashRedirectLocation(method, location, routePrefix)).toBeUndefined();
        expect(splitPreviewPath(location, routePrefix)?.forwardPath).toBe(
          splitPreviewPath(full, routePrefix)?.forwardPath,
        );
      }),
      RUNS,
    );
  });
});

// Header names as a client could spell them, the x-forwarded family in any case included.
const FORWARDED_NAMES = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'forwarded',
] as const;
const forwardedName = fc.constantFrom(...FORWARDED_NAMES).chain((name) => fc.mixedCase(fc.constant(name)));
const otherName = fc.oneof(
  fc.constantFrom('user-agent', 'accept', 'cookie', 'x-real-ip', 'x-forwarded', 'forwarded-for', 'via'),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/),
);
const headerValue = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '1.2.3.4',
    '1.2.3.4, 5.6.7.8',
    'https',
    '443',
    'evil.test',
    'for=1.2.3.4;proto=https',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 20 }),
);
const headerValueOrList = fc.oneof(headerValue, fc.array(headerValue, { minLength: 1, maxLength: 3 }));
const hostValue = fc.option(
  fc.oneof(
    fc.constantFrom('example.com', 'example.com:8080', '[::1]:3000', '3000-abc.preview.test', 'a:b:c'),
    fc.string({ unit: 'binary-ascii', maxLength: 20 }),
  ),
  { nil: undefined },
);
const addressArb = fc.option(
  fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    fc.ipV4().map((ip) => `::ffff:${ip}`),
    fc.constantFrom('garbage', ''),
  ),
  { nil: undefined },
);

const headersArb = fc
  .tuple(
    fc.array(fc.tuple(forwardedName, headerValueOrList), { maxLength: 6 }),
    fc.array(fc.tuple(otherName, headerValueOrList), { maxLength: 4 }),
    hostValue,
  )
  .map(([forwarded, others, host]) => {
    const headers: IncomingHttpHeaders = {};
    for (const [name, value] of [...others, ...forwarded]) headers[name] = value;
    if (host !== undefined) headers.host = host;
    return headers;
  });

const contextArb = (trusted: boolean) =>
  fc.record({
    remoteAddress: addressArb,
    encrypted: fc.boolean(),
    prefix: fc.constantFrom('', '/previews/abc', '/internal-previews/proxy/s-1'),
    trusted: fc.constant(trusted),
    target: fc.record({ host: fc.oneof(fc.ipV4(), fc.ipV6()), port: fc.integer({ min: 1, max: 65535 }) }),
    preserveHost: fc.boolean(),
  });

function isForwardedName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-forwarded-') || lower === 'forwarded';
}

function withoutForwarded(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !isForwardedName(name)));
}

describe('applyForwardedHeaders', () => {
  it('from an untrusted peer: what the client sent in X-Forwarded-* / Forwarded has no effect at all', () => {
    fc.assert(
      fc.property(headersArb, contextArb(false), (headers, context) => {
        const spoofed = structuredClone(headers);
        const clean = withoutForwarded(structuredClone(headers));
        applyForwardedHeaders(spoofed, context);
        applyForwardedHeaders(clean, context);
        expect(spoofed).toEqual(clean);

        const names = Object.keys(spoofed).filter(isForwardedName);
        expect(names.every((name) => name === name.toLowerCase())).toBe(true);
        expect(spoofed.forwarded).toBeUndefined();
        const peer =
          context.remoteAddress === undefined ? undefined : normalizeRemoteAddress(context.remoteAddress);
        expect(spoofed['x-forwarded-for']).toBe(peer);
        expect(spoofed['x-forwarded-proto']).toBe(context.encrypted ? 'https' : 'http');
        expect(spoofed['x-forwarded-port']).toMatch(/^\d{1,5}$/);
        expect(spoofed['x-forwarded-prefix']).toBe(context.prefix === '' ? undefined : context.prefix);
        const allowed = [
          'x-forwarded-for',
          'x-forwarded-host',
          'x-forwarded-proto',
          'x-forwarded-port',
          'x-forwarded-prefix',
        ];
        expect(names.filter((name) => !allowed.includes(name))).toEqual([]);
      }),
      RUNS,
    );
  });

  it('from a trusted peer: the incoming chain is kept and this peer appended last', () => {
    fc.assert(
      fc.property(headersArb, contextArb(true), (headers, context) => {
        const incoming = headers['x-forwarded-for'];
        const incomingText = Array.isArray(incoming) ? incoming.join(', ') : incoming;
        const chain = (incomingText ?? '')
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== '');
        const hadForwarded = (() => {
          const value = headers.forwarded;
          const text = Array.isArray(value) ? value.join(', ') : value;
          return text !== undefined && text.trim() !== '';
        })();
        applyForwardedHeaders(headers, context);
        const peer =
          context.remoteAddress === undefined ? undefined : normalizeRemoteAddress(context.remoteAddress);
        const expected = peer === undefined ? chain : [...chain, peer];
        expect(headers['x-forwarded-for']).toBe(expected.length === 0 ? undefined : expected.join(', '));
        // Forwarded is extended, never started.
        expect(headers.forwarded !== undefined).toBe(hadForwarded);
      }),
      RUNS,
    );
  });

  it('sets Host to the target exactly when the host is not preserved; a misuse changes nothing', () => {
    fc.assert(
      fc.property(headersArb, contextArb(false), fc.boolean(), (headers, context, dropTarget) => {
        const before = structuredClone(headers);
        const { target, ...rest } = context;
        const used: ForwardedContext = dropTarget ? rest : context;
        if (dropTarget && !context.preserveHost) {
          expect(() => applyForwardedHeaders(headers, used)).toThrow(TypeError);
          expect(headers).toEqual(before);
          return;
        }
        applyForwardedHeaders(headers, used);
        if (context.preserveHost) expect(headers.host).toEqual(before.host);
        else
          expect(headers.host).toBe(
            target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`,
          );
      }),
      RUNS,
    );
  });
});

describe('portOfHost', () => {
  it('is either nothing or the digits the host ends with after its last colon', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 30 }), hostValue.map(String)),
        (host) => {
          const port = portOfHost(host);
          if (port === undefined) return;
          expect(port).toMatch(/^\d{1,5}$/);
          expect(host.endsWith(`:${port}`)).toBe(true);
        },
      ),
      RUNS,
    );
  });
});

const HOP_BY_HOP_RESPONSE = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'te',
  'trailer',
  'upgrade',
  'transfer-encoding',
];
const CUSTOM_NAMES = [
  'x-a',
  'x-b',
  'X-Custom',
  'content-type',
  'location',
  'set-cookie',
  'cache-control',
  'close',
];

const responseName = fc.oneof(
  fc.constantFrom(...HOP_BY_HOP_RESPONSE, ...CUSTOM_NAMES).chain((name) => fc.mixedCase(fc.constant(name))),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/),
);
// A Connection value naming fields of the same response (and hop-by-hop ones, and junk), any spacing.
const connectionValue = fc
  .array(
    fc.oneof(
      fc.constantFrom(...HOP_BY_HOP_RESPONSE, ...CUSTOM_NAMES, 'close', '', ' '),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/),
    ),
    { maxLength: 4 },
  )
  .chain((tokens) => fc.constantFrom(tokens.join(','), tokens.join(' , '), tokens.join(', ').toUpperCase()));
const responseValue = fc.oneof(
  fc.constantFrom(
    '/login',
    '//evil.test/x',
    '/\\evil',
    'https://a.test/',
    'id=1',
    'id=1; Path=/',
    'a=b; path=/x',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 20 }),
  // Non-ASCII bytes: they must leave exactly as they came.
  fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const rawResponseHeaders = fc
  .array(
    fc.oneof(
      fc.tuple(responseName, responseValue),
      fc.tuple(fc.mixedCase(fc.constant('connection')), connectionValue),
    ),
    { maxLength: 10 },
  )
  .chain((pairs) => fc.tuple(fc.constant(pairs), fc.boolean()));

describe('forwardableResponseHeaders', () => {
  it('never emits a hop-by-hop field or one its Connection names; keeps every other field, in order', () => {
    fc.assert(
      fc.property(rawResponseHeaders, fc.constantFrom('', '/previews/abc'), ([pairs, asBuffers], prefix) => {
        const raw = pairs.flatMap(
          ([name, value]): Array<Buffer | string> =>
            asBuffers ? [Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1')] : [name, value],
        );
        const out = forwardableResponseHeaders(raw, prefix);
        expect(out.length % 2).toBe(0);

        const named = new Set(
          pairs
            .filter(([name]) => name.toLowerCase() === 'connection')
            .flatMap(([, value]) => value.split(','))
            .map((token) => token.trim().toLowerCase())
            .filter((token) => token !== ''),
        );
        const outNames = out.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
        for (const name of outNames) {
          expect(HOP_BY_HOP_RESPONSE).not.toContain(name);
          expect(named.has(name)).toBe(false);
        }

        const expected = pairs
          .filter(([name]) => {
            const lower = name.toLowerCase();
            return !HOP_BY_HOP_RESPONSE.includes(lower) && !named.has(lower);
          })
          .flatMap(([name, value]) => {
            const lower = name.toLowerCase();
            if (lower === 'location') return [name, rewriteLocation(value, prefix)];
            if (lower === 'set-cookie') return [name, scopeSetCookiePath(value, prefix)];
            return [name, value];
          });
        expect(out).toEqual(expected);
      }),
      RUNS,
    );
  });
});

describe('stripRequestHeaders', () => {
  it('leaves no hop-by-hop field, Expect, internal key or Connection-named field, and nothing else is touched', () => {
    // Written out here rather than imported: the test states what must go, the code is checked against it.
    const alwaysRemoved = [
      'connection',
      'keep-alive',
      'proxy-connection',
      'proxy-authorization',
      'te',
      'trailer',
      'upgrade',
      'expect',
      INTERNAL_KEY_HEADER,
    ];
    const requestName = fc.oneof(
      fc.constantFrom(...alwaysRemoved, 'transfer-encoding', 'x-a', 'x-b', 'cookie'),
      fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
    );
    fc.assert(
      fc.property(
        fc.dictionary(requestName, fc.string({ unit: 'binary-ascii', maxLength: 10 })),
        connectionValue,
        (input, connection) => {
          const headers: IncomingHttpHeaders = { ...input, connection };
          stripRequestHeaders(headers);
          const named = connection
            .split(',')
            .map((token) => token.trim().toLowerCase())
            .filter((token) => token !== '' && token !== 'transfer-encoding');
          const removed = new Set([...alwaysRemoved, ...named]);
          const expected = Object.fromEntries(Object.entries(input).filter(([name]) => !removed.has(name)));
          expect(headers).toEqual(expected);
        },
      ),
      RUNS,
    );
  });
});

describe('upstreamRequestHeaders', () => {
  // The one-pass list is an optimisation of the two in-place steps: the steps are the specification.
  it('sends exactly the fields stripRequestHeaders + applyForwardedHeaders leave, Transfer-Encoding aside', () => {
    const extraName = fc.constantFrom(
      'connection',
      'keep-alive',
      'te',
      'upgrade',
      'expect',
      'transfer-encoding',
      INTERNAL_KEY_HEADER,
      'host',
      'cookie',
      'x-a',
      'x-forwarded-for',
      'x-forwarded-server',
      'forwarded',
      'close',
    );
    const requestHeadersArb = fc
      .tuple(
        headersArb,
        fc.dictionary(extraName, fc.string({ unit: 'binary-ascii', maxLength: 12 })),
        fc.option(
          fc.oneof(
            connectionValue,
            fc.constantFrom('keep-alive', 'Keep-Alive', 'close', 'host', 'x-forwarded-for, x-a'),
          ),
          { nil: undefined },
        ),
      )
      .map(([headers, extra, connection]) => {
        const all: IncomingHttpHeaders = { ...headers, ...extra };
        if (connection !== undefined) all.connection = connection;
        return all;
      });
    fc.assert(
      fc.property(requestHeadersArb, fc.boolean().chain(contextArb), (headers, context) => {
        const before = structuredClone(headers);
        const list = upstreamRequestHeaders(headers, context);
        expect(headers).toEqual(before);

        const inPlace = structuredClone(headers);
        stripRequestHeaders(inPlace);
        applyForwardedHeaders(inPlace, context);
        delete inPlace['transfer-encoding'];
        const expected = Object.entries(inPlace).filter(([, value]) => value !== undefined);
        const sent: [string, string | string[]][] = [];
        for (let i = 0; i < list.length; i += 2) sent.push([list[i] as string, list[i + 1] as string]);
        const byName = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);
        expect(sent.sort(byName)).toEqual(expected.sort(byName));
      }),
      RUNS,
    );
  });
});

describe('rewriteLocation and scopeSetCookiePath', () => {
  const prefix = fc.constantFrom('/previews/abc', '/previews/abc/', '/internal-previews/proxy/s.1');
  const isUnder = (path: string, base: string) =>
    path.startsWith(base) && ['', '/', '?', '#'].includes(path.charAt(base.length));

  it('a Location either stays as it was or gains the prefix; it never becomes another host', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          responseValue,
          pathish.map((p) => `/${p}`),
        ),
        prefix,
        (location, routePrefix) => {
          const base = routePrefix.replace(/\/$/, '');
          const out = rewriteLocation(location, routePrefix);
          expect([location, `${base}${location}`]).toContain(out);
          if (!(location.startsWith('//') || location.startsWith('/\\'))) {
            expect(out.startsWith('//') || out.startsWith('/\\')).toBe(false);
          }
          if (location.startsWith('/') && !location.startsWith('//') && !location.startsWith('/\\')) {
            expect(isUnder(out, base)).toBe(true);
          }
        },
      ),
      RUNS,
    );
  });

  it('every Path of a scoped cookie is under the prefix, one is always present, the pair is untouched', () => {
    const attribute = fc.oneof(
      fc.constantFrom('Path=/', 'path=/x', ' PATH = /a/b ', 'Path', 'Path=', 'Path=x', 'Path=/previews/abcd'),
      fc.constantFrom('Secure', 'HttpOnly', 'Domain=a.test', 'SameSite=Lax', 'Max-Age=0', ''),
      fc.string({ unit: 'binary-ascii', maxLength: 12 }).filter((s) => !s.includes(';')),
    );
    const cookie = fc
      .tuple(fc.stringMatching(/^[A-Za-z]{1,6}=[A-Za-z0-9]{0,6}$/), fc.array(attribute, { maxLength: 5 }))
      .map(([pair, attributes]) => [pair, ...attributes].join(';'));
    fc.assert(
      fc.property(cookie, prefix, (setCookie, routePrefix) => {
        const base = routePrefix.replace(/\/$/, '');
        const out = scopeSetCookiePath(setCookie, routePrefix);
        const [pair, ...attributes] = out.split(';');
        expect(pair).toBe(setCookie.split(';')[0]);
        const paths = attributes
          .map((attribute) => {
            const equalsAt = attribute.indexOf('=');
            const name = equalsAt === -1 ? attribute : attribute.slice(0, equalsAt);
            return {
              name: name.trim().toLowerCase(),
              value: equalsAt === -1 ? '' : attribute.slice(equalsAt + 1),
            };
          })
          .filter(({ name }) => name === 'path');
        expect(paths.length).toBeGreaterThan(0);
        for (const { value } of paths) expect(isUnder(value.trim(), base)).toBe(true);
      }),
      RUNS,
    );
  });
});
