import {
  createContainerWatcher,
  createDockerClient,
  createWatchingResolver,
} from '@sandbox/container-resolver';
import { createInMemoryRegistry } from '@sandbox/preview-registry';
import { createPreviewApp, servePreviewApp } from '@sandbox/preview-server';
import {
  createSessionManager,
  createSessionsApi,
  registerSessionPortsWhenReady,
} from '@sandbox/session-manager';

// A local preview service with sessions: the registration API and the sessions API behind one key, and the
// proxy routes, on Docker from DOCKER_HOST.
export async function startLocalLoop(internalServiceKey: string, port = 4002) {
  const registry = createInMemoryRegistry();
  const watcher = createContainerWatcher();
  watcher.start();
  // No request timeout: stops, exec and file streams last as long as they last.
  const docker = createDockerClient(process.env, { timeoutMs: 0 });
  const sessions = createSessionManager({
    docker,
    registry,
    urls: { publicUrl: `http://localhost:${port}`, publicPrefix: '/previews' },
    containers: { limits: { memoryBytes: 1024 ** 3, pidsLimit: 512 } },
  });
  const stopPorts = registerSessionPortsWhenReady({ watcher, registry });
  const app = createPreviewApp({
    registry,
    resolver: createWatchingResolver(watcher),
    internalServiceKey,
    internalApi: [createSessionsApi({ sessions, streams: docker })],
  });
  const served = await servePreviewApp(app, { port, host: '127.0.0.1', shutdownGraceMs: 5000 });
  return {
    url: served.url,
    close: async () => {
      await served.close();
      stopPorts();
      await watcher.stop();
    },
  };
}
