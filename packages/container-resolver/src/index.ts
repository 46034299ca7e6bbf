export { CONTAINER_NAME_PREFIX, containerNameFor } from './container-name.js';
export { createDockerClient, type DockerClientOptions } from './docker-client.js';
export {
  DEFAULT_DOCKER_SOCKET,
  DEFAULT_DOCKER_TIMEOUT_MS,
  type DockerConnectionOptions,
  type DockerEnv,
  type DockerOptionsFromEnvOptions,
  dockerOptionsFromEnv,
} from './docker-options.js';
export {
  CONTAINER_STATES,
  type ContainerInspect,
  type ContainerState,
  type ParsedContainer,
  type ParseInspectOptions,
  parseContainerInspect,
} from './parse-inspect.js';
export {
  type ContainerInspector,
  type ContainerResolver,
  type ContainerResolverOptions,
  createContainerResolver,
  DEFAULT_RESOLVE_TIMEOUT_MS,
  type ResolvedContainer,
} from './resolver.js';
export { type ContainerInspectNetwork, type NetworkAddress, selectNetworkAddress } from './select-network.js';
