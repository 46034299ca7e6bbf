import { describe, expect, it } from 'vitest';
import { isLocalPathRouteHost } from './proxy-route.js';

describe('isLocalPathRouteHost', () => {
  it.each([
    'localhost',
    'localhost:4002',
    'LOCALHOST:4002',
    'localhost.',
    'app.localhost:4002',
    '127.0.0.1:4002',
    '127.1.2.3',
    '[::1]:4002',
    '[::1]',
  ])('trusts %s, a name only this machine answers to', (host) => {
    expect(isLocalPathRouteHost(host)).toBe(true);
  });

  it.each([
    undefined,
    '',
    'evil.example',
    'localhost.evil.example',
    'evillocalhost:4002',
    '127.0.0.1.evil.example',
    '10.0.0.1:4002',
    '[::2]:4002',
    '[fe80::1]',
    '0.0.0.0:4002',
  ])('does not trust %j: DNS can point such a name at the proxy from a page of any site', (host) => {
    expect(isLocalPathRouteHost(host)).toBe(false);
  });

  it('trusts the preview domain itself, not a name under it or beside it', () => {
    expect(isLocalPathRouteHost('preview.example.com', 'preview.example.com')).toBe(true);
    expect(isLocalPathRouteHost('Preview.Example.COM:443', 'preview.example.com')).toBe(true);
    expect(isLocalPathRouteHost('x.preview.example.com', 'preview.example.com')).toBe(false);
    expect(isLocalPathRouteHost('preview.example.com.evil', 'preview.example.com')).toBe(false);
    expect(isLocalPathRouteHost('preview.example.com')).toBe(false);
  });
});
