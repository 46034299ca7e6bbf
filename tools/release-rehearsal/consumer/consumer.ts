// Type-checked only (tsc --noEmit), as an ES module: under node16 (the project is "type": "module") it
// resolves the package's "import" condition, under bundler the same with module esnext. The expected
// errors below must stay errors: they fail the check if the package's types ever degrade to `any`.
import {
  accessIn,
  type ContainerResolver,
  createErrorHandler,
  createPreviewRouter,
  type ErrorBody,
  isPreviewError,
  keepsPrefixIn,
  type PreviewRegistry,
  portOf,
  previewErrors,
  registrationOf,
  type StoredPort,
  storedPort,
  toErrorResponse,
  withTokensRevoked,
} from '@sandbox/preview-core';
import express, { type Express } from 'express';

// One port per session in this consumer, kept in the stored form the registry package defines.
const entries = new Map<string, StoredPort>();
const entryOf = (sessionId: string, port: number) => {
  const entry = entries.get(sessionId);
  return entry !== undefined && portOf(entry) === port ? entry : undefined;
};

export const registry: PreviewRegistry = {
  async register(sessionId, port, { stripPrefix = true, visibility = 'public' } = {}) {
    const entry = storedPort(port, stripPrefix, visibility, entryOf(sessionId, port));
    entries.set(sessionId, entry);
    return registrationOf(sessionId, entry);
  },
  keepsPrefix(sessionId, port) {
    const entry = entryOf(sessionId, port);
    return entry !== undefined && keepsPrefixIn([entry], port);
  },
  accessOf(sessionId, port) {
    const entry = entryOf(sessionId, port);
    return entry === undefined ? undefined : accessIn([entry], port);
  },
  async revokeTokens(sessionId, port) {
    const entry = entryOf(sessionId, port);
    if (entry === undefined) return false;
    entries.set(sessionId, withTokensRevoked([entry], port)[0] ?? entry);
    return true;
  },
  async lookup(sessionId) {
    const entry = entries.get(sessionId);
    return entry === undefined ? undefined : portOf(entry);
  },
  async ports(sessionId) {
    const entry = entries.get(sessionId);
    return entry === undefined ? [] : [portOf(entry)];
  },
  async registrations(sessionId) {
    const entry = entries.get(sessionId);
    return entry === undefined ? [] : [registrationOf(sessionId, entry)];
  },
  async unregisterPort(sessionId, port) {
    return entryOf(sessionId, port) !== undefined && entries.delete(sessionId);
  },
  async unregister(sessionId) {
    return entries.delete(sessionId);
  },
};

export const resolver: ContainerResolver = {
  async resolve(sessionId) {
    if (sessionId !== 'local') throw previewErrors.containerLookupFailed(sessionId, new Error('unknown'));
    return { ip: '127.0.0.1', network: 'static', containerId: sessionId, labels: {} };
  },
};

export function createApp(internalServiceKey: string): Express {
  const app = express();
  app.use(createPreviewRouter({ registry, resolver, internalServiceKey }));
  app.use(createErrorHandler());
  return app;
}

export function errorBody(error: unknown): ErrorBody {
  return toErrorResponse(error).body;
}

const forbidden = previewErrors.forbidden();
export const status: number = forbidden.status;
export const code: ErrorBody['code'] = forbidden.code;
export const recognised: boolean = isPreviewError(forbidden);

// @ts-expect-error a port is a number
void registry.register('abc', '3000');
// @ts-expect-error stripPrefix is a boolean
void registry.register('abc', 3000, { stripPrefix: 'false' });
// @ts-expect-error the body's code is one of the contract's codes
export const badCode: ErrorBody['code'] = 'NOT_A_CODE';
// @ts-expect-error createPreviewRouter takes no registry of the wrong shape
createPreviewRouter({ registry: {} });
