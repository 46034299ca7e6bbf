import { sessionIdFromContainerName } from './container-name.js';

/** The container actions that can change whether or where a session is served. */
export const WATCHED_CONTAINER_ACTIONS = [
  'start',
  'restart',
  'die',
  'stop',
  'kill',
  'pause',
  'unpause',
  'destroy',
  'rename',
] as const;

/** The network actions that can change a container's address. */
export const WATCHED_NETWORK_ACTIONS = ['connect', 'disconnect'] as const;

/** One message of Docker's `GET /events` stream: only the fields read here. */
export interface DockerEventMessage {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Readonly<Record<string, string>> };
  time?: number;
  timeNano?: number;
}

/** A Docker event that matters to session containers. */
export type SessionEvent =
  | {
      kind: 'container';
      action: (typeof WATCHED_CONTAINER_ACTIONS)[number];
      containerId: string;
      sessionId: string;
      /** For `rename`: the session the container was serving before. */
      previousSessionId?: string;
    }
  | { kind: 'network'; action: (typeof WATCHED_NETWORK_ACTIONS)[number]; containerId: string };

function isOneOf<T extends string>(values: readonly T[], value: unknown): value is T {
  return typeof value === 'string' && (values as readonly string[]).includes(value);
}

/**
 * Picks the events of session containers out of Docker's stream (pure). Container events are matched by
 * name, since Docker cannot filter on a name prefix; network events by the container they name.
 */
export function classifySessionEvent(message: DockerEventMessage): SessionEvent | undefined {
  const attributes = message.Actor?.Attributes ?? {};
  if (message.Type === 'network' && isOneOf(WATCHED_NETWORK_ACTIONS, message.Action)) {
    const containerId = attributes.container;
    return containerId ? { kind: 'network', action: message.Action, containerId } : undefined;
  }
  if (message.Type !== 'container' || !isOneOf(WATCHED_CONTAINER_ACTIONS, message.Action)) return undefined;
  const containerId = message.Actor?.ID;
  const name = attributes.name;
  if (!containerId || !name) return undefined;
  const sessionId = sessionIdFromContainerName(name);
  const previousSessionId =
    message.Action === 'rename' && attributes.oldName
      ? sessionIdFromContainerName(attributes.oldName)
      : undefined;
  if (sessionId === undefined && previousSessionId === undefined) return undefined;
  return {
    kind: 'container',
    action: message.Action,
    containerId,
    // A container renamed away from a session name is handled as that session losing its container.
    sessionId: sessionId ?? (previousSessionId as string),
    ...(previousSessionId !== undefined && sessionId !== undefined ? { previousSessionId } : {}),
  };
}

/**
 * A decoder for Docker's newline-delimited JSON stream: chunks may split a message or carry several.
 * Returns the complete messages of each chunk; an unparsable line is reported and skipped.
 */
export function createJsonLineDecoder(
  onInvalid: (line: string) => void = () => {},
): (chunk: string) => unknown[] {
  let pending = '';
  return (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    const messages: unknown[] = [];
    for (const line of lines) {
      const trimmed = line.trim();
      if (trimmed === '') continue;
      try {
        messages.push(JSON.parse(trimmed));
      } catch {
        onInvalid(trimmed);
      }
    }
    return messages;
  };
}
