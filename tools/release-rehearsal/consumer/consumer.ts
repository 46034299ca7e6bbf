// Type-checked only (tsc --noEmit), as an ES module: under node16 (the project is "type": "module") it
// resolves the package's "import" condition, under bundler the same with module esnext. The expected
// errors below must stay errors: they fail the check if the package's types ever degrade to `any`.
import {
  type ContainerResolver,
  createErrorHandler,
  createPreviewRouter,
  type ErrorBody,
  isPreviewError,
  type PreviewRegistry,
  previewErrors,
  toErrorResponse,
} from '@sandbox/preview-core';
import express, { type Express } from 'express';

const ports = new Map<string, number>();
// Ports registered with stripPrefix: false, as `${sessionId} ${port}`.
const keptPrefix = new Set<string>();

export const registry: PreviewRegistry = {
  async register(sessionId, port, { stripPrefix = true } = {}) {
    ports.set(sessionId, port);
    if (stripPrefix) keptPrefix.delete(`${sessionId} ${port}`);
    else keptPrefix.add(`${sessionId} ${port}`);
    return { sessionId, port, stripPrefix };
  },
  keepsPrefix(sessionId, port) {
    return ports.get(sessionId) === port && keptPrefix.has(`${sessionId} ${port}`);
  },
  async lookup(sessionId) {
    return ports.get(sessionId);
  },
  // One port per session in this consumer: the list is that port.
  async ports(sessionId) {
    const port = ports.get(sessionId);
    return port === undefined ? [] : [port];
  },
  async unregisterPort(sessionId, port) {
    return ports.get(sessionId) === port && ports.delete(sessionId);
  },
  async unregister(sessionId) {
    return ports.delete(sessionId);
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
