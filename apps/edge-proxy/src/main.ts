import { ConfigError, createServiceLogger, runClusteredService } from '@sandbox/preview-server';
import { loadConfig } from './config.js';
import { startEdgeProxy } from './server.js';

// Configuration errors stop start-up with a message naming the variable; an unreachable Redis does not
// (the edge keeps retrying, and /readyz says it is not ready meanwhile). WORKERS processes share the port;
// the primary serves their merged metrics.
const config = (() => {
  try {
    return loadConfig(process.env);
  } catch (error) {
    // As runService reports it: a configuration error by its message alone (it names the variable).
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  }
})();
runClusteredService(
  'edge-proxy',
  {
    workers: config.WORKERS,
    metricsPort: config.METRICS_PORT,
    host: config.HOST,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    logger: createServiceLogger({ name: 'edge-proxy', level: config.LOG_LEVEL, format: config.LOG_FORMAT }),
  },
  async () => {
    const edge = await startEdgeProxy(config);
    return {
      url: edge.url,
      close: () => edge.close(),
      logger: edge.logger,
      shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
      ...(edge.metricsUrl === undefined ? {} : { metricsUrl: edge.metricsUrl }),
      ...(edge.metricsRegistry === undefined ? {} : { metricsRegistry: edge.metricsRegistry }),
    };
  },
);
