import { describe, expect, it } from 'vitest';
import { forwardedFields, isSameOriginRequest } from './forwarded-headers.js';
import { toClientOrigin } from './http-forward.js';

describe('isSameOriginRequest', () => {
  const host = '3000-abc.preview.example.com:8443';
  it.each([
    [{}, true],
    [{ host }, true],
    [{ host, origin: `http://${host}` }, true],
    [{ host, origin: `https://${host}` }, true],
    [{ host, origin: `HTTPS://${host.toUpperCase()}` }, true],
    [{ host, origin: 'http://3000-abc.preview.example.com' }, false],
    [{ host, origin: 'http://4000-abc.preview.example.com:8443' }, false],
    [{ host, origin: 'null' }, false],
    [{ host, origin: `ftp://${host}` }, false],
    [{ host, origin: `http://${host}/path` }, false],
    [{ origin: `http://${host}` }, false],
  ])('%j -> %s', (headers, expected) => {
    expect(isSameOriginRequest(headers)).toBe(expected);
  });
});

describe('forwardedFields with appHost', () => {
  const context = {
    remoteAddress: '10.0.0.9',
    encrypted: false,
    prefix: '',
    trusted: false,
    target: { host: '172.17.0.2', port: 3000 },
    preserveHost: true,
  };
  it("sends the app's own name as Host and Origin, and the client's in X-Forwarded-Host", () => {
    const headers = { host: 'public.test:8443', origin: 'http://public.test:8443' };
    expect(forwardedFields(headers, { ...context, appHost: 'localhost:3000' })).toMatchObject({
      host: 'localhost:3000',
      origin: 'http://localhost:3000',
      'x-forwarded-host': 'public.test:8443',
      'x-forwarded-port': '8443',
    });
  });
  it('adds no Origin where the client sent none, and changes nothing without appHost', () => {
    expect(forwardedFields({ host: 'public.test' }, { ...context, appHost: 'localhost:3000' }).origin).toBe(
      undefined,
    );
    expect(forwardedFields({ host: 'public.test', origin: 'http://public.test' }, context)).toMatchObject({
      host: undefined,
      origin: undefined,
    });
  });
});

describe('toClientOrigin', () => {
  const origins = { app: 'http://localhost:3000', client: '//public.test:8443' };
  it.each([
    ['http://localhost:3000/a?b=1', '//public.test:8443/a?b=1'],
    ['http://localhost:3000', '//public.test:8443'],
    ['HTTP://LOCALHOST:3000/x', '//public.test:8443/x'],
    ['http://localhost:3000?x', '//public.test:8443?x'],
    ['http://localhost:3000#y', '//public.test:8443#y'],
    ['http://localhost:30001/x', 'http://localhost:30001/x'],
    ['http://localhost:3000@evil.test/', 'http://localhost:3000@evil.test/'],
    ['https://localhost:3000/x', 'https://localhost:3000/x'],
    ['/relative', '/relative'],
  ])('%s -> %s', (location, expected) => {
    expect(toClientOrigin(location, origins)).toBe(expected);
  });
});
