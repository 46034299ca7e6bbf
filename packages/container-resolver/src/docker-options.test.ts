import { describe, expect, it } from 'vitest';
import { type DockerConnectionOptions, type DockerEnv, dockerOptionsFromEnv } from './docker-options.js';

const none = {
  socketPath: undefined,
  host: undefined,
  port: undefined,
  protocol: 'http',
  ca: undefined,
  cert: undefined,
  key: undefined,
  timeout: 5000,
} as const satisfies DockerConnectionOptions;

/** A fake file system: the content of each file is its path, so the test sees which files were read. */
const readFile = (path: string): Buffer => Buffer.from(path);
const tlsFiles = (dir: string) => ({
  ca: Buffer.from(`${dir}/ca.pem`),
  cert: Buffer.from(`${dir}/cert.pem`),
  key: Buffer.from(`${dir}/key.pem`),
});

describe('dockerOptionsFromEnv', () => {
  it.each<[string, DockerEnv, Partial<DockerConnectionOptions>]>([
    ['unset: the default socket', {}, { socketPath: '/var/run/docker.sock' }],
    ['empty: the default socket', { DOCKER_HOST: '' }, { socketPath: '/var/run/docker.sock' }],
    [
      'unix socket',
      { DOCKER_HOST: 'unix:///run/user/1000/docker.sock' },
      { socketPath: '/run/user/1000/docker.sock' },
    ],
    ['surrounding spaces', { DOCKER_HOST: ' unix:///tmp/d.sock ' }, { socketPath: '/tmp/d.sock' }],
    [
      'TLS ignored on a socket',
      { DOCKER_HOST: 'unix:///d.sock', DOCKER_TLS_VERIFY: '1' },
      { socketPath: '/d.sock' },
    ],
    ['tcp host and port', { DOCKER_HOST: 'tcp://10.0.0.5:2375' }, { host: '10.0.0.5', port: 2375 }],
    ['tcp with a trailing slash', { DOCKER_HOST: 'tcp://docker:2375/' }, { host: 'docker', port: 2375 }],
    ['tcp default port', { DOCKER_HOST: 'tcp://docker' }, { host: 'docker', port: 2375 }],
    ['tcp IPv6', { DOCKER_HOST: 'tcp://[::1]:2375' }, { host: '::1', port: 2375 }],
    [
      'TLS_VERIFY=0 is plain http',
      { DOCKER_HOST: 'tcp://docker:2375', DOCKER_TLS_VERIFY: '0' },
      { host: 'docker', port: 2375 },
    ],
    [
      'TLS with a cert path',
      { DOCKER_HOST: 'tcp://docker:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' },
      { host: 'docker', port: 2376, protocol: 'https', ...tlsFiles('/certs') },
    ],
    [
      'TLS default port and cert path ~/.docker',
      { DOCKER_HOST: 'tcp://docker', DOCKER_TLS_VERIFY: '1', HOME: '/home/u' },
      { host: 'docker', port: 2376, protocol: 'https', ...tlsFiles('/home/u/.docker') },
    ],
  ])('%s', (_case, env, expected) => {
    expect(dockerOptionsFromEnv(env, { readFile })).toEqual({ ...none, ...expected });
  });

  it.each<[string, DockerEnv, string]>([
    ['relative unix path', { DOCKER_HOST: 'unix://docker.sock' }, 'Invalid DOCKER_HOST "unix://docker.sock"'],
    ['unix without a path', { DOCKER_HOST: 'unix://' }, 'Invalid DOCKER_HOST "unix://"'],
    ['no scheme', { DOCKER_HOST: 'localhost:2375' }, 'Invalid DOCKER_HOST "localhost:2375"'],
    ['http scheme', { DOCKER_HOST: 'http://docker:2375' }, 'Invalid DOCKER_HOST "http://docker:2375"'],
    ['ssh scheme', { DOCKER_HOST: 'ssh://me@docker' }, 'Invalid DOCKER_HOST "ssh://me@docker"'],
    ['npipe scheme', { DOCKER_HOST: 'npipe:////./pipe/docker_engine' }, 'Invalid DOCKER_HOST'],
    ['tcp without host', { DOCKER_HOST: 'tcp://:2375' }, 'Invalid DOCKER_HOST "tcp://:2375"'],
    [
      'tcp port out of range',
      { DOCKER_HOST: 'tcp://docker:70000' },
      'Invalid DOCKER_HOST "tcp://docker:70000"',
    ],
    ['tcp port zero', { DOCKER_HOST: 'tcp://docker:0' }, 'Invalid DOCKER_HOST "tcp://docker:0"'],
    ['tcp port not a number', { DOCKER_HOST: 'tcp://docker:abc' }, 'Invalid DOCKER_HOST "tcp://docker:abc"'],
    [
      'tcp with a path',
      { DOCKER_HOST: 'tcp://docker:2375/v1.41' },
      'Invalid DOCKER_HOST "tcp://docker:2375/v1.41"',
    ],
    ['tcp with credentials', { DOCKER_HOST: 'tcp://u:p@docker:2375' }, 'Invalid DOCKER_HOST'],
    [
      'TLS_VERIFY garbage',
      { DOCKER_HOST: 'tcp://docker', DOCKER_TLS_VERIFY: 'yes please' },
      'Invalid DOCKER_TLS_VERIFY "yes please"',
    ],
    ['TLS_VERIFY garbage, socket', { DOCKER_TLS_VERIFY: 'maybe' }, 'Invalid DOCKER_TLS_VERIFY "maybe"'],
  ])('rejects %s', (_case, env, message) => {
    expect(() => dockerOptionsFromEnv(env, { readFile })).toThrow(message);
  });

  it('names the variable when a TLS file cannot be read', () => {
    const env = { DOCKER_HOST: 'tcp://docker', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nope' };
    const missing = (path: string): Buffer => {
      throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    };
    expect(() => dockerOptionsFromEnv(env, { readFile: missing })).toThrow(
      `Cannot read ca.pem from DOCKER_CERT_PATH "/nope": ENOENT: no such file or directory, open '/nope/ca.pem'`,
    );
  });

  it.each<[number, number | undefined]>([
    [250, 250],
    [0, undefined],
  ])('timeoutMs %d sets timeout %s', (timeoutMs, timeout) => {
    expect(dockerOptionsFromEnv({}, { timeoutMs })).toMatchObject({ timeout });
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects timeoutMs %d', (timeoutMs) => {
    expect(() => dockerOptionsFromEnv({}, { timeoutMs })).toThrow('Invalid timeoutMs');
  });
});
