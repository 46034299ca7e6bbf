import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createContainerResolver } from '@sandbox/container-resolver';
import { removeCreatedContainers, startSessionContainer, uniqueSessionId } from '@sandbox/test-fixtures';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternalApiDocument, type OpenApiOperation } from '../src/openapi.js';
import { createPreviewApp } from '../src/preview-router.js';

const KEY = 'openapi-int-key';
const BASE = '/api/internal';
const document = createInternalApiDocument();
const operations = new Map<string, OpenApiOperation>(
  Object.values(document.paths).flatMap((item) =>
    Object.values(item).map((operation): [string, OpenApiOperation] => [operation.operationId, operation]),
  ),
);
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(document, 'internal-api');

let server: Server;
let origin: string;

beforeAll(async () => {
  // The default resolver: the real Docker engine of DOCKER_HOST.
  const app = createPreviewApp({
    internalServiceKey: KEY,
    resolver: createContainerResolver(),
    logUnexpected: () => {},
  });
  server = createServer(app.requestListener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await removeCreatedContainers();
});

/** Calls an operation and checks the answer against what the document says it can be. */
async function call(operationId: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${origin}${BASE}${path}`, {
    method,
    headers: { 'x-internal-service-key': KEY, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const received = (await response.json()) as Record<string, unknown>;
  const documented = operations.get(operationId)?.responses[String(response.status)];
  expect(
    documented,
    `${operationId} documents ${response.status}: ${JSON.stringify(received)}`,
  ).toBeDefined();
  if (response.status >= 400) expect(documented?.['x-error-codes']).toContain(received.code);
  const schema = documented?.content['application/json']?.schema ?? {};
  const validate = ajv.compile(
    typeof schema.$ref === 'string' ? { $ref: `internal-api${schema.$ref}` } : schema,
  );
  expect(validate(received), ajv.errorsText(validate.errors)).toBe(true);
  return { status: response.status, body: received };
}

describe('the internal API against a real Docker engine', () => {
  it('serves its OpenAPI document behind the key', async () => {
    expect(await call('getInternalApiDocument', 'GET', '/openapi.json')).toEqual({
      status: 200,
      body: document,
    });
    const refused = await fetch(`${origin}${BASE}/openapi.json`);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { code: string }).code).toBe('FORBIDDEN');
  });

  it('answers every operation on a real container as the document says', async () => {
    const box = await startSessionContainer({ ports: [3000] });
    const previews = `/sessions/${box.sessionId}/previews`;
    expect(await call('registerPreviewPort', 'POST', previews, { port: 3000 })).toEqual({
      status: 201,
      body: { sessionId: box.sessionId, port: 3000, registered: true },
    });
    expect((await call('registerPreviewPort', 'POST', previews, { port: 4000 })).status).toBe(201);
    expect((await call('listPreviewPorts', 'GET', previews)).body).toMatchObject({
      sessionId: box.sessionId,
      ports: [3000, 4000],
      activePort: 4000,
      previews: [
        { port: 3000, stripPrefix: true, active: false },
        { port: 4000, stripPrefix: true, active: true },
      ],
    });
    expect((await call('removePreviewPort', 'DELETE', `${previews}/4000`)).body).toMatchObject({
      registered: false,
      activePort: 3000,
    });
    expect((await call('removePreview', 'DELETE', previews)).body).toEqual({
      sessionId: box.sessionId,
      ports: [3000],
      registered: false,
    });
    expect((await call('removePreview', 'DELETE', previews)).body.code).toBe('PREVIEW_NOT_REGISTERED');

    const missing = `/sessions/${uniqueSessionId('gone')}/previews`;
    expect((await call('registerPreviewPort', 'POST', missing, { port: 3000 })).body.code).toBe(
      'CONTAINER_LOOKUP_FAILED',
    );
    await box.stop();
    expect((await call('registerPreviewPort', 'POST', previews, { port: 3000 })).body.code).toBe(
      'CONTAINER_NOT_RUNNING',
    );
  });
});
