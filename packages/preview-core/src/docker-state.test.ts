import type { CachedContainer } from '@sandbox/container-resolver';
import type { PreviewStateView, SessionContainerState } from '@sandbox/preview-registry';
import { createSharedStateResolver } from '@sandbox/preview-server';
import { describe, expect, it } from 'vitest';
import { containerStateOf } from './docker-state.js';

const container = (overrides: Partial<{ running: boolean; ip: string; network: string }> = {}) =>
  ({
    present: true,
    container: { id: 'c1', running: true, ip: '172.17.0.2', network: 'bridge', labels: {}, ...overrides },
  }) as unknown as CachedContainer;

describe('containerStateOf', () => {
  it.each<[string, CachedContainer, SessionContainerState]>([
    ['running', container(), { state: 'running', ip: '172.17.0.2', network: 'bridge', containerId: 'c1' }],
    ['stopped', container({ running: false }), { state: 'not-running' }],
    ['without address', container({ ip: undefined as unknown as string }), { state: 'no-ip' }],
    [
      'absent',
      {
        present: false,
        cause: Object.assign(new Error('(HTTP 404) noise'), { json: { message: 'No such container: x' } }),
      },
      { state: 'missing', reason: 'No such container: x' },
    ],
  ])('%s', (_name, entry, expected) => {
    expect(containerStateOf(entry)).toEqual(expected);
  });
});

function view(
  states: Record<string, SessionContainerState>,
  engine?: PreviewStateView['engineState'],
): PreviewStateView {
  return {
    containerState: (id) => states[id],
    engineState: engine ?? (() => ({ connected: true })),
    containerSessions: () => Object.keys(states),
    connection: () => 'synced',
  };
}

describe('createSharedStateResolver', () => {
  const resolver = createSharedStateResolver(
    view({
      up: { state: 'running', ip: '172.17.0.9', network: 'bridge', containerId: 'c9' },
      down: { state: 'not-running' },
      bare: { state: 'no-ip' },
      gone: { state: 'missing', reason: 'No such container: sandbox-session-gone' },
    }),
  );

  it('answers the address of a running container', async () => {
    await expect(resolver.resolve('up')).resolves.toMatchObject({ ip: '172.17.0.9', network: 'bridge' });
  });

  it.each([
    ['down', 'Container for session down is not running'],
    ['bare', 'Container for session bare has no IP address'],
    ['gone', 'Failed to validate container for session gone: No such container: sandbox-session-gone'],
    ['never', 'Failed to validate container for session never: No such container: sandbox-session-never'],
  ])('%s gets the same contract message as the manager gives', async (id, message) => {
    await expect(resolver.resolve(id)).rejects.toMatchObject({ message });
  });

  it('answers 500 with the reason while the manager cannot reach the engine', async () => {
    const down = createSharedStateResolver(
      view({ up: { state: 'running', ip: '172.17.0.9', network: 'bridge' } }, () => ({
        connected: false,
        reason: 'connect ENOENT /var/run/docker.sock',
      })),
    );
    await expect(down.resolve('up')).rejects.toMatchObject({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: 'Failed to validate container for session up: connect ENOENT /var/run/docker.sock',
    });
    expect(down.peek?.('up')).toBeUndefined();
  });

  it('peek answers a running container as resolve does, and leaves every error to resolve', async () => {
    expect(resolver.peek?.('up')).toEqual(await resolver.resolve('up'));
    for (const id of ['down', 'bare', 'gone', 'never']) expect(resolver.peek?.(id), id).toBeUndefined();
  });
});
