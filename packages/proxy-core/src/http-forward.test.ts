import { describe, expect, it } from 'vitest';
import { forwardableResponseHeaders } from './http-forward.js';

const raw = (...fields: string[]) => fields.map((field) => Buffer.from(field, 'latin1'));

describe('forwardableResponseHeaders', () => {
  it('keeps end-to-end fields in the order and spelling the container sent', () => {
    expect(
      forwardableResponseHeaders(raw('Content-Type', 'text/plain', 'X-Custom', 'a', 'x-custom', 'b'), '/p/s'),
    ).toEqual(['Content-Type', 'text/plain', 'X-Custom', 'a', 'x-custom', 'b']);
  });

  it('drops hop-by-hop fields and Transfer-Encoding (this hop frames the body itself)', () => {
    const headers = raw(
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'Proxy-Authenticate',
      'Basic',
      'TE',
      'trailers',
      'Trailer',
      'x-sum',
      'Upgrade',
      'h2c',
      'Date',
      'today',
    );
    expect(forwardableResponseHeaders(headers, '/p/s')).toEqual(['Date', 'today']);
  });

  it('drops the fields Connection names, whatever their case or position', () => {
    const headers = raw(
      'X-Private',
      '1',
      'Connection',
      'close, x-PRIVATE ,x-other',
      'X-Other',
      '2',
      'X-Kept',
      '3',
    );
    expect(forwardableResponseHeaders(headers, '/p/s')).toEqual(['X-Kept', '3']);
  });

  it('keeps Location and Set-Cookie under the prefix', () => {
    const headers = raw('Location', '/login', 'Set-Cookie', 'a=1; Path=/', 'set-cookie', 'b=2');
    expect(forwardableResponseHeaders(headers, '/previews/abc')).toEqual([
      'Location',
      '/previews/abc/login',
      'Set-Cookie',
      'a=1; Path=/previews/abc',
      'set-cookie',
      'b=2; Path=/previews/abc',
    ]);
  });

  it('drops a field called Close when Connection names it, as it names any other', () => {
    const headers = raw('Connection', 'close', 'Close', 'x', 'Content-Length', '2');
    expect(forwardableResponseHeaders(headers, '/p/s')).toEqual(['Content-Length', '2']);
  });

  it('passes non-ASCII bytes of a value through unchanged', () => {
    const value = Buffer.from('naïve ☃', 'utf8');
    const [, out = ''] = forwardableResponseHeaders([Buffer.from('X-Name'), value], '/p/s');
    expect(Buffer.from(out, 'latin1').equals(value)).toBe(true);
  });
});
