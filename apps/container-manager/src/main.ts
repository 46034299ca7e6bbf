import { runService } from '@sandbox/preview-core';
import { loadConfig } from './config.js';
import { startContainerManager } from './server.js';

// Configuration errors stop start-up with a message naming the variable; an unreachable Docker engine does
// not (requests then get the contract's 500 with the reason).
runService('container-manager', async () => {
  const config = loadConfig(process.env);
  const manager = await startContainerManager(config);
  return { ...manager, shutdownGraceMs: config.SHUTDOWN_GRACE_MS };
});
