import {
  type ContainerResolver,
  containerNameFor,
  previewErrors,
  type ResolvedContainer,
} from '@sandbox/error-contract';
import type { PreviewStateView, SessionContainerState } from '@sandbox/preview-registry';

function runningContainer(state: SessionContainerState & { state: 'running' }): ResolvedContainer {
  return { ip: state.ip, network: state.network, containerId: state.containerId ?? '', labels: {} };
}

/**
 * A resolver for processes without Docker (edges): answers from the container states the manager
 * publishes, with the same contract errors and messages the manager's own resolver gives, and no call
 * to anything on the request path.
 */
export function createSharedStateResolver(view: PreviewStateView): ContainerResolver {
  return {
    peek(sessionId) {
      const engine = view.engineState();
      if (engine !== undefined && !engine.connected) return undefined;
      const state = view.containerState(sessionId);
      // Anything but an address is an error, which resolve() reports.
      return state?.state === 'running' ? runningContainer(state) : undefined;
    },
    async resolve(sessionId) {
      const name = containerNameFor(sessionId);
      const engine = view.engineState();
      if (engine !== undefined && !engine.connected)
        throw previewErrors.containerLookupFailed(sessionId, new Error(engine.reason));
      const state = view.containerState(sessionId);
      if (state === undefined)
        throw previewErrors.containerLookupFailed(sessionId, new Error(`No such container: ${name}`));
      switch (state.state) {
        case 'missing':
          throw previewErrors.containerLookupFailed(sessionId, new Error(state.reason));
        case 'not-running':
          throw previewErrors.containerNotRunning(sessionId);
        case 'no-ip':
          throw previewErrors.containerNoIp(sessionId);
        case 'running':
          return runningContainer(state);
      }
    },
  };
}
