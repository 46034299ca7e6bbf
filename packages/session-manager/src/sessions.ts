import { randomBytes } from 'node:crypto';
import { containerNameFor, previewErrors, sessionIdFromContainerName } from '@sandbox/error-contract';
import type { PreviewRegistry } from '@sandbox/preview-registry';
import type Docker from 'dockerode';
import { dockerStatusOf, sessionCallError } from './docker-errors.js';
import type { CreateSessionRequest, RemovedSession, Session } from './schemas.js';
import {
  containerCreateOptions,
  type PreviewUrlOptions,
  portSpecsOf,
  previewEnvironment,
  SESSION_MANAGED_LABEL,
  type SessionContainerOptions,
} from './session-spec.js';
import { sessionViewOf } from './session-view.js';

/** The Docker calls the sessions API makes. */
export type SessionDocker = Pick<
  Docker,
  'createContainer' | 'getContainer' | 'listContainers' | 'getImage' | 'pull' | 'modem'
>;

/** Options of {@link createSessionManager}. */
export interface SessionManagerOptions {
  docker: SessionDocker;
  /** The registrations a removed session loses, and that its description shows. */
  registry: PreviewRegistry;
  /** Where previews are served: the URLs a session is told (environment) and shown. */
  urls: PreviewUrlOptions;
  /** Network and resource limits of every created container. */
  containers?: SessionContainerOptions;
  /** Pull an image the engine does not have (else 404 IMAGE_NOT_FOUND). Default false. */
  pullImages?: boolean;
  /** Whether private ports can be served (`PREVIEW_TOKEN_SECRET`); else asking for one is a 400. */
  tokensEnabled?: boolean;
}

/** Session containers: `sandbox-session-{id}`, created from an image, started, stopped, removed. */
export interface SessionManager {
  /** Creates and starts a session's container; its ports are registered as they answer. */
  create(request: CreateSessionRequest): Promise<Session>;
  /** The sessions created through this API, oldest first. */
  list(): Promise<Session[]>;
  /** Any session's container (`managed` says whether this API created it). */
  get(sessionId: string): Promise<Session>;
  /** Stops the container (SIGTERM, then SIGKILL after `timeoutSeconds`, default 10). */
  stop(sessionId: string, timeoutSeconds?: number): Promise<Session>;
  start(sessionId: string): Promise<Session>;
  /** Removes the container (and its anonymous volumes); its registrations go with it. */
  remove(sessionId: string): Promise<RemovedSession>;
}

/** Creates a {@link SessionManager}. */
export function createSessionManager({
  docker,
  registry,
  urls,
  containers = {},
  pullImages = false,
  tokensEnabled = false,
}: SessionManagerOptions): SessionManager {
  const describe = async (sessionId: string): Promise<Session> => {
    const container = docker.getContainer(containerNameFor(sessionId));
    const inspect = await container.inspect().catch((error: unknown) => {
      throw sessionCallError(sessionId, error);
    });
    return sessionViewOf(sessionId, inspect, await registry.registrations(sessionId), urls);
  };

  const ensureImage = async (image: string) => {
    try {
      await docker.getImage(image).inspect();
      return;
    } catch (error) {
      if (dockerStatusOf(error) !== 404) throw previewErrors.dockerEngineError(error);
    }
    if (!pullImages) throw previewErrors.imageNotFound(image);
    try {
      const stream = await docker.pull(image);
      // The pull answers 200 at once; a failure (no such repository, no access) comes as a progress event.
      await new Promise<void>((resolve, reject) =>
        docker.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve())),
      );
    } catch (error) {
      throw previewErrors.imagePullFailed(image, error);
    }
  };

  return {
    async create(request) {
      const sessionId = request.sessionId ?? randomBytes(8).toString('hex');
      const ports = portSpecsOf(request.ports);
      if (!tokensEnabled && ports.some((port) => port.visibility === 'private'))
        throw previewErrors.previewTokensDisabled();
      await ensureImage(request.image);
      const env = previewEnvironment(sessionId, ports, urls);
      let container: Docker.Container;
      try {
        container = await docker.createContainer(
          containerCreateOptions(sessionId, request, ports, env, containers),
        );
      } catch (error) {
        if (dockerStatusOf(error) === 409) throw previewErrors.sessionExists(sessionId);
        throw previewErrors.dockerEngineError(error);
      }
      try {
        await container.start();
      } catch (error) {
        // A container that cannot start (no such command, say) is not left behind under the session's name.
        await container.remove({ force: true, v: true }).catch(() => {});
        throw previewErrors.dockerEngineError(error);
      }
      return describe(sessionId);
    },

    async list() {
      const entries = await docker
        .listContainers({ all: true, filters: { label: [`${SESSION_MANAGED_LABEL}=true`] } })
        .catch((error: unknown) => {
          throw previewErrors.dockerEngineError(error);
        });
      const sessions = await Promise.all(
        entries
          .sort((a, b) => a.Created - b.Created)
          .map(async (entry) => {
            // A labelled container renamed to something that is not a session's name is not listed.
            const sessionId = (entry.Names ?? [])
              .map(sessionIdFromContainerName)
              .find((id): id is string => id !== undefined);
            if (sessionId === undefined) return undefined;
            // One removed between the list and its inspect is simply no longer there.
            return describe(sessionId).catch((error: unknown) => {
              if ((error as { code?: unknown }).code === 'SESSION_NOT_FOUND') return undefined;
              throw error;
            });
          }),
      );
      return sessions.filter((session): session is Session => session !== undefined);
    },

    get: describe,

    async stop(sessionId, timeoutSeconds = 10) {
      const container = docker.getContainer(containerNameFor(sessionId));
      await container.stop({ t: timeoutSeconds }).catch((error: unknown) => {
        // 304: it was not running, which is what was asked.
        if (dockerStatusOf(error) !== 304) throw sessionCallError(sessionId, error);
      });
      return describe(sessionId);
    },

    async start(sessionId) {
      const container = docker.getContainer(containerNameFor(sessionId));
      await container.start().catch((error: unknown) => {
        if (dockerStatusOf(error) !== 304) throw sessionCallError(sessionId, error);
      });
      return describe(sessionId);
    },

    async remove(sessionId) {
      const container = docker.getContainer(containerNameFor(sessionId));
      // Read first: the watcher drops them as soon as the destroy event arrives, which may be before the
      // remove call returns.
      const ports = await registry.ports(sessionId);
      await container.remove({ force: true, v: true }).catch((error: unknown) => {
        throw sessionCallError(sessionId, error);
      });
      // And here too, so the caller never sees them after the answer, whenever the event comes.
      await registry.unregister(sessionId);
      return { sessionId, removed: true, ports };
    },
  };
}
