import type { PreviewRegistration } from '@sandbox/preview-registry';
import type Docker from 'dockerode';
import type { Session, SessionPort } from './schemas.js';
import {
  type PreviewUrlOptions,
  portSpecsFromLabels,
  previewUrlsOf,
  SESSION_MANAGED_LABEL,
} from './session-spec.js';

// Docker writes a zero time for "never started".
const NEVER = '0001-01-01T00:00:00Z';

/**
 * A session as the API describes it (pure): the container's inspect, and what the registry holds for it.
 * Its ports are those it asked for (registered once they answered) and any registered through the API.
 */
export function sessionViewOf(
  sessionId: string,
  inspect: Docker.ContainerInspectInfo,
  registrations: readonly PreviewRegistration[],
  urls: PreviewUrlOptions,
): Session {
  const labels = inspect.Config.Labels ?? {};
  const asked = portSpecsFromLabels(labels);
  const registered = new Map(registrations.map((registration) => [registration.port, registration]));
  // The path route serves the active port (the last registered) or, until one is, the first asked for.
  const primary = registrations.at(-1)?.port ?? asked[0]?.port;
  const port = (spec: Omit<SessionPort, 'registered' | 'urls'>, isRegistered: boolean): SessionPort => ({
    ...spec,
    registered: isRegistered,
    urls: previewUrlsOf(sessionId, spec.port, spec.port === primary, urls),
  });
  const ports = asked.map((spec) => {
    const registration = registered.get(spec.port);
    return registration === undefined
      ? port(spec, false)
      : port(
          { port: spec.port, stripPrefix: registration.stripPrefix, visibility: registration.visibility },
          true,
        );
  });
  for (const registration of registrations) {
    if (asked.some((spec) => spec.port === registration.port)) continue;
    const { port: number, stripPrefix, visibility } = registration;
    ports.push(port({ port: number, stripPrefix, visibility }, true));
  }
  const { State: state } = inspect;
  const started = state.StartedAt !== NEVER && state.StartedAt !== '';
  const ended = !state.Running && state.FinishedAt !== NEVER && state.FinishedAt !== '';
  return {
    sessionId,
    containerName: inspect.Name.replace(/^\//, ''),
    containerId: inspect.Id,
    image: inspect.Config.Image,
    managed: labels[SESSION_MANAGED_LABEL] === 'true',
    state: state.Status,
    running: state.Running,
    createdAt: inspect.Created,
    startedAt: started ? state.StartedAt : null,
    exitCode: ended ? state.ExitCode : null,
    ports,
  };
}
