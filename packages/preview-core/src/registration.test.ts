import { isPreviewError } from '@sandbox/error-contract';
import { describe, expect, it } from 'vitest';
import { parseRegistrationBody } from './registration.js';

describe('parseRegistrationBody', () => {
  it.each([
    [{ port: 3000 }, 3000],
    [{ port: 1024 }, 1024],
    [{ port: 65535, extra: true }, 65535],
  ])('%j -> port %i', (body, port) => {
    expect(parseRegistrationBody(body)).toBe(port);
  });

  it.each([
    [undefined, 'PORT_REQUIRED'],
    [null, 'PORT_REQUIRED'],
    [{}, 'PORT_REQUIRED'],
    [{ port: null }, 'PORT_REQUIRED'],
    [[], 'PORT_REQUIRED'],
    ['3000', 'PORT_REQUIRED'],
    [{ port: '3000' }, 'INVALID_PORT'],
    [{ port: 3000.5 }, 'INVALID_PORT'],
    [{ port: 1023 }, 'INVALID_PORT'],
    [{ port: 65536 }, 'INVALID_PORT'],
    [{ port: true }, 'INVALID_PORT'],
    [{ port: [3000] }, 'INVALID_PORT'],
    [{ port: { value: 3000 } }, 'INVALID_PORT'],
  ])('%j -> %s', (body, code) => {
    const result = parseRegistrationBody(body);
    expect(isPreviewError(result) && result.code).toBe(code);
  });
});
