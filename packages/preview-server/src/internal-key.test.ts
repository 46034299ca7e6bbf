import { describe, expect, it } from 'vitest';
import { createKeyMatcher } from './internal-key.js';

describe('createKeyMatcher', () => {
  const matches = createKeyMatcher('s3cret-key');

  it('accepts the exact key only', () => {
    expect(matches('s3cret-key')).toBe(true);
    for (const wrong of [
      '',
      's3cret-ke',
      's3cret-key ',
      'S3CRET-KEY',
      's3cret-keyx',
      ['s3cret-key'],
      undefined,
      42,
    ]) {
      expect(matches(wrong)).toBe(false);
    }
  });

  it('refuses to be built with an empty key, which would authenticate nothing', () => {
    expect(() => createKeyMatcher('')).toThrow(/must not be empty/);
  });
});
