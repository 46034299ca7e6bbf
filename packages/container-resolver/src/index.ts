export { CONTAINER_NAME_PREFIX, containerNameFor, sessionIdFromContainerName } from './container-name.js';
export {
  type ContainerWatcher,
  type ContainerWatcherListener,
  type ContainerWatcherOptions,
  createContainerWatcher,
  type WatcherConnection,
} from './container-watcher.js';
export { createDockerClient, type DockerClientOptions } from './docker-client.js';
export {
  classifySessionEvent,
  createJsonLineDecoder,
  type DockerEventMessage,
  type SessionEvent,
  WATCHED_CONTAINER_ACTIONS,
  WATCHED_NETWORK_ACTIONS,
} from './docker-events.js';
export {
  DEFAULT_DOCKER_SOCKET,
  DEFAULT_DOCKER_TIMEOUT_MS,
  type DockerConnectionOptions,
  type DockerEnv,
  type DockerOptionsFromEnvOptions,
  dockerOptionsFromEnv,
} from './docker-options.js';
export {
  PREVIEW_NETWORK_LABEL,
  PREVIEW_PORT_LABEL,
  PREVIEW_STRIP_PREFIX_LABEL,
  previewNetworkFromLabels,
  previewPortFromLabels,
  previewStripPrefixFromLabels,
} from './labels.js';
export {
  CONTAINER_STATES,
  type ContainerInspect,
  type ContainerState,
  type ParsedContainer,
  type ParseInspectOptions,
  parseContainerInspect,
} from './parse-inspect.js';
export { type ContainerListEntry, parseContainerListEntry } from './parse-list.js';
export {
  type ContainerInspector,
  type ContainerResolver,
  type ContainerResolverOptions,
  createContainerResolver,
  DEFAULT_RESOLVE_TIMEOUT_MS,
  type ResolvedContainer,
} from './resolver.js';
export { type ContainerInspectNetwork, type NetworkAddress, selectNetworkAddress } from './select-network.js';
export type { CachedContainer } from './session-cache.js';
export { createWatchingResolver, resolveCachedContainer } from './watching-resolver.js';
