import {
  type ContainerWatcher,
  previewPortFromLabels,
  previewStripPrefixFromLabels,
} from '@sandbox/container-resolver';
import type { PreviewRegistry } from '@sandbox/preview-registry';

/** Options of {@link syncRegistryWithContainers}. */
export interface RegistrySyncOptions {
  watcher: ContainerWatcher;
  registry: PreviewRegistry;
  /** Where a failed registry write is reported. Default: stderr. */
  log?: (message: string, details?: unknown) => void;
}

/**
 * Ties registrations to container lifecycles: a destroyed container loses its registrations (its previews
 * then answer 404), and a container labelled `sandbox.preview.port=<port>` is registered for that port each
 * time it starts, and when the service finds it running at start-up (with `sandbox.preview.strip-prefix`
 * as its `stripPrefix`). API registrations made later win
 * until the container's next start (last write wins). Returns a function that unties them.
 */
export function syncRegistryWithContainers({
  watcher,
  registry,
  log = (message, details) => console.error(message, details),
}: RegistrySyncOptions): () => void {
  return watcher.subscribe({
    removed(sessionId) {
      registry.unregister(sessionId).catch((error: unknown) => log('could not drop a registration', error));
    },
    started(sessionId, container) {
      const port = previewPortFromLabels(container.labels);
      if (port === undefined) return;
      const stripPrefix = previewStripPrefixFromLabels(container.labels);
      registry
        .register(sessionId, port, stripPrefix === undefined ? {} : { stripPrefix })
        .catch((error: unknown) => log('could not register a labelled port', error));
    },
  });
}
