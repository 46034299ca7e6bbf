import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { applyForwardedHeaders, type ForwardedContext, portOfHost } from './forwarded-headers.js';

const base: ForwardedContext = {
  remoteAddress: '203.0.113.7',
  encrypted: false,
  prefix: '/previews/abc',
  trusted: false,
  preserveHost: true,
};

function apply(headers: IncomingHttpHeaders, context: Partial<ForwardedContext> = {}): IncomingHttpHeaders {
  applyForwardedHeaders(headers, { ...base, ...context });
  return headers;
}

// `undefined` in `expected` means the field must be absent, not merely empty.
function expectHeaders(headers: IncomingHttpHeaders, expected: Partial<IncomingHttpHeaders>): void {
  for (const [name, value] of Object.entries(expected)) {
    if (value === undefined) expect(headers).not.toHaveProperty(name);
    else expect(headers[name]).toEqual(value);
  }
}

const spoofed: IncomingHttpHeaders = {
  host: 'preview.example.test',
  'x-forwarded-for': '1.1.1.1, 2.2.2.2',
  'x-forwarded-host': 'evil.test',
  'x-forwarded-proto': 'https',
  'x-forwarded-port': '8443',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-server': 'spoof',
  'X-Forwarded-Ssl': 'on',
  forwarded: 'for=1.1.1.1;proto=https',
  accept: '*/*',
};

describe('applyForwardedHeaders from an untrusted peer', () => {
  it('sets what this hop sees', () => {
    expect(apply({ host: 'preview.example.test', accept: '*/*' })).toEqual({
      host: 'preview.example.test',
      accept: '*/*',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-host': 'preview.example.test',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '80',
      'x-forwarded-prefix': '/previews/abc',
    });
  });

  it('drops every spoofed X-Forwarded-* and Forwarded, keeps other fields', () => {
    expect(apply({ ...spoofed })).toEqual({
      host: 'preview.example.test',
      accept: '*/*',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-host': 'preview.example.test',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '80',
      'x-forwarded-prefix': '/previews/abc',
    });
  });

  it.each<[string, IncomingHttpHeaders, Partial<ForwardedContext>, Partial<IncomingHttpHeaders>]>([
    [
      'TLS: https and 443',
      { host: 'a.test' },
      { encrypted: true },
      { 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' },
    ],
    [
      'a Host with a port',
      { host: 'a.test:8080' },
      {},
      { 'x-forwarded-host': 'a.test:8080', 'x-forwarded-port': '8080' },
    ],
    [
      'TLS and a Host with a port',
      { host: 'a.test:4443' },
      { encrypted: true },
      { 'x-forwarded-port': '4443' },
    ],
    [
      'a bracketed IPv6 Host',
      { host: '[::1]:3000' },
      {},
      { 'x-forwarded-host': '[::1]:3000', 'x-forwarded-port': '3000' },
    ],
    ['a bracketed IPv6 Host, no port', { host: '[::1]' }, {}, { 'x-forwarded-port': '80' }],
    [
      'no Host (HTTP/1.0)',
      {},
      {},
      { host: undefined, 'x-forwarded-host': undefined, 'x-forwarded-port': '80' },
    ],
    [
      'an empty Host',
      { host: '' },
      {},
      { host: '', 'x-forwarded-host': undefined, 'x-forwarded-port': '80' },
    ],
    ['an IPv6 peer', {}, { remoteAddress: '2001:db8::7' }, { 'x-forwarded-for': '2001:db8::7' }],
    ['an IPv4-mapped peer', {}, { remoteAddress: '::ffff:127.0.0.1' }, { 'x-forwarded-for': '127.0.0.1' }],
    ['a peer with a zone', {}, { remoteAddress: 'fe80::1%eth0' }, { 'x-forwarded-for': 'fe80::1%eth0' }],
    [
      'an unknown peer',
      { 'x-forwarded-for': '6.6.6.6' },
      { remoteAddress: undefined },
      { 'x-forwarded-for': undefined },
    ],
    [
      'another prefix',
      {},
      { prefix: '/internal-previews/proxy/s1' },
      { 'x-forwarded-prefix': '/internal-previews/proxy/s1' },
    ],
    ['no prefix', { 'x-forwarded-prefix': '/x' }, { prefix: '' }, { 'x-forwarded-prefix': undefined }],
  ])('%s', (_name, headers, context, expected) => {
    expectHeaders(apply(headers, context), expected);
  });
});

describe('applyForwardedHeaders from a trusted peer', () => {
  it('keeps its values and appends the peer to X-Forwarded-For', () => {
    expect(apply({ ...spoofed }, { trusted: true, remoteAddress: '10.0.0.2' })).toEqual({
      host: 'preview.example.test',
      accept: '*/*',
      'x-forwarded-for': '1.1.1.1, 2.2.2.2, 10.0.0.2',
      'x-forwarded-host': 'evil.test',
      'x-forwarded-proto': 'https',
      'x-forwarded-port': '8443',
      'x-forwarded-prefix': '/previews/abc',
      'x-forwarded-server': 'spoof',
      'X-Forwarded-Ssl': 'on',
      forwarded: 'for=1.1.1.1;proto=https, for=10.0.0.2;host=preview.example.test;proto=http',
    });
  });

  it.each<[string, IncomingHttpHeaders, Partial<ForwardedContext>, Partial<IncomingHttpHeaders>]>([
    [
      'a chain of several proxies, repeated fields joined by Node',
      { 'x-forwarded-for': '198.51.100.1, 10.0.0.9,10.0.0.8' },
      { remoteAddress: '::ffff:10.0.0.7' },
      { 'x-forwarded-for': '198.51.100.1, 10.0.0.9, 10.0.0.8, 10.0.0.7' },
    ],
    [
      'empty list elements',
      { 'x-forwarded-for': ' ,198.51.100.1,, ' },
      {},
      { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' },
    ],
    ['an empty X-Forwarded-For', { 'x-forwarded-for': '' }, {}, { 'x-forwarded-for': '203.0.113.7' }],
    [
      'X-Forwarded-For stored as an array',
      { 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] } as IncomingHttpHeaders,
      {},
      { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 203.0.113.7' },
    ],
    [
      'an IPv6 trusted peer',
      { 'x-forwarded-for': '2001:db8::1' },
      { remoteAddress: '::1' },
      { 'x-forwarded-for': '2001:db8::1, ::1' },
    ],
    [
      'no X-Forwarded-* at all: falls back to this hop',
      { host: 'a.test:81' },
      { encrypted: true },
      {
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-host': 'a.test:81',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '81',
      },
    ],
    [
      'the port follows the trusted host and scheme',
      { host: 'internal:8080', 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https' },
      {},
      { 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' },
    ],
    [
      'the port of a trusted host with a port',
      { host: 'internal:8080', 'x-forwarded-host': 'app.example:9443' },
      {},
      { 'x-forwarded-port': '9443', 'x-forwarded-proto': 'http' },
    ],
    [
      'the first of listed values for the port',
      { 'x-forwarded-host': 'a.example:7000, b.example', 'x-forwarded-proto': 'https, http' },
      {},
      { 'x-forwarded-host': 'a.example:7000, b.example', 'x-forwarded-port': '7000' },
    ],
    [
      'a trusted prefix is still replaced by the route prefix',
      { 'x-forwarded-prefix': '/edge' },
      {},
      { 'x-forwarded-prefix': '/previews/abc' },
    ],
    [
      'Forwarded with an IPv6 peer and a Host with a port',
      { host: '[::1]:4002', forwarded: 'for="[2001:db8::1]"' },
      { remoteAddress: '::1', encrypted: true },
      { forwarded: 'for="[2001:db8::1]", for="[::1]";host="[::1]:4002";proto=https' },
    ],
    [
      'Forwarded with an unknown peer and no Host',
      { forwarded: 'for=192.0.2.1' },
      { remoteAddress: undefined },
      { forwarded: 'for=192.0.2.1, for=unknown;proto=http', 'x-forwarded-for': undefined },
    ],
  ])('%s', (_name, headers, context, expected) => {
    expectHeaders(apply(headers, { trusted: true, ...context }), expected);
  });

  it('never creates Forwarded', () => {
    expect(apply({ host: 'a.test' }, { trusted: true })).not.toHaveProperty('forwarded');
  });
});

describe('applyForwardedHeaders Host', () => {
  it('can send the target ip:port, the client Host staying in X-Forwarded-Host', () => {
    const headers = apply(
      { host: 'preview.example.test:4002' },
      { preserveHost: false, target: { host: '172.17.0.2', port: 3000 } },
    );
    expect(headers).toMatchObject({
      host: '172.17.0.2:3000',
      'x-forwarded-host': 'preview.example.test:4002',
      'x-forwarded-port': '4002',
    });
  });

  it('brackets an IPv6 target', () => {
    const headers = apply({}, { preserveHost: false, target: { host: 'fd00::2', port: 80 } });
    expect(headers.host).toBe('[fd00::2]:80');
  });

  it('keeps the client Host but ignores the target when preserving it', () => {
    const headers = apply({ host: 'a.test' }, { target: { host: '172.17.0.2', port: 3000 } });
    expect(headers.host).toBe('a.test');
  });

  it('refuses to rewrite Host without a target', () => {
    const headers: IncomingHttpHeaders = { host: 'a.test', 'x-forwarded-for': '6.6.6.6' };
    expect(() => apply(headers, { preserveHost: false })).toThrow(TypeError);
    expect(headers).toEqual({ host: 'a.test', 'x-forwarded-for': '6.6.6.6' });
  });
});

describe('portOfHost', () => {
  it.each<[string, string | undefined]>([
    ['a.test', undefined],
    ['a.test:8080', '8080'],
    ['a.test:', undefined],
    ['a.test:http', undefined],
    ['1.2.3.4:5', '5'],
    ['[::1]', undefined],
    ['[::1]:3000', '3000'],
    ['::1', undefined],
    ['a.test:123456', undefined],
  ])('%j -> %j', (host, port) => {
    expect(portOfHost(host)).toBe(port);
  });
});
