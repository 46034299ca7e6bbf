import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContainerResolver } from '@sandbox/error-contract';
import {
  ERROR_STATUS,
  errorBodySchema,
  PREVIEW_ERROR_CODES,
  type PreviewErrorCode,
  previewErrors,
} from '@sandbox/error-contract';
import { createInMemoryRegistry, type PreviewRegistry } from '@sandbox/preview-registry';
import { createPreviewTargetResolver } from '@sandbox/preview-routes';
import { httpRequest } from '@sandbox/test-fixtures';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createInternalApiDocument,
  INTERNAL_API_OPERATIONS,
  type InternalApiDocument,
  type OpenApiOperation,
} from './openapi.js';
import { createPreviewApp } from './preview-router.js';
import { createRegistrationRouter } from './registration.js';

const KEY = 'k';
const BASE = '/api/internal';
const document = createInternalApiDocument();

/** Every operation of the document, as `METHOD /path` -> operation. */
function operationsOf(doc: InternalApiDocument): Map<string, OpenApiOperation> {
  const operations = new Map<string, OpenApiOperation>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      operations.set(`${method.toUpperCase()} ${path}`, operation);
    }
  }
  return operations;
}

function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((token) => decodeURIComponent(token).replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>(
      (node, token) =>
        node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[token] : undefined,
      doc,
    );
}

function refsIn(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) refsIn(item, found);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else refsIn(value, found);
    }
  }
  return found;
}

// The rows no operation of the internal API answers, each with the reason: a new code must be placed
// on an operation or here.
const NOT_ANSWERED_BY_AN_OPERATION: Partial<Record<PreviewErrorCode, string>> = {
  UPSTREAM_CONNECT_FAILED: 'proxy routes only',
  UPGRADE_NOT_SUPPORTED: "the server's upgrade handler, before any route",
  CONTAINER_NO_IP: 'registration only needs a running container (target.ts), an address is for proxying',
  ROUTE_NOT_FOUND: "the app's catch-all, for a path or method outside the document",
  PROXY_TIMEOUT: 'proxy routes only',
  TOO_MANY_CONNECTIONS: 'proxy routes only',
  CONTAINER_ADDRESS_REFUSED: 'proxy routes only: registration never needs an address',
  HEADERS_TOO_LARGE: 'the server, for any request, before any route',
  MALFORMED_REQUEST: 'the server, for bytes that are not a request, before any route',
  REQUEST_TIMEOUT: 'the server, for any request, before any route; proxy routes, for a slow upload',
  UPSTREAM_BUSY: 'proxy routes only',
  EXPECTATION_FAILED: 'the server, for any request, before any route',
  HTTP_VERSION_NOT_SUPPORTED: 'the server, for any request, before any route',
  UPGRADE_FAILED: 'proxy routes only, for a WebSocket upgrade',
  PREVIEW_TOKEN_REQUIRED: 'proxy routes only, for a private port',
  PREVIEW_TOKEN_INVALID: 'proxy routes only, for a private port',
  INVALID_LOG_QUERY: 'the request log (an extension, mounted with the requestLog option)',
  // The sessions API is an extension (`@sandbox/session-manager`), documented where it is mounted.
  INVALID_SESSION_REQUEST: 'the sessions API (an extension)',
  SESSION_NOT_FOUND: 'the sessions API (an extension)',
  SESSION_EXISTS: 'the sessions API (an extension)',
  SESSION_NOT_RUNNING: 'the sessions API (an extension)',
  IMAGE_NOT_FOUND: 'the sessions API (an extension)',
  IMAGE_PULL_FAILED: 'the sessions API (an extension)',
  DOCKER_ENGINE_ERROR: 'the sessions API (an extension)',
  INVALID_FILE_PATH: 'the sessions API (an extension)',
  FILE_NOT_FOUND: 'the sessions API (an extension)',
  NOT_A_FILE: 'the sessions API (an extension)',
  NOT_A_DIRECTORY: 'the sessions API (an extension)',
};

describe('createInternalApiDocument', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(
      JSON.parse(JSON.stringify(document)) as Record<string, unknown>,
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('resolves every $ref inside the document', () => {
    const refs = refsIn(document);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(resolvePointer(document, ref), ref).toBeDefined();
  });

  it('secures every operation with the key header and declares each path parameter', () => {
    expect(document.components.securitySchemes).toEqual({
      internalServiceKey: expect.objectContaining({
        type: 'apiKey',
        in: 'header',
        name: 'X-Internal-Service-Key',
      }),
    });
    for (const [name, operation] of operationsOf(document)) {
      expect(operation.security, name).toEqual([{ internalServiceKey: [] }]);
      expect(
        Object.keys(operation.responses).some((status) => /^2\d\d$/.test(status)),
        name,
      ).toBe(true);
      expect(Object.keys(operation.responses), name).toContain('403');
      const templated = [...name.matchAll(/\{(\w+)\}/g)].map(([, param]) => param);
      expect(
        operation.parameters.map((p) => p.name),
        name,
      ).toEqual(templated);
    }
  });

  it('documents the path parameters with the validation schemas', () => {
    expect(document.components.schemas.SessionId).toEqual({
      type: 'string',
      pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$',
    });
    expect(document.components.schemas.PreviewPort).toEqual({
      type: 'integer',
      minimum: 1024,
      maximum: 65535,
    });
  });

  it('puts the paths under the base path', () => {
    const paths = Object.keys(createInternalApiDocument({ basePath: '/x/api/' }).paths);
    expect(paths).toContain('/x/api/sessions/{id}/previews');
    expect(paths.every((path) => path.startsWith('/x/api/'))).toBe(true);
  });
});

describe('the document and the router', () => {
  it('list the same routes with the same methods', () => {
    const registry = createInMemoryRegistry();
    const targets = createPreviewTargetResolver({ registry, resolver: { resolve: () => Promise.reject() } });
    const router = createRegistrationRouter({ registry, targets });
    const routed = router.stack.flatMap((layer) => {
      const route = layer.route as { path: string; methods: Record<string, boolean> } | undefined;
      if (route === undefined) return [];
      return Object.keys(route.methods).map(
        (method) => `${method.toUpperCase()} ${BASE}${route.path.replace(/:(\w+)/g, '{$1}')}`,
      );
    });
    expect(routed.sort()).toEqual([...operationsOf(document).keys()].sort());
  });
});

describe('the error rows of the document', () => {
  const listed = new Map<string, Set<PreviewErrorCode>>();
  for (const operation of operationsOf(document).values()) {
    for (const [status, response] of Object.entries(operation.responses)) {
      if (Number(status) < 400) continue;
      listed.set(
        operation.operationId,
        new Set([...(listed.get(operation.operationId) ?? []), ...(response['x-error-codes'] ?? [])]),
      );
    }
  }

  it('are real codes, each under its contract status, with the contract body', () => {
    for (const [name, operation] of operationsOf(document)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        const codes = response['x-error-codes'] ?? [];
        expect(codes.length, `${name} ${status}`).toBeGreaterThan(0);
        for (const code of codes) {
          expect(PREVIEW_ERROR_CODES, `${name} ${status}`).toContain(code);
          expect(ERROR_STATUS[code], `${name} ${code}`).toBe(Number(status));
        }
        expect(response.content['application/json']?.schema).toEqual({
          $ref: '#/components/schemas/ErrorBody',
        });
      }
    }
  });

  it('cover every contract row the internal API can answer', () => {
    const anywhere = new Set([...listed.values()].flatMap((codes) => [...codes]));
    for (const code of PREVIEW_ERROR_CODES) {
      const reason = NOT_ANSWERED_BY_AN_OPERATION[code];
      expect(anywhere.has(code), `${code}${reason === undefined ? '' : ` (not answered: ${reason})`}`).toBe(
        reason === undefined,
      );
    }
  });

  it('are derived from INTERNAL_API_OPERATIONS', () => {
    for (const operation of INTERNAL_API_OPERATIONS) {
      expect(listed.get(operation.operationId)).toEqual(new Set(operation.errorCodes));
    }
  });
});

// Behind the interfaces: sessions "running" and "broken" run, "stopped" is stopped, any other has no
// container; the store fails for "broken".
const resolver: ContainerResolver = {
  async resolve(sessionId) {
    if (sessionId === 'running' || sessionId === 'broken') {
      return { ip: '127.0.0.1', network: 'bridge', containerId: sessionId, labels: {} };
    }
    if (sessionId === 'stopped') throw previewErrors.containerNotRunning(sessionId);
    throw previewErrors.containerLookupFailed(
      sessionId,
      new Error(`No such container: sandbox-session-${sessionId}`),
    );
  },
};

function failingFor(sessionId: string, registry: PreviewRegistry): PreviewRegistry {
  const guard = <T>(id: string, run: () => Promise<T>) =>
    id === sessionId ? Promise.reject(new Error('store unavailable')) : run();
  return {
    register: (id, port, options) => guard(id, () => registry.register(id, port, options)),
    lookup: (id) => guard(id, () => registry.lookup(id)),
    ports: (id) => guard(id, () => registry.ports(id)),
    unregisterPort: (id, port) => guard(id, () => registry.unregisterPort(id, port)),
    unregister: (id) => guard(id, () => registry.unregister(id)),
    keepsPrefix: (id, port) => registry.keepsPrefix(id, port),
    accessOf: (id, port) => registry.accessOf(id, port),
    revokeTokens: (id, port) => guard(id, () => registry.revokeTokens(id, port)),
    registrations: (id) => guard(id, () => registry.registrations(id)),
  };
}

interface Exchange {
  operationId: string;
  method: string;
  path: string;
  /** The body sent; a string as it is, anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** An error code, or the success status. */
  expect: PreviewErrorCode | 200 | 201;
  /** Sent to an app without PREVIEW_TOKEN_SECRET. */
  withoutSecret?: true;
}

const post = (path: string, body: unknown, expected: Exchange['expect'], headers?: Record<string, string>) =>
  ({
    operationId: 'registerPreviewPort',
    method: 'POST',
    path,
    body,
    expect: expected,
    ...(headers && { headers }),
  }) satisfies Exchange;
const MALFORMED = '%E0%A4'; // percent-encoding of no UTF-8 character

// In order: each success leaves the registry as the next one expects.
const EXCHANGES: Exchange[] = [
  post('/sessions/running/previews', { port: 3000 }, 'FORBIDDEN'),
  post(`/sessions/${MALFORMED}/previews`, { port: 3000 }, 'MALFORMED_PATH'),
  post('/sessions/-bad/previews', { port: 3000 }, 'INVALID_SESSION_ID'),
  post('/sessions/running/previews', 'port=3000', 'UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' }),
  post('/sessions/running/previews', { port: 3000, pad: 'x'.repeat(17 * 1024) }, 'PAYLOAD_TOO_LARGE'),
  post('/sessions/running/previews', '{"port":', 'MALFORMED_JSON'),
  post('/sessions/running/previews', {}, 'PORT_REQUIRED'),
  post('/sessions/running/previews', { port: '3000' }, 'INVALID_PORT'),
  post('/sessions/running/previews', { port: 3000, stripPrefix: 'false' }, 'INVALID_STRIP_PREFIX'),
  post('/sessions/running/previews', { port: 3000, visibility: 'secret' }, 'INVALID_VISIBILITY'),
  {
    ...post('/sessions/running/previews', { port: 3000, visibility: 'private' }, 'PREVIEW_TOKENS_DISABLED'),
    withoutSecret: true,
  },
  post('/sessions/missing/previews', { port: 3000 }, 'CONTAINER_LOOKUP_FAILED'),
  post('/sessions/stopped/previews', { port: 3000 }, 'CONTAINER_NOT_RUNNING'),
  post('/sessions/broken/previews', { port: 3000 }, 'INTERNAL'),
  post('/sessions/running/previews', { port: 3000 }, 201),
  post('/sessions/running/previews', { port: 4000 }, 201),
  ...(
    [
      ['running', 'FORBIDDEN'],
      [MALFORMED, 'MALFORMED_PATH'],
      ['-bad', 'INVALID_SESSION_ID'],
      ['broken', 'INTERNAL'],
      ['running', 200],
    ] as const
  ).map(([id, expected]) => ({
    operationId: 'listPreviewPorts',
    method: 'GET',
    path: `/sessions/${id}/previews`,
    expect: expected,
  })),
  ...(
    [
      ['running/previews/4000/tokens', {}, 'FORBIDDEN'],
      [`${MALFORMED}/previews/4000/tokens`, {}, 'MALFORMED_PATH'],
      ['-bad/previews/4000/tokens', {}, 'INVALID_SESSION_ID'],
      ['running/previews/0x0FA0/tokens', {}, 'INVALID_PORT'],
      ['running/previews/4000/tokens', 'ttl', 'UNSUPPORTED_MEDIA_TYPE'],
      ['running/previews/4000/tokens', { pad: 'x'.repeat(17 * 1024) }, 'PAYLOAD_TOO_LARGE'],
      ['running/previews/4000/tokens', '{"ttlSeconds":', 'MALFORMED_JSON'],
      ['running/previews/4000/tokens', { ttlSeconds: 30 }, 'INVALID_TOKEN_TTL'],
      ['running/previews/5000/tokens', {}, 'PORT_NOT_REGISTERED'],
      ['broken/previews/4000/tokens', {}, 'INTERNAL'],
      ['running/previews/4000/tokens', { ttlSeconds: 600 }, 201],
    ] as const
  ).map(([path, body, expected]) => ({
    operationId: 'issuePreviewToken',
    method: 'POST',
    path: `/sessions/${path}`,
    body,
    expect: expected,
    ...(expected === 'UNSUPPORTED_MEDIA_TYPE' && { headers: { 'content-type': 'text/plain' } }),
  })),
  {
    operationId: 'issuePreviewToken',
    method: 'POST',
    path: '/sessions/running/previews/4000/tokens',
    expect: 'PREVIEW_TOKENS_DISABLED',
    withoutSecret: true,
  },
  ...(
    [
      ['running/previews/4000/tokens', 'FORBIDDEN'],
      [`${MALFORMED}/previews/4000/tokens`, 'MALFORMED_PATH'],
      ['-bad/previews/4000/tokens', 'INVALID_SESSION_ID'],
      ['running/previews/0x0FA0/tokens', 'INVALID_PORT'],
      ['running/previews/5000/tokens', 'PORT_NOT_REGISTERED'],
      ['broken/previews/4000/tokens', 'INTERNAL'],
      ['running/previews/4000/tokens', 200],
    ] as const
  ).map(([path, expected]) => ({
    operationId: 'revokePreviewTokens',
    method: 'DELETE',
    path: `/sessions/${path}`,
    expect: expected,
  })),
  ...(
    [
      ['running/previews/4000', 'FORBIDDEN'],
      [`${MALFORMED}/previews/4000`, 'MALFORMED_PATH'],
      ['-bad/previews/4000', 'INVALID_SESSION_ID'],
      ['running/previews/0x0FA0', 'INVALID_PORT'],
      ['running/previews/5000', 'PORT_NOT_REGISTERED'],
      ['broken/previews/4000', 'INTERNAL'],
      ['running/previews/4000', 200],
    ] as const
  ).map(([path, expected]) => ({
    operationId: 'removePreviewPort',
    method: 'DELETE',
    path: `/sessions/${path}`,
    expect: expected,
  })),
  ...(
    [
      ['running', 'FORBIDDEN'],
      [MALFORMED, 'MALFORMED_PATH'],
      ['-bad', 'INVALID_SESSION_ID'],
      ['nobody', 'PREVIEW_NOT_REGISTERED'],
      ['broken', 'INTERNAL'],
      ['running', 200],
    ] as const
  ).map(([id, expected]) => ({
    operationId: 'removePreview',
    method: 'DELETE',
    path: `/sessions/${id}/previews`,
    expect: expected,
  })),
  { operationId: 'getInternalApiDocument', method: 'GET', path: '/openapi.json', expect: 'FORBIDDEN' },
  { operationId: 'getInternalApiDocument', method: 'GET', path: '/openapi.json', expect: 200 },
  // fetch drops a fragment; these go out byte for byte.
  { operationId: 'getInternalApiDocument', method: 'GET', path: '/openapi.json#x', expect: 'MALFORMED_PATH' },
  {
    operationId: 'removePreview',
    method: 'DELETE',
    path: '/sessions/abc#x/previews',
    expect: 'MALFORMED_PATH',
  },
];

describe('the served API, through a real app (fake container resolver)', () => {
  let server: Server;
  let origin: string;
  let withoutSecret: Server;
  let plainOrigin: string;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(document, 'internal-api');
  const operationsById = new Map([...operationsOf(document).values()].map((op) => [op.operationId, op]));

  beforeAll(async () => {
    const registry = failingFor('broken', createInMemoryRegistry());
    const app = createPreviewApp({
      internalServiceKey: KEY,
      registry,
      resolver,
      logUnexpected: () => {},
      tokenSecret: 'openapi-test-secret-0123456789abcdef',
    });
    server = createServer(app.requestListener);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const plain = createPreviewApp({ internalServiceKey: KEY, resolver, logUnexpected: () => {} });
    withoutSecret = createServer(plain.requestListener);
    withoutSecret.listen(0, '127.0.0.1');
    await once(withoutSecret, 'listening');
    plainOrigin = `http://127.0.0.1:${(withoutSecret.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const each of [server, withoutSecret]) {
      each.closeAllConnections();
      await new Promise((resolve) => each.close(resolve));
    }
  });

  it('serves the document as JSON with the key, and the 403 without it', async () => {
    const served = await fetch(`${origin}${BASE}/openapi.json`, {
      headers: { 'x-internal-service-key': KEY },
    });
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/^application\/json\b/);
    expect(await served.json()).toEqual(createInternalApiDocument());
    const refused = await fetch(`${origin}${BASE}/openapi.json`);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({
      statusCode: 403,
      error: 'Forbidden',
      message: 'Forbidden',
      code: 'FORBIDDEN',
    });
  });

  it.each(EXCHANGES)('$operationId: $method $path -> $expect', async (exchange) => {
    const { method, path, body, expect: expected } = exchange;
    const headers: Record<string, string> = {
      // The FORBIDDEN exchanges present a wrong key.
      'x-internal-service-key': expected === 'FORBIDDEN' ? 'wrong' : KEY,
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...exchange.headers,
    };
    const target = exchange.withoutSecret ? plainOrigin : origin;
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const response = path.includes('#')
      ? await httpRequest(target, `${BASE}${path}`, {
          method,
          headers,
          ...(payload === undefined ? {} : { body: payload }),
        }).then((reply) => ({ status: reply.status, json: async () => reply.json() }))
      : await fetch(`${target}${BASE}${path}`, {
          method,
          headers,
          ...(payload !== undefined && { body: payload }),
        });
    const received: unknown = await response.json();
    if (typeof expected === 'number') expect(response.status, JSON.stringify(received)).toBe(expected);
    else {
      expect(errorBodySchema.parse(received).code).toBe(expected);
      expect(response.status).toBe(ERROR_STATUS[expected]);
    }
    const documented = operationsById.get(exchange.operationId)?.responses[String(response.status)];
    expect(documented, `${exchange.operationId} documents ${response.status}`).toBeDefined();
    if (typeof expected === 'string') expect(documented?.['x-error-codes']).toContain(expected);
    const schema = documented?.content['application/json']?.schema ?? {};
    const validate = ajv.compile(
      typeof schema.$ref === 'string' ? { $ref: `internal-api${schema.$ref}` } : schema,
    );
    expect(validate(received), ajv.errorsText(validate.errors)).toBe(true);
  });

  it('exercises every error row the document lists, except an unexpected failure of serving a constant', () => {
    const exercised = new Set(EXCHANGES.map((exchange) => `${exchange.operationId} ${exchange.expect}`));
    for (const operation of INTERNAL_API_OPERATIONS) {
      for (const code of operation.errorCodes) {
        if (operation.operationId === 'getInternalApiDocument' && code === 'INTERNAL') continue;
        expect(exercised, `${operation.operationId} ${code}`).toContain(`${operation.operationId} ${code}`);
      }
      expect(exercised).toContain(`${operation.operationId} ${operation.success.status}`);
    }
  });
});
