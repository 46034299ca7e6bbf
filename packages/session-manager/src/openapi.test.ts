import { ERROR_STATUS } from '@sandbox/error-contract';
import { createInternalApiDocument, INTERNAL_API_OPERATIONS } from '@sandbox/preview-server';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { createSessionsApi } from './api.js';
import { SESSIONS_API_DOCUMENT } from './openapi.js';
import type { SessionManager } from './sessions.js';

const document = createInternalApiDocument({ extensions: [SESSIONS_API_DOCUMENT] });

// The routes the router really serves, read from Express's own stack: `METHOD /path` with `{param}`.
function servedRoutes(): string[] {
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error('not called')) });
  const { router } = createSessionsApi({
    sessions: unused as SessionManager,
    streams: unused as never,
  });
  const stack = (
    router as unknown as { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> }
  ).stack;
  return stack.flatMap(({ route }) =>
    route === undefined
      ? []
      : Object.keys(route.methods).map(
          (method) => `${method.toUpperCase()} ${route.path.replace(/:(\w+)/g, '{$1}')}`,
        ),
  );
}

describe('the sessions API in the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document with the registration routes beside it', async () => {
    const result = await new Validator().validate(
      JSON.parse(JSON.stringify(document)) as Record<string, unknown>,
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const ids = Object.values(document.paths).flatMap((item) =>
      Object.values(item).map((operation) => operation.operationId),
    );
    for (const operation of [...INTERNAL_API_OPERATIONS, ...SESSIONS_API_DOCUMENT.operations])
      expect(ids).toContain(operation.operationId);
  });

  it('documents every route the router serves, and nothing it does not', () => {
    const documented = SESSIONS_API_DOCUMENT.operations.map(
      (operation) => `${operation.method.toUpperCase()} ${operation.path}`,
    );
    expect(servedRoutes().sort()).toEqual(documented.sort());
  });

  it('documents each error code under its status, with the query parameters and media types', () => {
    const exec = document.paths['/api/internal/sessions/{id}/exec']?.post;
    expect(Object.keys(exec?.responses['200']?.content ?? {})).toEqual([
      'application/x-ndjson',
      'text/event-stream',
    ]);
    expect(exec?.responses['409']?.['x-error-codes']).toEqual(['SESSION_NOT_RUNNING']);
    const write = document.paths['/api/internal/sessions/{id}/files']?.put;
    expect(write?.parameters.map((parameter) => `${parameter.in}:${parameter.name}`)).toEqual([
      'path:id',
      'query:path',
    ]);
    expect(Object.keys(write?.requestBody?.content ?? {})).toEqual(['application/octet-stream']);
    for (const operation of SESSIONS_API_DOCUMENT.operations) {
      for (const code of operation.errorCodes) {
        const response =
          document.paths[`/api/internal${operation.path}`]?.[operation.method]?.responses[ERROR_STATUS[code]];
        expect(response?.['x-error-codes'], `${operation.operationId} ${code}`).toContain(code);
      }
    }
  });

  it('refuses an extension that redefines a component or an operation', () => {
    const [first] = SESSIONS_API_DOCUMENT.operations;
    if (first === undefined) throw new Error('no operations');
    expect(() =>
      createInternalApiDocument({ extensions: [SESSIONS_API_DOCUMENT, SESSIONS_API_DOCUMENT] }),
    ).toThrow(/defined twice|documented twice/);
    expect(() =>
      createInternalApiDocument({
        extensions: [{ operations: [{ ...first, path: '/x', requestBody: 'Nope' }] }],
      }),
    ).toThrow(/unknown component Nope/);
  });
});
