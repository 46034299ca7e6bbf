import {
  assertDockerEngine,
  docker,
  ensureFixtureImages,
  RUN_LABEL,
  removeCreatedContainers,
  type StartSessionContainerOptions,
  startSessionContainer,
  testRunId,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createContainerResolver, createDockerClient } from '../src/index.js';
import { failure } from './failure.js';

const networks: string[] = [];
// Without an engine every test must fail with the reason, not be reported as skipped (as it would be if
// beforeAll threw).
let engineMissing: unknown;

beforeAll(async () => {
  try {
    await assertDockerEngine();
    await ensureFixtureImages();
  } catch (error) {
    engineMissing = error;
  }
});

afterAll(async () => {
  if (engineMissing !== undefined) return;
  await removeCreatedContainers();
  if (networks.length > 0) await docker(['network', 'rm', ...networks.splice(0)]);
});

/** A busybox session container: no web server is needed to resolve an address. */
const start = (options: StartSessionContainerOptions = {}) =>
  startSessionContainer({ image: 'busybox', ...options });

/** A user network for this run, removed in afterAll. */
async function createNetwork(tag: string): Promise<string> {
  const name = `crint-${uniqueSessionId(tag)}`;
  await docker(['network', 'create', '--label', `${RUN_LABEL}=${testRunId()}`, name]);
  networks.push(name);
  return name;
}

/** The IPv4 address Docker reports for a container on a network. */
const ipOn = (container: string, network: string) =>
  docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container]);

describe('createContainerResolver against the real engine', () => {
  const resolver = createContainerResolver({ docker: createDockerClient() });

  beforeEach(() => {
    if (engineMissing !== undefined) throw engineMissing;
  });

  it('resolves a running container to its bridge IP', async () => {
    const container = await start({ labels: { purpose: 'preview' } });
    const ip = await ipOn(container.id, 'bridge');
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const resolved = await resolver.resolve(container.sessionId);
    expect(resolved).toEqual({
      ip,
      network: 'bridge',
      containerId: container.id,
      labels: expect.any(Object),
    });
    expect(resolved.labels).toMatchObject({ purpose: 'preview' });
  });

  it('a stopped container is not running', async () => {
    const container = await start();
    await container.stop();
    expect(await failure(resolver.resolve(container.sessionId))).toEqual({
      code: 'CONTAINER_NOT_RUNNING',
      message: `Container for session ${container.sessionId} is not running`,
      status: 500,
    });
  });

  it('a paused container is not running', async () => {
    const container = await start();
    await container.pause();
    expect(await failure(resolver.resolve(container.sessionId))).toMatchObject({
      code: 'CONTAINER_NOT_RUNNING',
      message: `Container for session ${container.sessionId} is not running`,
    });
  });

  it('a missing container fails with the daemon reason', async () => {
    const id = uniqueSessionId('missing');
    expect(await failure(resolver.resolve(id))).toEqual({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: `Failed to validate container for session ${id}: No such container: sandbox-session-${id}`,
      status: 500,
    });
  });

  it('a container with --network none has no IP', async () => {
    const container = await start({ network: 'none' });
    expect(await failure(resolver.resolve(container.sessionId))).toEqual({
      code: 'CONTAINER_NO_IP',
      message: `Container for session ${container.sessionId} has no IP address`,
      status: 500,
    });
  });

  it('on several networks: the configured one, else the first by name', async () => {
    // zeta first: creation and connection order differ from name order.
    const zeta = await createNetwork('zeta');
    const alpha = await createNetwork('alpha');
    const container = await start({ network: zeta });
    await docker(['network', 'connect', alpha, container.id]);
    await docker(['network', 'connect', 'bridge', container.id]);
    const on = async (network: string) => ({ network, ip: await ipOn(container.id, network) });
    const client = createDockerClient();
    const resolve = async (network?: string) => {
      const resolved = await createContainerResolver({ docker: client, network }).resolve(
        container.sessionId,
      );
      return { network: resolved.network, ip: resolved.ip };
    };

    expect(await resolve(zeta)).toEqual(await on(zeta));
    expect(await resolve(alpha)).toEqual(await on(alpha));
    expect(await resolve()).toEqual(await on('bridge'));
    await docker(['network', 'disconnect', 'bridge', container.id]);
    expect(await resolve()).toEqual(await on(alpha));
  });
});
