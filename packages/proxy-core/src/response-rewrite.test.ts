import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  rewriteLocation,
  rewriteResponseHeaders,
  scopeSetCookiePath,
  slashRedirectLocation,
} from './response-rewrite.js';

const prefix = '/previews/abc';

describe('rewriteLocation', () => {
  it.each([
    ['/login', '/previews/abc/login'],
    ['/', '/previews/abc/'],
    ['/a?b#c', '/previews/abc/a?b#c'],
    ['/?next=/x', '/previews/abc/?next=/x'],
    ['/#top', '/previews/abc/#top'],
    ['/a%2Fb//c', '/previews/abc/a%2Fb//c'],
    ['/previews/abcd', '/previews/abc/previews/abcd'],
    ['/previews/abc2/x', '/previews/abc/previews/abc2/x'],
    ['/previews', '/previews/abc/previews'],
    ['/Previews/abc/x', '/previews/abc/Previews/abc/x'],
  ])('prefixes root-relative %j -> %j', (location, expected) => {
    expect(rewriteLocation(location, prefix)).toBe(expected);
  });

  it.each([
    '//evil.test/x',
    '/\\evil.test/x',
    'http://app.test/login',
    'https://app.test/',
    'mailto:a@b.test',
    'login',
    './x',
    '../x',
    '?page=2',
    '#frag',
    '',
    '/previews/abc',
    '/previews/abc/',
    '/previews/abc/login?x=1',
    '/previews/abc?x=1',
    '/previews/abc#top',
  ])('keeps %j', (location) => {
    expect(rewriteLocation(location, prefix)).toBe(location);
  });

  it('accepts a prefix with a trailing slash', () => {
    expect(rewriteLocation('/login', '/previews/abc/')).toBe('/previews/abc/login');
  });

  it('leaves everything alone with an empty prefix', () => {
    expect(rewriteLocation('/login', '')).toBe('/login');
  });
});

describe('scopeSetCookiePath', () => {
  it.each([
    ['sid=1; Path=/', 'sid=1; Path=/previews/abc'],
    ['sid=1; Path=/app', 'sid=1; Path=/previews/abc/app'],
    ['sid=1; Path=/app/', 'sid=1; Path=/previews/abc/app/'],
    ['sid=1; path=/', 'sid=1; path=/previews/abc'],
    ['sid=1; PATH=/x', 'sid=1; PATH=/previews/abc/x'],
    ['sid=1;Path=/x;HttpOnly', 'sid=1;Path=/previews/abc/x;HttpOnly'],
    ['sid=1 ;  Path = /x  ; Secure', 'sid=1 ;  Path = /previews/abc/x  ; Secure'],
    ['sid=1; Path=\t/x', 'sid=1; Path=\t/previews/abc/x'],
    [
      'sid=1; Domain=app.test; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly; SameSite=Lax',
      'sid=1; Domain=app.test; Path=/previews/abc; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly; SameSite=Lax',
    ],
    ['sid=1; Path=/a; Path=/b', 'sid=1; Path=/previews/abc/a; Path=/previews/abc/b'],
    ['sid=1; Path=/previews/abc', 'sid=1; Path=/previews/abc'],
    ['sid=1; Path=/previews/abc/x', 'sid=1; Path=/previews/abc/x'],
    ['sid=1; Path=/previews/abcd', 'sid=1; Path=/previews/abc/previews/abcd'],
    // Values RFC 6265 ignores (default-path) get the session root, as a missing Path does.
    ['sid=1; Path=', 'sid=1; Path=/previews/abc'],
    ['sid=1; Path=  ', 'sid=1; Path=  /previews/abc'],
    ['sid=1; Path=app', 'sid=1; Path=/previews/abc'],
    ['sid=1; Path', 'sid=1; Path=/previews/abc'],
    ['sid=1; Path ; Secure', 'sid=1; Path=/previews/abc ; Secure'],
    // No Path: one is added.
    ['sid=1', 'sid=1; Path=/previews/abc'],
    ['sid=1; HttpOnly', 'sid=1; HttpOnly; Path=/previews/abc'],
    ['sid=1;', 'sid=1; Path=/previews/abc'],
    ['sid=1; Secure;  ', 'sid=1; Secure; Path=/previews/abc'],
    ['sid=', 'sid=; Path=/previews/abc'],
    ['sid=1; Max-Age=0; Paths=/x', 'sid=1; Max-Age=0; Paths=/x; Path=/previews/abc'],
    // The cookie's own name=value is never an attribute, even when named Path.
    ['Path=/x', 'Path=/x; Path=/previews/abc'],
    ['Path=/x; Path=/', 'Path=/x; Path=/previews/abc'],
    ['a=b=c; Path=/', 'a=b=c; Path=/previews/abc'],
  ])('%j -> %j', (setCookie, expected) => {
    expect(scopeSetCookiePath(setCookie, prefix)).toBe(expected);
  });

  it.each(['', '   '])('keeps the empty value %j', (setCookie) => {
    expect(scopeSetCookiePath(setCookie, prefix)).toBe(setCookie);
  });

  it('stays linear on a long run of trailing spaces', () => {
    const setCookie = `a=1${' '.repeat(100_000)}x`;
    const started = performance.now();
    expect(scopeSetCookiePath(setCookie, prefix)).toBe(`${setCookie}; Path=/previews/abc`);
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('rewriteResponseHeaders', () => {
  it('rewrites Location and every Set-Cookie, nothing else', () => {
    const headers: IncomingHttpHeaders = {
      location: '/login?next=%2F',
      'set-cookie': ['a=1; Path=/', 'b=2', 'c=3; Path=/previews/abc/x; Domain=app.test'],
      'content-location': '/doc',
      link: '</style.css>; rel=preload',
      'content-type': 'text/html',
    };
    rewriteResponseHeaders(headers, prefix);
    expect(headers).toEqual({
      location: '/previews/abc/login?next=%2F',
      'set-cookie': [
        'a=1; Path=/previews/abc',
        'b=2; Path=/previews/abc',
        'c=3; Path=/previews/abc/x; Domain=app.test',
      ],
      'content-location': '/doc',
      link: '</style.css>; rel=preload',
      'content-type': 'text/html',
    });
  });

  it('accepts a single Set-Cookie stored as a string', () => {
    const headers = { 'set-cookie': 'a=1; Path=/' } as unknown as IncomingHttpHeaders;
    rewriteResponseHeaders(headers, prefix);
    expect(headers['set-cookie']).toEqual(['a=1; Path=/previews/abc']);
  });

  it('adds nothing to a response without them', () => {
    const headers: IncomingHttpHeaders = { 'content-type': 'text/plain' };
    rewriteResponseHeaders(headers, prefix);
    expect(headers).toEqual({ 'content-type': 'text/plain' });
  });

  it('keeps an empty Set-Cookie list and an empty Location', () => {
    const headers: IncomingHttpHeaders = { location: '', 'set-cookie': [] };
    rewriteResponseHeaders(headers, prefix);
    expect(headers).toEqual({ location: '', 'set-cookie': [] });
  });
});

describe('slashRedirectLocation', () => {
  it.each<[string, string, string, string | undefined]>([
    ['GET', '/previews/abc', '/previews', '/previews/abc/'],
    ['HEAD', '/previews/abc', '/previews', '/previews/abc/'],
    ['GET', '/previews/abc?x=1&y=%26', '/previews', '/previews/abc/?x=1&y=%26'],
    ['GET', '/previews/abc?', '/previews', '/previews/abc/?'],
    ['GET', '/previews/abc?next=/a/b', '/previews', '/previews/abc/?next=/a/b'],
    ['GET', '/previews/%61bc', '/previews', '/previews/%61bc/'],
    ['GET', '/internal-previews/proxy/s1', '/internal-previews/proxy', '/internal-previews/proxy/s1/'],
    ['GET', '/mount/previews/abc', '/mount/previews', '/mount/previews/abc/'],
    ['GET', '/previews/abc/', '/previews', undefined],
    ['GET', '/previews/abc/?x=1', '/previews', undefined],
    ['GET', '/previews/abc/x', '/previews', undefined],
    ['GET', '/previews/', '/previews', undefined],
    ['GET', '/previews/?x', '/previews', undefined],
    ['GET', '/previews', '/previews', undefined],
    ['GET', '/previewsabc', '/previews', undefined],
    ['GET', '/other/abc', '/previews', undefined],
    ['POST', '/previews/abc', '/previews', undefined],
    ['PUT', '/previews/abc', '/previews', undefined],
    ['OPTIONS', '/previews/abc', '/previews', undefined],
    ['get', '/previews/abc', '/previews', undefined],
  ])('%s %s (route %s) -> %j', (method, url, routePrefix, expected) => {
    expect(slashRedirectLocation(method, url, routePrefix)).toBe(expected);
  });
});
