import { connect } from 'node:net';
import type { ContainerWatcher } from '@sandbox/container-resolver';
import type { PreviewRegistry } from '@sandbox/preview-registry';
import { portSpecsFromLabels, type SessionPortSpec } from './session-spec.js';

/** Options of {@link registerSessionPortsWhenReady}. */
export interface SessionPortsOptions {
  watcher: Pick<ContainerWatcher, 'subscribe' | 'lookup'>;
  registry: PreviewRegistry;
  /** Pause between two connection attempts to a port. Default 250 ms. */
  probeIntervalMs?: number;
  /** How long a port may take to answer after its container starts. Default 10 min (an install, a build). */
  waitTimeoutMs?: number;
  /** Where a port that never answered, or a failed registration, is reported. */
  log?: (message: string, details?: unknown) => void;
}

function accepts(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * Registers the ports a session's labels ask for (`sandbox.session.ports`) each time its container starts
 * (and when the service finds it running), each once it accepts a TCP connection, so a preview is routed
 * when there is something to route to. The first port is made the active one again whenever another port
 * comes up after it. A new start, a stop or a removal ends the waiting of the run before. Returns a function
 * that stops.
 */
export function registerSessionPortsWhenReady({
  watcher,
  registry,
  probeIntervalMs = 250,
  waitTimeoutMs = 600_000,
  log = (message, details) => console.error(message, details),
}: SessionPortsOptions): () => void {
  // The waiting each session's current run owns; a newer start (or a stop) ends the older one's.
  const runs = new Map<string, symbol>();
  let stopped = false;
  const current = (sessionId: string, containerId: string, run: symbol) => {
    if (stopped || runs.get(sessionId) !== run) return false;
    const entry = watcher.lookup(sessionId);
    return entry?.present === true && entry.container.id === containerId && entry.container.running;
  };

  const register = (sessionId: string, { port, stripPrefix, visibility }: SessionPortSpec) =>
    registry.register(sessionId, port, { stripPrefix, visibility });

  const waitAndRegister = async (
    sessionId: string,
    containerId: string,
    run: symbol,
    ip: string,
    specs: readonly SessionPortSpec[],
  ) => {
    const [primary] = specs;
    let primaryRegistered = false;
    const deadline = Date.now() + waitTimeoutMs;
    await Promise.all(
      specs.map(async (spec) => {
        while (current(sessionId, containerId, run)) {
          if (await accepts(ip, spec.port, Math.min(1000, probeIntervalMs * 4))) {
            if (!current(sessionId, containerId, run)) return;
            await register(sessionId, spec);
            if (spec === primary) primaryRegistered = true;
            else if (primaryRegistered && primary) await register(sessionId, primary);
            return;
          }
          if (Date.now() > deadline) {
            log('a session port never accepted a connection', { sessionId, port: spec.port, waitTimeoutMs });
            return;
          }
          await sleep(probeIntervalMs);
        }
      }),
    ).catch((error: unknown) => log('could not register a session port', { sessionId, error }));
  };

  const unsubscribe = watcher.subscribe({
    started(sessionId, container) {
      const specs = portSpecsFromLabels(container.labels);
      if (specs.length === 0 || container.ip === undefined) return;
      const run = Symbol(sessionId);
      runs.set(sessionId, run);
      void waitAndRegister(sessionId, container.id, run, container.ip, specs);
    },
    changed(sessionId, entry) {
      if (!entry.present || !entry.container.running) runs.delete(sessionId);
    },
    removed(sessionId) {
      runs.delete(sessionId);
    },
  });
  return () => {
    stopped = true;
    unsubscribe();
  };
}
