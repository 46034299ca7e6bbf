import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDockerClient } from './docker-client.js';

/** docker-modem's runtime fields, which its typings leave out. */
interface ModemFields {
  socketPath?: unknown;
  host?: unknown;
  port?: unknown;
  protocol?: unknown;
  timeout?: unknown;
}

const modemOf = (client: ReturnType<typeof createDockerClient>): ModemFields =>
  client.modem as unknown as ModemFields;

describe('createDockerClient', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('connects to the socket from the given env, with the default timeout', () => {
    expect(modemOf(createDockerClient({ DOCKER_HOST: 'unix:///tmp/x.sock' }))).toMatchObject({
      socketPath: '/tmp/x.sock',
      host: undefined,
      timeout: 5000,
    });
  });

  it('connects over tcp with a custom timeout', () => {
    const client = createDockerClient({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, { timeoutMs: 100 });
    expect(modemOf(client)).toMatchObject({ host: '127.0.0.1', port: 2375, protocol: 'http', timeout: 100 });
  });

  // docker-modem merges its own reading of process.env underneath the options it is given.
  it('is not overridden by a tcp DOCKER_HOST in process.env', () => {
    vi.stubEnv('DOCKER_HOST', 'tcp://127.0.0.1:1');
    expect(modemOf(createDockerClient({}))).toMatchObject({
      socketPath: '/var/run/docker.sock',
      host: undefined,
    });
  });

  it('reads process.env by default', () => {
    vi.stubEnv('DOCKER_HOST', 'unix:///tmp/from-process-env.sock');
    expect(modemOf(createDockerClient())).toMatchObject({ socketPath: '/tmp/from-process-env.sock' });
  });

  it('throws an error naming DOCKER_HOST for a bad value', () => {
    expect(() => createDockerClient({ DOCKER_HOST: 'docker:2375' })).toThrow(
      'Invalid DOCKER_HOST "docker:2375"',
    );
  });
});
