import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer } from 'node:net';
import { startLocalTestServer } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, exchange, rawExchange, sha256, startFrontServer, useEngine } from './helpers.js';

type Echo = {
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyLength: number;
  bodySha256: string;
};

let upstream: Awaited<ReturnType<typeof startLocalTestServer>>;
let front: Awaited<ReturnType<typeof startFrontServer>>;

describe.each(ENGINES)('%s engine', (engine) => {
  beforeAll(() => useEngine(engine));

  beforeAll(async () => {
    upstream = await startLocalTestServer();
    front = await startFrontServer(() => ({ host: '127.0.0.1', port: upstream.port }));
  });
  afterAll(async () => {
    await front?.close();
    await upstream?.close();
  });

  describe('forwarding', () => {
    it.each([
      ['/p/s1/app/page?x=1', '/app/page?x=1'],
      ['/p/s1/', '/'],
      ['/p/s1?x=1', '/?x=1'],
      ['/p/s1//double//slashes/', '//double//slashes/'],
      [
        '/p/s1/a%2Fb/%2e%2e/%E2%82%AC/c%20d?q=%26%3D&r=a+b&s=%zz&t',
        '/a%2Fb/%2e%2e/%E2%82%AC/c%20d?q=%26%3D&r=a+b&s=%zz&t',
      ],
      ["/p/s1/quote'tick`brace{}pipe|caret^", "/quote'tick`brace{}pipe|caret^"],
      ['/p/s1/http://elsewhere/x', '/http://elsewhere/x'],
    ])('%s reaches the container as %s, byte for byte', async (path, expected) => {
      const res = await exchange(front.url, { path });
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body.toString()) as Echo).url).toBe(expected);
    });

    it.each(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])(
      'forwards %s with its body',
      async (method) => {
        const body = method === 'GET' || method === 'HEAD' ? undefined : randomBytes(4096);
        const res = await exchange(front.url, { method, path: '/p/s1/m', ...(body ? { body } : {}) });
        expect(res.status).toBe(200);
        expect(res.headers['x-fixture']).toBe('echo');
        if (method === 'HEAD') return expect(res.body.length).toBe(0);
        const echo = JSON.parse(res.body.toString()) as Echo;
        expect(echo.method).toBe(method);
        expect(echo.bodyLength).toBe(body?.length ?? 0);
        if (body) expect(echo.bodySha256).toBe(sha256(body));
      },
    );

    it('forwards a chunked DELETE body instead of dropping it', async () => {
      const raw = await rawExchange(
        front.port,
        'DELETE /p/s1/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
      expect(raw).toMatch(/^HTTP\/1\.1 200/);
      expect(raw).toContain('"bodyLength":5');
    });

    it('streams 10 MB up and 10 MB down intact', async () => {
      const up = randomBytes(10 * 1024 * 1024);
      const res = await exchange(front.url, { method: 'POST', path: '/p/s1/upload', body: up });
      expect(JSON.parse(res.body.toString())).toMatchObject({
        bodyLength: up.length,
        bodySha256: sha256(up),
      });

      const down = await exchange(front.url, { path: `/p/s1/__fixture/bytes/${10 * 1024 * 1024}?chunked=1` });
      expect(down.body.length).toBe(10 * 1024 * 1024);
      expect(sha256(down.body)).toBe(down.headers['x-fixture-sha256']);
    });

    it('honours Expect: 100-continue without forwarding it', async () => {
      const body = randomBytes(2 * 1024 * 1024);
      const res = await exchange(front.url, {
        method: 'PUT',
        path: '/p/s1/continue',
        headers: { expect: '100-continue', 'content-length': String(body.length) },
        body,
      });
      const echo = JSON.parse(res.body.toString()) as Echo;
      expect(echo.bodySha256).toBe(sha256(body));
      expect(echo.headers.expect).toBeUndefined();
    });
  });

  describe('headers', () => {
    it('strips the internal key and hop-by-hop fields, keeps Host, sets X-Forwarded-*', async () => {
      const res = await exchange(front.url, {
        path: '/p/s1/h',
        headers: {
          host: 'preview.example.test',
          'x-internal-service-key': 'top-secret',
          connection: 'keep-alive, x-hop',
          'x-hop': 'hop',
          'keep-alive': 'timeout=5',
          'proxy-authorization': 'Basic Zm9vOmJhcg==',
          te: 'trailers',
          'x-end-to-end': 'kept',
        },
      });
      const { headers } = JSON.parse(res.body.toString()) as Echo;
      for (const name of ['x-internal-service-key', 'x-hop', 'keep-alive', 'proxy-authorization', 'te']) {
        expect(headers[name]).toBeUndefined();
      }
      expect(JSON.stringify(headers)).not.toContain('top-secret');
      expect(headers.host).toBe('preview.example.test');
      expect(headers['x-end-to-end']).toBe('kept');
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-prefix']).toBe('/p/s1');
    });

    it('passes upstream statuses and headers through, repeated Set-Cookie included', async () => {
      const res = await exchange(front.url, {
        path: '/p/s1/__fixture/respond?status=418&header=Set-Cookie:a=1&header=Set-Cookie:b=2&header=X-App:yes&body=teapot',
      });
      expect(res.status).toBe(418);
      // Cookies are scoped under the route prefix, so previews on one host do not share them.
      expect(res.headers['set-cookie']).toEqual(['a=1; Path=/p/s1', 'b=2; Path=/p/s1']);
      expect(res.headers['x-app']).toBe('yes');
      expect(res.body.toString()).toBe('teapot');
    });

    it.each([
      ['/login', '/p/s1/login'],
      ['/a?b=1#c', '/p/s1/a?b=1#c'],
      ['/p/s1/already', '/p/s1/already'],
      ['relative/path', 'relative/path'],
      ['http://elsewhere.test/x', 'http://elsewhere.test/x'],
      ['//elsewhere.test/x', '//elsewhere.test/x'],
    ])('rewrites a root-relative Location %s to %s', async (location, expected) => {
      const res = await exchange(front.url, {
        path: `/p/s1/__fixture/respond?status=302&header=Location:${encodeURIComponent(location)}`,
      });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(expected);
    });

    it('scopes Set-Cookie paths and keeps their other attributes', async () => {
      const res = await exchange(front.url, {
        path: `/p/s1/__fixture/respond?header=${encodeURIComponent('Set-Cookie:sid=1; Path=/app; HttpOnly; SameSite=Lax')}`,
      });
      expect(res.headers['set-cookie']).toEqual(['sid=1; Path=/p/s1/app; HttpOnly; SameSite=Lax']);
    });

    it('never trusts X-Forwarded-* from a client that is not a configured proxy', async () => {
      const res = await exchange(front.url, {
        path: '/p/s1/spoof',
        headers: {
          'x-forwarded-for': '6.6.6.6',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'evil.test',
        },
      });
      const { headers } = JSON.parse(res.body.toString()) as Echo;
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).not.toBe('evil.test');
    });

    it('appends to X-Forwarded-* from a trusted proxy, and can send the target as Host', async () => {
      const trusting = await startFrontServer(() => ({ host: '127.0.0.1', port: upstream.port }), {
        trustedProxies: ['127.0.0.1/8'],
        preserveHost: false,
      });
      try {
        const res = await exchange(trusting.url, {
          path: '/p/s1/trusted',
          headers: { host: 'outer.test', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' },
        });
        const { headers } = JSON.parse(res.body.toString()) as Echo;
        expect(headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
        expect(headers['x-forwarded-proto']).toBe('https');
        expect(headers['x-forwarded-host']).toBe('outer.test');
        expect(headers.host).toBe(`127.0.0.1:${upstream.port}`);
      } finally {
        await trusting.close();
      }
    });

    it('drops hop-by-hop fields of the response', async () => {
      const res = await exchange(front.url, {
        path: '/p/s1/__fixture/respond?status=200&header=Connection:x-private&header=X-Private:1&header=Keep-Alive:timeout=99',
      });
      expect(res.headers['x-private']).toBeUndefined();
      // This hop's own Keep-Alive (Node's server announces its timeout) is fine; the container's is not.
      expect(res.headers['keep-alive'] ?? '').not.toContain('99');
    });

    it.each([200, 201, 204, 301, 304, 400, 404, 500, 503])('passes status %i through', async (status) => {
      const res = await exchange(front.url, { path: `/p/s1/__fixture/status/${status}` });
      expect(res.status).toBe(status);
      expect(res.headers['x-fixture-status']).toBe(String(status));
    });
  });

  describe('informational answers', () => {
    it('passes on only the final response when the container sends 103 Early Hints first', async () => {
      const container = createTcpServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () =>
          socket.write(
            'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
              'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok',
            'latin1',
          ),
        );
      });
      container.listen(0, '127.0.0.1');
      await once(container, 'listening');
      const { port } = container.address() as AddressInfo;
      const hinted = await startFrontServer(() => ({ host: '127.0.0.1', port }));
      try {
        const res = await exchange(hinted.url, { path: '/p/s1/' });
        expect(res.status).toBe(200);
        expect(res.headers['x-final']).toBe('yes');
        expect(res.headers.link).toBeUndefined();
        expect(res.body.toString()).toBe('ok');
      } finally {
        await hinted.close();
        container.close();
      }
    });
  });

  describe('backpressure', () => {
    it('waits for a slow client with one drain listener, however many chunks one read brought', async () => {
      // 4,000 chunks of 1 KiB in one write: each read of the proxy's client carries dozens of them, and the
      // parser hands them all over even after the first one met a full client socket.
      const chunk = `400\r\n${'x'.repeat(1024)}\r\n`;
      const container = createTcpServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () =>
          socket.write(
            `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(4000)}0\r\n\r\n`,
            'latin1',
          ),
        );
      });
      container.listen(0, '127.0.0.1');
      await once(container, 'listening');
      const { port } = container.address() as AddressInfo;
      const slow = await startFrontServer(() => ({ host: '127.0.0.1', port }));
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(warning.name);
      process.on('warning', onWarning);
      try {
        const client = connect(slow.port, '127.0.0.1');
        client.pause();
        client.write('GET /p/s1/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
        // Not reading: the proxy's writes to it fill its socket and wait for drains.
        await new Promise((resolve) => setTimeout(resolve, 500));
        let received = 0;
        client.on('data', (data: Buffer) => {
          received += data.length;
        });
        client.resume();
        await once(client, 'close');
        expect(received).toBeGreaterThan(4000 * 1024);
        expect(warnings).not.toContain('MaxListenersExceededWarning');
      } finally {
        process.off('warning', onWarning);
        await slow.close();
        container.close();
      }
    });
  });

  describe('upstream failures', () => {
    it('answers 502 when the connection is refused', async () => {
      const closed = createServer();
      closed.listen(0, '127.0.0.1');
      await new Promise((resolve) => closed.once('listening', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise((resolve) => closed.close(resolve));
      const refused = await startFrontServer(() => ({ host: '127.0.0.1', port }));
      try {
        const res = await exchange(refused.url, { path: '/p/s1/' });
        expect(res.status).toBe(502);
        expect(JSON.parse(res.body.toString())).toEqual({
          status: 502,
          message: 'Failed to connect to preview server',
        });
      } finally {
        await refused.close();
      }
    });

    it('answers 502 when the container resets before answering', async () => {
      const res = await exchange(front.url, { path: '/p/s1/__fixture/reset-before' });
      expect(res.status).toBe(502);
    });

    it('cuts the client connection when the container resets mid-response, instead of writing twice', async () => {
      const raw = await rawExchange(
        front.port,
        'GET /p/s1/__fixture/reset-during HTTP/1.1\r\nHost: t\r\n\r\n',
        3000,
      );
      expect(raw).toMatch(/^HTTP\/1\.1 200/);
      expect(raw.match(/HTTP\/1\.1/g)).toHaveLength(1);
      expect(raw).not.toContain('Failed to connect');
    });
  });
});
