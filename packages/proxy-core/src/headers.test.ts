import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  stripRequestHeaders,
  stripResponseHeaders,
  upstreamRequestHeaders,
  withoutDashboardCookie,
} from './headers.js';

// A client from an untrusted peer, on the path route.
const context = {
  remoteAddress: '10.1.2.3',
  encrypted: false,
  prefix: '/previews/abc',
  trusted: false,
  preserveHost: true,
};

describe('stripRequestHeaders', () => {
  it.each<[string, IncomingHttpHeaders, IncomingHttpHeaders]>([
    ['the internal key', { 'x-internal-service-key': 's3cret', accept: '*/*' }, { accept: '*/*' }],
    ['a preview token header', { 'x-preview-token': 'v1.a.b', accept: '*/*' }, { accept: '*/*' }],
    [
      'RFC 9110 hop-by-hop fields',
      {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic x',
        te: 'trailers',
        trailer: 'x-sum',
        upgrade: 'h2c',
        host: 'example.test',
      },
      { host: 'example.test' },
    ],
    [
      'fields named by Connection',
      { connection: 'close, X-Secret-Hop , x-other', 'x-secret-hop': '1', 'x-other': '2', 'x-kept': '3' },
      { 'x-kept': '3' },
    ],
    [
      'Expect, already answered by this hop',
      { expect: '100-continue', 'content-length': '5' },
      { 'content-length': '5' },
    ],
    [
      'never the framing of the body',
      { connection: 'transfer-encoding', 'transfer-encoding': 'chunked' },
      { 'transfer-encoding': 'chunked' },
    ],
  ])('removes %s', (_name, headers, expected) => {
    stripRequestHeaders(headers);
    expect(headers).toEqual(expected);
  });
});

describe('stripResponseHeaders', () => {
  it('removes hop-by-hop fields and those Connection names, keeps end-to-end ones', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'keep-alive, x-hop',
      'keep-alive': 'timeout=5',
      'x-hop': 'a',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
      'x-internal-service-key': 'echoed-by-app',
    };
    stripResponseHeaders(headers);
    expect(headers).toEqual({
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
      'x-internal-service-key': 'echoed-by-app',
    });
  });
});

describe('upstreamRequestHeaders', () => {
  it('sends the client fields, minus hop-by-hop ones, then the forwarding fields', () => {
    const headers = { host: 'a.test', connection: 'keep-alive', 'keep-alive': '5', accept: '*/*' };
    expect(upstreamRequestHeaders(headers, context)).toEqual([
      'host',
      'a.test',
      'accept',
      '*/*',
      'x-forwarded-for',
      '10.1.2.3',
      'x-forwarded-host',
      'a.test',
      'x-forwarded-proto',
      'http',
      'x-forwarded-port',
      '80',
      'x-forwarded-prefix',
      '/previews/abc',
    ]);
  });

  it('drops what Connection names before reading it, a field called Close included', () => {
    const named = upstreamRequestHeaders(
      { host: 'a.test', connection: 'close, x-forwarded-for', close: 'x', 'x-forwarded-for': '1.1.1.1' },
      { ...context, trusted: true },
    );
    expect(named).not.toContain('close');
    expect(named).not.toContain('1.1.1.1');
    expect(named.slice(named.indexOf('x-forwarded-for'), named.indexOf('x-forwarded-for') + 2)).toEqual([
      'x-forwarded-for',
      '10.1.2.3',
    ]);
  });
});

describe('the dashboard cookie', () => {
  it('is taken out of a Cookie value, the other cookies kept in order', () => {
    expect(withoutDashboardCookie('a=1; sandbox_dashboard=secret; b=2')).toBe('a=1; b=2');
    expect(withoutDashboardCookie('sandbox_dashboard=secret')).toBeUndefined();
    expect(withoutDashboardCookie('sandbox_dashboard = secret;a=1')).toBe('a=1');
    // Only that name: a cookie that merely contains it, or has it as its value, is the app's.
    expect(withoutDashboardCookie('my_sandbox_dashboard=1; x=sandbox_dashboard')).toBe(
      'my_sandbox_dashboard=1; x=sandbox_dashboard',
    );
    expect(withoutDashboardCookie('plain=1')).toBe('plain=1');
  });

  it('never reaches a container, on either header path', () => {
    const headers: IncomingHttpHeaders = { host: 'h', cookie: 'app=1; sandbox_dashboard=secret' };
    const list = upstreamRequestHeaders(headers, context);
    expect(list).toContain('app=1');
    expect(list.join('\n')).not.toContain('secret');
    expect(upstreamRequestHeaders({ host: 'h', cookie: 'sandbox_dashboard=secret' }, context)).not.toContain(
      'cookie',
    );
    const inPlace: IncomingHttpHeaders = { host: 'h', cookie: 'sandbox_dashboard=secret; app=1' };
    stripRequestHeaders(inPlace);
    expect(inPlace.cookie).toBe('app=1');
    const only: IncomingHttpHeaders = { cookie: 'sandbox_dashboard=secret' };
    stripRequestHeaders(only);
    expect(only).not.toHaveProperty('cookie');
  });
});
