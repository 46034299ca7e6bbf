import {
  createPreviewApp,
  createServiceLogger,
  createSharedStateResolver,
  logAccess,
  servePreviewApp,
} from '@sandbox/preview-server';
import { createRedisPreviewState } from '@sandbox/preview-state-redis';

// An edge without Docker: the public route, answered from a replica of what a container-manager (or any
// writer) publishes to Redis, with access lines and a graceful close.
export async function startEdge(redisUrl: string, port = 8080) {
  const state = createRedisPreviewState({ url: redisUrl, role: 'reader' });
  await state.ready();
  const logger = createServiceLogger({ name: 'edge' });
  const app = createPreviewApp({
    registry: state.registry,
    resolver: createSharedStateResolver(state),
    internalProxy: false,
    onAccess: logAccess(logger),
  });
  const served = await servePreviewApp(app, { port, host: '127.0.0.1', shutdownGraceMs: 5000 });
  return {
    url: served.url,
    close: async () => {
      await served.close();
      await state.close();
    },
  };
}
