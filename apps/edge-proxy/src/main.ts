import { runService } from '@sandbox/preview-server';
import { loadConfig } from './config.js';
import { startEdgeProxy } from './server.js';

// Configuration errors stop start-up with a message naming the variable; an unreachable Redis does not
// (the edge keeps retrying, and /readyz says it is not ready meanwhile).
runService('edge-proxy', async () => {
  const config = loadConfig(process.env);
  const edge = await startEdgeProxy(config);
  return {
    url: edge.url,
    close: () => edge.close(),
    logger: edge.logger,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    ...(edge.metricsUrl === undefined ? {} : { metricsUrl: edge.metricsUrl }),
  };
});
