import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, getReasonPhrase, PREVIEW_ERROR_CODES } from './codes.js';
import { describeCause, isPreviewError, PreviewError, previewErrors } from './errors.js';
import { errorBodySchema, toErrorResponse } from './wire.js';

describe('the locked contract rows', () => {
  it.each([
    [previewErrors.invalidPort(), 400, 'Bad Request', 'Port must be an integer between 1024 and 65535'],
    [previewErrors.portRequired(), 400, 'Bad Request', "Request body field 'port' is required"],
    [
      previewErrors.previewNotRegistered('abc'),
      404,
      'Not Found',
      'No preview port registered for session abc',
    ],
    [
      previewErrors.containerLookupFailed('abc', new Error('boom')),
      500,
      'Internal Server Error',
      'Failed to validate container for session abc: boom',
    ],
    [
      previewErrors.containerNotRunning('abc'),
      500,
      'Internal Server Error',
      'Container for session abc is not running',
    ],
    [
      previewErrors.containerNoIp('abc'),
      500,
      'Internal Server Error',
      'Container for session abc has no IP address',
    ],
    [previewErrors.upstreamConnectFailed(), 502, 'Bad Gateway', 'Failed to connect to preview server'],
    [previewErrors.forbidden(), 403, 'Forbidden', 'Forbidden'],
  ])('%s -> %i %s', (error, status, reason, message) => {
    const response = toErrorResponse(error);
    expect(response.status).toBe(status);
    expect(response.body).toEqual({ statusCode: status, error: reason, message, code: error.code });
    expect(errorBodySchema.parse(response.body)).toEqual(response.body);
  });
});

describe('new rows', () => {
  it.each([
    [previewErrors.invalidSessionId(), 400],
    [previewErrors.malformedJson(), 400],
    [previewErrors.unsupportedMediaType(), 415],
    [previewErrors.payloadTooLarge(16), 413],
    [previewErrors.malformedPath(), 400],
    [previewErrors.routeNotFound('GET', '/nope'), 404],
    [previewErrors.upgradeNotSupported(), 400],
    [previewErrors.portNotRegistered('abc', 3000), 404],
    [previewErrors.proxyTimeout(), 504],
    [previewErrors.tooManyConnections('abc'), 429],
    [previewErrors.headersTooLarge(), 431],
    [previewErrors.malformedRequest(), 400],
    [previewErrors.requestTimeout(), 408],
    [previewErrors.containerAddressRefused('abc'), 500],
  ])('%s has status %i and a known reason phrase', (error, status) => {
    const { body } = toErrorResponse(error);
    expect(body.statusCode).toBe(status);
    expect(body.error).not.toBe('Error');
  });

  it('every code has a status with a reason phrase', () => {
    for (const code of PREVIEW_ERROR_CODES) expect(getReasonPhrase(ERROR_STATUS[code])).not.toBe('Error');
  });
});

describe('toErrorResponse', () => {
  it('turns an unknown error into a generic 500, logs it, and leaks no stack or message', () => {
    const logged: unknown[] = [];
    const secret = new Error('database password is hunter2');
    const response = toErrorResponse(secret, (error) => logged.push(error));
    expect(response).toEqual({
      status: 500,
      body: {
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'Internal server error',
        code: 'INTERNAL',
      },
    });
    expect(logged).toEqual([secret]);
    expect(JSON.stringify(response.body)).not.toContain('hunter2');
  });

  it.each([undefined, null, 'a string', 42, { message: 'object' }])('handles a thrown %p', (thrown) => {
    expect(toErrorResponse(thrown, () => {}).status).toBe(500);
  });

  it('does not log contract errors', () => {
    const logged: unknown[] = [];
    toErrorResponse(previewErrors.forbidden(), (error) => logged.push(error));
    expect(logged).toEqual([]);
  });
});

describe('PreviewError', () => {
  it('keeps its cause for the logs', () => {
    const cause = new Error('connect ECONNREFUSED');
    const error = previewErrors.upstreamConnectFailed(cause);
    expect(error.cause).toBe(cause);
    expect(error).toBeInstanceOf(Error);
    expect(isPreviewError(error)).toBe(true);
  });

  it('is recognised across package copies by shape', () => {
    const foreign = Object.assign(new Error('x'), { name: 'PreviewError', code: 'FORBIDDEN', status: 403 });
    expect(isPreviewError(foreign)).toBe(true);
    expect(isPreviewError(new Error('x'))).toBe(false);
  });

  it('has no cause property when none is given', () => {
    expect('cause' in new PreviewError('FORBIDDEN', 'Forbidden')).toBe(false);
  });
});

describe('describeCause', () => {
  it.each([
    [
      Object.assign(new Error('(HTTP code 404) no such container - x'), {
        json: { message: 'No such container: x' },
      }),
      'No such container: x',
    ],
    [new Error('connect ECONNREFUSED /var/run/docker.sock'), 'connect ECONNREFUSED /var/run/docker.sock'],
    ['plain text', 'plain text'],
  ])('%s -> %s', (cause, reason) => {
    expect(describeCause(cause)).toBe(reason);
  });
});
