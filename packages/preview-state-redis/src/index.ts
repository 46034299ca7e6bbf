export { createRedisPreviewState, type RedisPreviewStateOptions } from './redis-state.js';
export { ReadOnlyRegistryError } from './redis-state-reader.js';
