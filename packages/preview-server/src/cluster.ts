import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { serveMetrics } from './metrics.js';
import { type RunningService, runService } from './serve.js';

/** Options of {@link runClusteredService}. */
export interface ClusteredServiceOptions {
  /** Worker processes; 1 runs the service in this process, as {@link runService} does. */
  workers: number;
  /** The primary serves the workers' merged metrics here (never the public port); none when unset. */
  metricsPort?: number | undefined;
  host: string;
  /** How long the workers get to drain on SIGTERM/SIGINT, before the primary kills what is left. */
  shutdownGraceMs: number;
  /** The primary's logger. */
  logger: Logger;
}

/** What a worker's service gives the primary: the registry whose metrics the primary merges. */
export interface ClusteredWorkerService extends RunningService {
  metricsRegistry?: Registry;
}

// A worker that keeps dying is restarted at most this often.
const RESTART_DELAY_MS = 1000;

/** Whether this process is a worker of {@link runClusteredService} (it must not serve metrics itself). */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/**
 * A service on several processes sharing one port (node:cluster: the primary accepts connections and hands
 * them to the workers in turn). Each worker runs `start` as {@link runService} does, with its own state,
 * health endpoints and graceful shutdown. The primary forks the workers, restarts one that dies, serves the
 * merged metrics of all of them (one scrape shows the whole), and on SIGTERM or SIGINT asks each to drain
 * and exits once they have (0, or 1 if one had to be killed). With `workers: 1` it is {@link runService}.
 */
export function runClusteredService(
  name: string,
  options: ClusteredServiceOptions,
  start: () => Promise<ClusteredWorkerService>,
): void {
  if (options.workers <= 1) {
    runService(name, start);
    return;
  }
  if (cluster.isWorker) {
    runService(name, async () => {
      const service = await start();
      // The primary asks each worker for its metrics over the cluster channel: constructing an aggregator
      // is what makes prom-client answer those requests here.
      if (service.metricsRegistry) {
        new AggregatorRegistry();
        AggregatorRegistry.setRegistries([service.metricsRegistry]);
      }
      return service;
    });
    return;
  }
  runPrimary(name, options).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

async function runPrimary(name: string, options: ClusteredServiceOptions): Promise<void> {
  const { logger, workers } = options;
  let stopping = false;
  const listening = new Set<Worker>();
  let announced = false;
  const fork = () => {
    const worker = cluster.fork();
    worker.once('listening', (address) => {
      listening.add(worker);
      if (announced || listening.size < workers) return;
      announced = true;
      const host =
        address.address === '0.0.0.0' || address.address === '::' || !address.address
          ? '127.0.0.1'
          : address.address;
      const url = `http://${host}:${address.port}`;
      logger.info({ url, workers }, `${name} listening on ${url} (${workers} workers)`);
    });
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker);
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, `${name}: a worker exited; starting another`);
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_DELAY_MS).unref();
  });
  for (let i = 0; i < workers; i += 1) fork();

  const aggregator = new AggregatorRegistry();
  const metricsServer =
    options.metricsPort === undefined
      ? undefined
      : await serveMetrics(
          { registry: { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType } },
          { port: options.metricsPort, host: options.host },
        );
  if (metricsServer) {
    const metricsUrl = `${metricsServer.url}/metrics`;
    logger.info({ metricsUrl }, `${name} metrics on ${metricsUrl}`);
  }

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info(
      { signal },
      `${signal} received: draining ${Object.keys(cluster.workers ?? {}).length} workers`,
    );
    const alive = Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker => worker !== undefined,
    );
    for (const worker of alive) worker.process.kill('SIGTERM');
    let killed = false;
    const deadline = setTimeout(() => {
      killed = true;
      for (const worker of alive) worker.process.kill('SIGKILL');
    }, options.shutdownGraceMs + 5000);
    const waits = alive.map(
      (worker) =>
        new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve()))),
    );
    Promise.all(waits)
      .then(() => metricsServer?.close())
      .then(() => {
        clearTimeout(deadline);
        logger.flush(() => process.exit(killed ? 1 : 0));
      });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
