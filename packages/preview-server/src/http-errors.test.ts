import { isPreviewError } from '@sandbox/error-contract';
import { describe, expect, it } from 'vitest';
import { toPreviewError } from './http-errors.js';

function codeOf(error: unknown): string | undefined {
  const mapped = toPreviewError(error);
  return isPreviewError(mapped) ? mapped.code : undefined;
}

describe('toPreviewError', () => {
  it.each([
    [
      Object.assign(new SyntaxError('Unexpected end'), { type: 'entity.parse.failed', status: 400 }),
      'MALFORMED_JSON',
    ],
    [Object.assign(new Error('too large'), { type: 'entity.too.large', status: 413 }), 'PAYLOAD_TOO_LARGE'],
    [
      Object.assign(new Error('charset'), { type: 'charset.unsupported', status: 415 }),
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      Object.assign(new Error('encoding'), { type: 'encoding.unsupported', status: 415 }),
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [new URIError('URI malformed'), 'MALFORMED_PATH'],
  ])('maps %s to %s', (error, code) => {
    expect(codeOf(error)).toBe(code);
  });

  it('leaves unknown errors for the generic 500', () => {
    const error = new Error('boom');
    expect(toPreviewError(error)).toBe(error);
  });
});
