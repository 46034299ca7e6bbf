import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type DockerEventMessage,
  WATCHED_CONTAINER_ACTIONS,
  WATCHED_NETWORK_ACTIONS,
} from './docker-events.js';
import { type DockerEventSubscriptionOptions, subscribeDockerEvents } from './event-subscription.js';

/** Real event lines from dockerd 20.10 (test/recorded/events.json), as the watcher's filter lets them through. */
const lines: string[] = JSON.parse(
  readFileSync(new URL('../test/recorded/events.json', import.meta.url), 'utf8'),
).filtered;
const messages: DockerEventMessage[] = lines.map((line) => JSON.parse(line));

const WATCHED_FILTERS = {
  type: ['container', 'network'],
  event: [...WATCHED_CONTAINER_ACTIONS, ...WATCHED_NETWORK_ACTIONS],
};

/** What getEvents does on one call: hand out a fresh stream, or reject. */
type Answer = 'stream' | Error | Promise<never>;

/**
 * A fake behind `getEvents`: each call answers with the next planned answer (then 'stream'), and every stream
 * handed out is a PassThrough the test writes to and ends. `happened` records callbacks and calls in order.
 */
function harness(
  options: {
    plan?: Answer[];
    onSubscribed?: () => Promise<void>;
    reconnectDelayMs?: { initial: number; max: number };
  } = {},
) {
  const plan = [...(options.plan ?? [])];
  const streams: PassThrough[] = [];
  const happened: unknown[] = [];
  const received: DockerEventMessage[] = [];
  const t0 = Date.now();
  /** When each getEvents call came, in ms after the start. */
  const callTimes: number[] = [];
  const getEvents = vi.fn(async (_options?: Docker.GetEventsOptions) => {
    happened.push('getEvents');
    callTimes.push(Date.now() - t0);
    const answer = plan.shift() ?? 'stream';
    if (answer instanceof Error) throw answer;
    if (answer !== 'stream') return answer;
    const stream = new PassThrough();
    streams.push(stream);
    return stream;
  });
  const log = vi.fn();
  const onSubscribed = vi.fn(async () => {
    happened.push('subscribed');
    await options.onSubscribed?.();
  });
  const onConnected = vi.fn(() => {
    happened.push('connected');
  });
  const onDisconnected = vi.fn((error: unknown) => {
    happened.push(['disconnected', error instanceof Error ? error.message : error]);
  });
  const subscriptionOptions: DockerEventSubscriptionOptions = {
    events: { getEvents } as unknown as Pick<Docker, 'getEvents'>,
    onMessage: (message) => {
      received.push(message);
    },
    onSubscribed,
    onConnected,
    onDisconnected,
    reconnectDelayMs: options.reconnectDelayMs ?? { initial: 5, max: 20 },
    log,
  };
  const subscription = subscribeDockerEvents(subscriptionOptions);
  const stream = (index = streams.length - 1) => {
    const s = streams[index];
    if (!s) throw new Error(`no stream #${index}`);
    return s;
  };
  return {
    subscription,
    getEvents,
    callTimes,
    log,
    onSubscribed,
    onConnected,
    onDisconnected,
    happened,
    received,
    stream,
  };
}

/** Lets streams and promise chains settle (real timers). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

let stopAll: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(stopAll.map((stop) => stop()));
  stopAll = [];
});
function start(...args: Parameters<typeof harness>) {
  const h = harness(...args);
  stopAll.push(() => h.subscription.stop());
  return h;
}

describe('subscribeDockerEvents: subscription', () => {
  it('subscribes with the watched filters and no since, then resyncs, then counts as connected', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    expect(h.getEvents).toHaveBeenCalledTimes(1);
    expect(h.getEvents).toHaveBeenCalledWith({ filters: WATCHED_FILTERS });
    expect(h.happened).toEqual(['getEvents', 'subscribed', 'connected']);
  });

  it('events arriving during the resync are delivered, not lost', async () => {
    let finishResync = () => {};
    const h = start({ onSubscribed: () => new Promise<void>((resolve) => (finishResync = resolve)) });
    await vi.waitFor(() => expect(h.onSubscribed).toHaveBeenCalled());
    h.stream().write(`${lines[0]}\n`);
    await settle();
    expect(h.received).toEqual([messages[0]]);
    expect(h.onConnected).not.toHaveBeenCalled();
    finishResync();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
  });

  it('hands every recorded message to onMessage, in order, across chunks split mid-message', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    const text = `${lines.join('\n')}\n`;
    // Cut at character boundaries, so each chunk is valid UTF-8 on its own.
    for (let i = 0; i < text.length; i += 97) h.stream().write(Buffer.from(text.slice(i, i + 97), 'utf8'));
    await vi.waitFor(() => expect(h.received).toHaveLength(messages.length));
    expect(h.received).toEqual(messages);
  });

  it('several messages in one chunk, blank lines between', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    h.stream().write(`${lines[0]}\n\n${lines[1]}\n${lines[2]}\n`);
    await vi.waitFor(() => expect(h.received).toEqual(messages.slice(0, 3)));
  });

  it('logs an unparsable line and goes on', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    h.stream().write(`{"Type":\n${lines[0]}\n`);
    await vi.waitFor(() => expect(h.received).toEqual([messages[0]]));
    expect(h.log).toHaveBeenCalledWith('unparsable Docker event', '{"Type":');
    expect(h.onDisconnected).not.toHaveBeenCalled();
  });

  // BUG: event-subscription.ts decodes each Buffer chunk on its own (`chunk.toString()`), so a multi-byte
  // character cut by a chunk boundary turns into U+FFFD. Recorded from the real engine: an event carrying
  // ~100 KB of labels arrived in 64 KiB reads, and every chunk had a character cut at an edge.
  it('a multi-byte character cut between two Buffer chunks arrives intact', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    const line = lines.find((l) => l.includes('héllo')) as string;
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    const cut = bytes.indexOf(Buffer.from('é', 'utf8')) + 1; // between the two bytes of é
    h.stream().write(bytes.subarray(0, cut));
    h.stream().write(bytes.subarray(cut));
    await vi.waitFor(() => expect(h.received).toHaveLength(1));
    expect(h.received[0]?.Actor?.Attributes?.['sandbox.note']).toBe('héllo ✓ 日本');
  });
});

describe('subscribeDockerEvents: reconnection', () => {
  it.each<[string, (stream: PassThrough) => void, string]>([
    ['end', (stream) => stream.end(), 'Docker event stream ended'],
    [
      'error',
      (stream) => stream.destroy(new Error('socket hang up')),
      'lost the Docker event stream (socket hang up)',
    ],
    ['close without end', (stream) => stream.destroy(), 'Docker event stream closed'],
  ])(
    'stream %s -> disconnected with the reason, then resubscribes, resyncs, connected',
    async (_case, cut, reason) => {
      const h = start();
      await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalledTimes(1));
      cut(h.stream(0));
      await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalledTimes(2));
      expect(h.happened).toEqual([
        'getEvents',
        'subscribed',
        'connected',
        ['disconnected', reason],
        'getEvents',
        'subscribed',
        'connected',
      ]);
      expect(h.log).toHaveBeenCalledWith('Docker event stream down; reconnecting', expect.any(Error));
    },
  );

  it('replays from the last event seen: since is its timeNano in seconds', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    h.stream().write(`${lines.slice(0, 5).join('\n')}\n`);
    await vi.waitFor(() => expect(h.received).toHaveLength(5));
    h.stream().end();
    await vi.waitFor(() => expect(h.getEvents).toHaveBeenCalledTimes(2));
    const last = messages[4] as DockerEventMessage;
    expect(h.getEvents).toHaveBeenLastCalledWith({
      since: (last.timeNano as number) / 1e9,
      filters: WATCHED_FILTERS,
    });
  });

  it('falls back to time (seconds) when an event has no timeNano', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    const { timeNano: _dropped, ...withoutNano } = messages[0] as DockerEventMessage;
    h.stream().end(`${JSON.stringify(withoutNano)}\n`);
    await vi.waitFor(() => expect(h.getEvents).toHaveBeenCalledTimes(2));
    expect(h.getEvents).toHaveBeenLastCalledWith({ since: withoutNano.time, filters: WATCHED_FILTERS });
  });

  it('keeps since across failed attempts', async () => {
    const refused = new Error('connect ECONNREFUSED /var/run/docker.sock');
    const h = start({ plan: ['stream', refused, refused] });
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    h.stream().end(`${lines[3]}\n`);
    await vi.waitFor(() => expect(h.getEvents).toHaveBeenCalledTimes(4));
    const since = ((messages[3] as DockerEventMessage).timeNano as number) / 1e9;
    for (const call of h.getEvents.mock.calls.slice(1))
      expect(call[0]).toEqual({ since, filters: WATCHED_FILTERS });
  });

  it('a failing resync counts as down: no connected, the stream is dropped, and it tries again', async () => {
    let failures = 1;
    const h = start({
      onSubscribed: async () => {
        if (failures-- > 0) throw new Error('list failed');
      },
    });
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalledTimes(1));
    expect(h.happened).toEqual([
      'getEvents',
      'subscribed',
      ['disconnected', 'list failed'],
      'getEvents',
      'subscribed',
      'connected',
    ]);
    expect(h.stream(0).destroyed).toBe(true);
    expect(h.stream(1).destroyed).toBe(false);
  });

  it('getEvents rejecting (ECONNREFUSED) keeps retrying with exponential backoff up to max, reporting each failure', async () => {
    vi.useFakeTimers();
    const refused = Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), {
      code: 'ECONNREFUSED',
    });
    const h = start({ plan: Array(6).fill(refused), reconnectDelayMs: { initial: 100, max: 400 } });
    await vi.advanceTimersByTimeAsync(2_000);
    // Waits: 100, 200, 400, 400, 400, then the 7th call gets a stream.
    expect(h.callTimes).toEqual([0, 100, 300, 700, 1100, 1500, 1900]);
    expect(h.onDisconnected).toHaveBeenCalledTimes(6);
    for (const [error] of h.onDisconnected.mock.calls) expect(error).toBe(refused);
    expect(h.log).toHaveBeenCalledWith('Docker event stream down; reconnecting', refused);
    expect(h.onConnected).toHaveBeenCalledTimes(1);
  });

  it('the backoff starts over after a successful connection', async () => {
    vi.useFakeTimers();
    const refused = new Error('connect ECONNREFUSED /var/run/docker.sock');
    const h = start({ plan: [refused, refused, 'stream'], reconnectDelayMs: { initial: 100, max: 1_000 } });
    await vi.advanceTimersByTimeAsync(300); // 0, 100, 300: connected
    expect(h.getEvents).toHaveBeenCalledTimes(3);
    expect(h.onConnected).toHaveBeenCalledTimes(1);
    h.stream().end();
    await vi.advanceTimersByTimeAsync(99);
    expect(h.getEvents).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.getEvents).toHaveBeenCalledTimes(4);
  });
});

describe('subscribeDockerEvents: stop', () => {
  it('while connected: destroys the stream and makes no further call', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    await h.subscription.stop();
    expect(h.stream().destroyed).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.getEvents).toHaveBeenCalledTimes(1);
    expect(h.onDisconnected).not.toHaveBeenCalled();
    expect(h.onSubscribed).toHaveBeenCalledTimes(1);
  });

  it('during the backoff: returns at once, without waiting for the delay or calling again', async () => {
    const h = start({
      plan: [new Error('connect ECONNREFUSED')],
      reconnectDelayMs: { initial: 60_000, max: 60_000 },
    });
    await vi.waitFor(() => expect(h.onDisconnected).toHaveBeenCalled());
    const began = Date.now();
    await h.subscription.stop();
    expect(Date.now() - began).toBeLessThan(1_000);
    expect(h.getEvents).toHaveBeenCalledTimes(1);
  });

  it('while getEvents is pending: the stream it brings is destroyed and not resynced', async () => {
    let answer: (stream: PassThrough) => void = () => {};
    const late = new PassThrough();
    const h = start({ plan: [new Promise<never>((resolve) => (answer = resolve as never))] });
    const stopped = h.subscription.stop();
    answer(late);
    await stopped;
    expect(late.destroyed).toBe(true);
    expect(h.onSubscribed).not.toHaveBeenCalled();
    expect(h.onConnected).not.toHaveBeenCalled();
    expect(h.getEvents).toHaveBeenCalledTimes(1);
  });

  it('twice is harmless', async () => {
    const h = start();
    await vi.waitFor(() => expect(h.onConnected).toHaveBeenCalled());
    await Promise.all([h.subscription.stop(), h.subscription.stop()]);
    await h.subscription.stop();
    expect(h.getEvents).toHaveBeenCalledTimes(1);
  });

  // BUG: run() calls onConnected() unconditionally once onSubscribed() resolves, even when stop() came
  // in meanwhile; the watcher then tells its listeners connection(true) after it was asked to stop.
  it('during the resync: onConnected is not called once stopped', async () => {
    let finishResync = () => {};
    const h = start({ onSubscribed: () => new Promise<void>((resolve) => (finishResync = resolve)) });
    await vi.waitFor(() => expect(h.onSubscribed).toHaveBeenCalled());
    const stopped = h.subscription.stop();
    finishResync();
    await stopped;
    expect(h.stream().destroyed).toBe(true);
    expect(h.getEvents).toHaveBeenCalledTimes(1);
    expect(h.onConnected).not.toHaveBeenCalled();
  });
});
