import { ConfigError, loadConfig } from './config.js';
import { startContainerManager } from './server.js';

// The process entry: configuration errors stop start-up with a message naming the variable; an
// unreachable Docker engine does not (requests then get the contract's 500 with the reason).
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const manager = await startContainerManager(config);
  console.log(`container-manager listening on ${manager.url}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal} received: draining (up to ${config.SHUTDOWN_GRACE_MS} ms)`);
    manager.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('Shutdown failed', error);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
