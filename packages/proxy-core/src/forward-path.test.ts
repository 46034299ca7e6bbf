import { describe, expect, it } from 'vitest';
import { hasMalformedPercentEncoding, splitPreviewPath } from './forward-path.js';

describe('splitPreviewPath', () => {
  it.each([
    ['/previews/abc/app/page?x=1', 'abc', '/app/page?x=1'],
    ['/previews/abc/', 'abc', '/'],
    ['/previews/abc', 'abc', '/'],
    ['/previews/abc?x=1', 'abc', '/?x=1'],
    ['/previews/abc//double//slash', 'abc', '//double//slash'],
    ['/previews/abc/a%2Fb%20c?q=%26&r=a+b', 'abc', '/a%2Fb%20c?q=%26&r=a+b'],
    ['/previews/abc/..%2F..%2Fetc', 'abc', '/..%2F..%2Fetc'],
    ['/previews/%61bc/x', '%61bc', '/x'],
    ['/previews//x', '', '/x'],
    ['/previews/abc/?', 'abc', '/?'],
  ])('%s -> id %j, forward %j', (url, rawSessionId, forwardPath) => {
    expect(splitPreviewPath(url, '/previews')).toEqual({ rawSessionId, forwardPath });
  });

  it.each(['/preview/abc/', '/previewsabc/', '/', '/previews', '/api/previews/abc', '/Previews/abc/'])(
    'does not match %s',
    (url) => {
      expect(splitPreviewPath(url, '/previews')).toBeUndefined();
    },
  );

  it('works with a multi-segment prefix', () => {
    expect(splitPreviewPath('/internal-previews/proxy/s1/a?b', '/internal-previews/proxy')).toEqual({
      rawSessionId: 's1',
      forwardPath: '/a?b',
    });
  });
});

describe('hasMalformedPercentEncoding', () => {
  it.each(['/a', '/a%20b', '/%2F%2f', '/%E2%82%AC', '/a?q=%zz', '/a?%', '/100%25'])('accepts %s', (url) => {
    expect(hasMalformedPercentEncoding(url)).toBe(false);
  });
  it.each(['/%', '/a%2', '/a%zz', '/%G0', '/a%2?x', '/%%41'])('rejects %s', (url) => {
    expect(hasMalformedPercentEncoding(url)).toBe(true);
  });
});
