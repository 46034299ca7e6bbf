import { isPreviewError } from '@sandbox/error-contract';
import { describe, expect, it } from 'vitest';
import { parseRegistrationBody } from './registration.js';

describe('parseRegistrationBody', () => {
  it.each([
    [{ port: 3000 }, { port: 3000 }],
    [{ port: 1024 }, { port: 1024 }],
    [{ port: 65535, extra: true }, { port: 65535 }],
    [
      { port: 3000, stripPrefix: false },
      { port: 3000, stripPrefix: false },
    ],
    [
      { port: 3000, stripPrefix: true },
      { port: 3000, stripPrefix: true },
    ],
  ])('%j -> %j', (body, parsed) => {
    expect(parseRegistrationBody(body)).toEqual(parsed);
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
    // The port is judged first: a body the contract refuses keeps the contract's answer.
    [{ port: '3000', stripPrefix: 'no' }, 'INVALID_PORT'],
    [{ stripPrefix: false }, 'PORT_REQUIRED'],
    [{ port: 3000, stripPrefix: 'false' }, 'INVALID_STRIP_PREFIX'],
    [{ port: 3000, stripPrefix: 0 }, 'INVALID_STRIP_PREFIX'],
    [{ port: 3000, stripPrefix: null }, 'INVALID_STRIP_PREFIX'],
  ])('%j -> %s', (body, code) => {
    const result = parseRegistrationBody(body);
    expect(isPreviewError(result) && result.code).toBe(code);
  });
});
