import { describe, expect, it } from 'vitest';
import { isHostRoutableSessionId, matchPreviewHost, normalizePreviewDomain } from './host-route.js';

const DOMAIN = 'preview.example.com';

describe('matchPreviewHost', () => {
  it.each<[string, { sessionId: string; port: number }]>([
    ['3000-abc.preview.example.com', { sessionId: 'abc', port: 3000 }],
    ['3000-abc.preview.example.com:443', { sessionId: 'abc', port: 3000 }],
    ['3000-ABC.Preview.Example.COM', { sessionId: 'abc', port: 3000 }],
    ['3000-abc.preview.example.com.', { sessionId: 'abc', port: 3000 }],
    ['65535-a-b-c.preview.example.com', { sessionId: 'a-b-c', port: 65535 }],
    ['1024-0.preview.example.com', { sessionId: '0', port: 1024 }],
  ])('%s names a preview', (host, expected) => {
    expect(matchPreviewHost(host, DOMAIN)).toEqual(expected);
  });

  it.each([
    undefined,
    '',
    'preview.example.com',
    'www.preview.example.com',
    'x.3000-abc.preview.example.com',
    '3000-abc.other.example.com',
    '3000-abc.preview.example.com.evil.test',
    'evil3000-abc.preview.example.com',
    '3000-abc-.preview.example.com',
    '3000--.preview.example.com',
    '3000_abc.preview.example.com',
    '3000-a_b.preview.example.com',
    '3000-a.b.preview.example.com',
    `3000-${'a'.repeat(59)}.preview.example.com`,
    '[::1]:3000',
    '127.0.0.1:4002',
  ])('%j is not a preview host', (host) => {
    expect(matchPreviewHost(host, DOMAIN)).toBeUndefined();
  });

  it.each(['80-abc.preview.example.com', '1023-abc.preview.example.com', '70000-abc.preview.example.com'])(
    '%s has a port outside the range: the invalid-port 400',
    (host) => {
      expect(matchPreviewHost(host, DOMAIN)).toMatchObject({ code: 'INVALID_PORT' });
    },
  );

  it('matches the longest label a DNS name allows', () => {
    const id = 'a'.repeat(57);
    expect(matchPreviewHost(`65535-${id}.preview.example.com`, DOMAIN)).toEqual({
      sessionId: id,
      port: 65535,
    });
  });
});

describe('isHostRoutableSessionId', () => {
  it.each(['abc', 'a-b', '0', 'a'.repeat(57)])('%s can be reached by host', (id) => {
    expect(isHostRoutableSessionId(id)).toBe(true);
  });
  it.each(['ABC', 'a_b', 'a.b', 'a-', 'a'.repeat(58)])('%s is served by path routes only', (id) => {
    expect(isHostRoutableSessionId(id)).toBe(false);
  });
});

describe('normalizePreviewDomain', () => {
  it('lowercases and drops surrounding dots and spaces', () => {
    expect(normalizePreviewDomain(' .Preview.Example.COM. ')).toBe('preview.example.com');
  });
});
