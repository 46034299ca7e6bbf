import { describe, expect, it } from 'vitest';
import { isUpstreamConnectFailure } from './upstream-errors.js';

describe('isUpstreamConnectFailure', () => {
  it.each([
    'ECONNREFUSED',
    'ECONNRESET',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ETIMEDOUT',
    'EPIPE',
    'HPE_INVALID_CONSTANT',
  ])('%s is a connection failure (502)', (code) => {
    expect(isUpstreamConnectFailure(Object.assign(new Error(code), { code }))).toBe(true);
  });
  it.each([
    new Error('plain'),
    Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' }),
    null,
    undefined,
    'ECONNREFUSED',
  ])('%p is not', (error) => {
    expect(isUpstreamConnectFailure(error)).toBe(false);
  });
});
