import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createServiceLogger, logAccess } from './logger.js';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { stream, text: () => text };
}

describe('createServiceLogger', () => {
  it('redacts credentials wherever a request or response object puts them', async () => {
    const out = capture();
    const logger = createServiceLogger({ name: 't', destination: out.stream });
    logger.info(
      { req: { headers: { cookie: 'c=SEKRET1', authorization: 'Bearer SEKRET2', host: 'h' } } },
      'a',
    );
    logger.info({ headers: { 'x-internal-service-key': 'SEKRET3', 'set-cookie': ['s=SEKRET4'] } }, 'b');
    logger.info({ res: { headers: { 'set-cookie': 's=SEKRET5' } } }, 'c');
    await new Promise((resolve) => setImmediate(resolve));
    for (const secret of ['SEKRET1', 'SEKRET2', 'SEKRET3', 'SEKRET4', 'SEKRET5'])
      expect(out.text()).not.toContain(secret);
    expect(out.text()).toContain('[redacted]');
    expect(out.text()).toContain('"host":"h"');
  });

  it('writes an access record as one JSON line with its fields at the top level', async () => {
    const out = capture();
    logAccess(createServiceLogger({ name: 't', destination: out.stream }))({
      requestId: 'r1',
      kind: 'http',
      method: 'GET',
      path: '/previews/a/',
      status: 200,
      bytesIn: 0,
      bytesOut: 10,
      durationMs: 1.5,
      aborted: false,
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(JSON.parse(out.text())).toMatchObject({ name: 't', msg: 'access', requestId: 'r1', status: 200 });
  });
});
