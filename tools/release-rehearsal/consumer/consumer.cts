// Type-checked only (tsc --noEmit) as CommonJS: a .cts file under node16 resolves the package's "require"
// condition, i.e. its .d.cts declarations.
import {
  type ContainerResolver,
  createPreviewApp,
  type ErrorBody,
  isPreviewError,
  type PreviewRegistry,
  previewErrors,
} from '@sandbox/preview-core';
import type { Express } from 'express';

export const app: Express = createPreviewApp({ internalServiceKey: 'k' });

export function resolverFor(hosts: Readonly<Record<string, string>>): ContainerResolver {
  return {
    async resolve(sessionId) {
      const ip = hosts[sessionId];
      if (ip === undefined) throw previewErrors.containerLookupFailed(sessionId, new Error('unknown host'));
      return { ip, network: 'static', containerId: sessionId, labels: {} };
    },
  };
}

export async function portOf(registry: PreviewRegistry, sessionId: string): Promise<number | undefined> {
  return registry.lookup(sessionId);
}

const forbidden = previewErrors.forbidden();
export const body: ErrorBody = {
  statusCode: forbidden.status,
  error: 'Forbidden',
  message: 'Forbidden',
  code: forbidden.code,
};
export const recognised: boolean = isPreviewError(forbidden);

// @ts-expect-error status is a number
export const wrong: string = forbidden.status;
