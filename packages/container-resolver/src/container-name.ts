// The container name is part of the wire contract, so it lives with it; re-exported here, where Docker is.
export { CONTAINER_NAME_PREFIX, containerNameFor, sessionIdFromContainerName } from '@sandbox/error-contract';
