import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import {
  createJsonLineDecoder,
  type DockerEventMessage,
  WATCHED_CONTAINER_ACTIONS,
  WATCHED_NETWORK_ACTIONS,
} from './docker-events.js';

type DestroyableStream = NodeJS.ReadableStream & { destroy?: (error?: Error) => void };

/** Options of {@link subscribeDockerEvents}. */
export interface DockerEventSubscriptionOptions {
  events: Pick<Docker, 'getEvents'>;
  /** `replayed`: the event was seen before the stream dropped and came again through `since`. */
  onMessage(message: DockerEventMessage, replayed: boolean): void;
  /** Runs after each (re)subscription, before it counts as connected: the place to resync state. */
  onSubscribed(): Promise<void>;
  onConnected(): void;
  onDisconnected(error: unknown): void;
  reconnectDelayMs: { initial: number; max: number };
  log: (message: string, details?: unknown) => void;
}

/** A running subscription; `stop` ends it for good. */
export interface DockerEventSubscription {
  stop(): Promise<void>;
}

function endOf(stream: DestroyableStream): Promise<unknown> {
  return new Promise((resolve) => {
    // The bare stream error ("aborted") would not tell a client what went wrong.
    stream.once('error', (error: unknown) =>
      resolve(
        new Error(
          `lost the Docker event stream (${error instanceof Error ? error.message : String(error)})`,
          { cause: error },
        ),
      ),
    );
    stream.once('end', () => resolve(new Error('Docker event stream ended')));
    stream.once('close', () => resolve(new Error('Docker event stream closed')));
  });
}

/**
 * Follows Docker's event stream for good: subscribes, resyncs, and after any end or error reconnects with
 * exponential backoff, replaying from the last event seen (`since`) so nothing in between is lost.
 */
export function subscribeDockerEvents(options: DockerEventSubscriptionOptions): DockerEventSubscription {
  const { events, onMessage, onSubscribed, onConnected, onDisconnected, reconnectDelayMs, log } = options;
  let stopped = false;
  let stream: DestroyableStream | undefined;
  let since: number | undefined;
  let wake: (() => void) | undefined;

  const follow = (source: DestroyableStream) => {
    // `since` is inclusive: events up to the last one seen before this subscription come again.
    const resumedFrom = since;
    const decode = createJsonLineDecoder((line) => log('unparsable Docker event', line));
    // Reads may split a multi-byte character; the decoder keeps the partial bytes for the next read.
    const text = new StringDecoder('utf8');
    source.on('data', (chunk: Buffer | string) => {
      for (const message of decode(
        typeof chunk === 'string' ? chunk : text.write(chunk),
      ) as DockerEventMessage[]) {
        const at =
          typeof message.timeNano === 'number'
            ? message.timeNano / 1e9
            : typeof message.time === 'number'
              ? message.time
              : undefined;
        if (at !== undefined) since = at;
        onMessage(message, resumedFrom !== undefined && at !== undefined && at <= resumedFrom);
      }
    });
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const run = async () => {
    let delay = reconnectDelayMs.initial;
    while (!stopped) {
      try {
        // Subscribe before resyncing, so nothing that happens during the resync is missed.
        stream = (await events.getEvents({
          ...(since === undefined ? {} : { since }),
          filters: {
            type: ['container', 'network'],
            event: [...WATCHED_CONTAINER_ACTIONS, ...WATCHED_NETWORK_ACTIONS],
          },
        })) as DestroyableStream;
        if (stopped) break;
        const ended = endOf(stream);
        follow(stream);
        await onSubscribed();
        if (stopped) break;
        onConnected();
        delay = reconnectDelayMs.initial;
        throw await ended;
      } catch (error) {
        stream?.destroy?.();
        stream = undefined;
        if (stopped) break;
        log('Docker event stream down; reconnecting', error);
        onDisconnected(error);
        await pause(delay);
        delay = Math.min(delay * 2, reconnectDelayMs.max);
      }
    }
    stream?.destroy?.();
  };
  const loop = run();

  return {
    async stop() {
      stopped = true;
      stream?.destroy?.();
      wake?.();
      await loop;
    },
  };
}
