import { describe, expect, it } from 'vitest';
import { isUpstreamConnectFailure, upstreamFailure } from './upstream-errors.js';

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

describe('upstreamFailure', () => {
  it.each([
    ['UND_ERR_HEADERS_TIMEOUT', 'PROXY_TIMEOUT'],
    ['PREVIEW_PROXY_TIMEOUT', 'PROXY_TIMEOUT'],
    ['ECONNREFUSED', 'UPSTREAM_CONNECT_FAILED'],
    ['UND_ERR_SOCKET', 'UPSTREAM_CONNECT_FAILED'],
  ])('%s is the contract row %s', (code, row) => {
    const cause = Object.assign(new Error(code), { code });
    const mapped = upstreamFailure(cause) as { code: string; cause: unknown };
    expect(mapped.code).toBe(row);
    expect(mapped.cause).toBe(cause);
  });

  it('leaves other errors as they are', () => {
    const bug = new TypeError('bug');
    expect(upstreamFailure(bug)).toBe(bug);
  });
});
