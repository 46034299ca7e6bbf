import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the defaults', () => {
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k' })).toEqual({
      PORT: 4002,
      HOST: '0.0.0.0',
      INTERNAL_SERVICE_KEY: 'k',
      SHUTDOWN_GRACE_MS: 10_000,
      DOCKER_RECONCILE_INTERVAL_MS: 30_000,
      TRUSTED_PROXIES: [],
      PRESERVE_HOST: true,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      ACCESS_LOG: true,
      UPSTREAM_NETWORKS: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'],
      PROXY_TIMEOUT_MS: 60_000,
      UPSTREAM_ENGINE: 'auto',
      MAX_BODY_BYTES: 100 * 1024 * 1024,
      MAX_CONNECTIONS_PER_SESSION: 1024,
      MAX_HEADER_BYTES: 16_384,
      MAX_HEADER_COUNT: 100,
      HEADERS_TIMEOUT_MS: 20_000,
      REQUEST_TIMEOUT_MS: 300_000,
      CLIENT_BODY_TIMEOUT_MS: 20_000,
      CLIENT_SEND_TIMEOUT_MS: 60_000,
      CLIENT_MIN_RATE_BPS: 500,
      MAX_STALLED_PER_SESSION: 256,
      UPSTREAM_MAX_SOCKETS: 1024,
      UPSTREAM_QUEUE_TIMEOUT_MS: 5000,
      WS_HALF_CLOSE_TIMEOUT_MS: 5000,
      WS_IDLE_TIMEOUT_MS: 0,
      HOST_ROUTE_LOCALHOST: true,
      SESSIONS_API: true,
      SESSION_MEMORY: 2 * 1024 ** 3,
      SESSION_PIDS_LIMIT: 1024,
      SESSION_IMAGE_PULL: 'never',
      SESSION_FILE_MAX_BYTES: 1024 ** 3,
      SESSION_PORT_WAIT_MS: 600_000,
      REQUEST_LOG_SIZE: 100,
      REQUEST_LOG_SESSIONS: 500,
    });
  });

  it('wants the dashboard on a port of its own', () => {
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', DASHBOARD_PORT: '4004' }).DASHBOARD_PORT).toBe(4004);
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', PORT: '0', DASHBOARD_PORT: '0' }).DASHBOARD_PORT).toBe(0);
    for (const env of [{ DASHBOARD_PORT: '4002' }, { DASHBOARD_PORT: '9100', METRICS_PORT: '9100' }])
      expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', ...env })).toThrow(
        /DASHBOARD_PORT must differ from PORT and METRICS_PORT/,
      );
  });

  it('reads the sessions settings: sizes as Docker spells them, a public URL, pulling', () => {
    const config = loadConfig({
      INTERNAL_SERVICE_KEY: 'k',
      SESSION_MEMORY: '512m',
      SESSION_CPUS: '1.5',
      SESSION_PIDS_LIMIT: '256',
      SESSION_IMAGE_PULL: 'missing',
      SESSION_FILE_MAX_BYTES: '1.5g',
      PREVIEW_PUBLIC_URL: 'https://previews.example.com',
      SESSIONS_API: 'false',
    });
    expect(config).toMatchObject({
      SESSION_MEMORY: 512 * 1024 ** 2,
      SESSION_CPUS: 1.5,
      SESSION_PIDS_LIMIT: 256,
      SESSION_IMAGE_PULL: 'missing',
      SESSION_FILE_MAX_BYTES: 1.5 * 1024 ** 3,
      PREVIEW_PUBLIC_URL: 'https://previews.example.com',
      SESSIONS_API: false,
    });
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', SESSION_MEMORY: '1073741824' }).SESSION_MEMORY).toBe(
      1024 ** 3,
    );
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', SESSION_MEMORY: '2GiB' }).SESSION_MEMORY).toBe(
      2 * 1024 ** 3,
    );
    for (const [name, value] of [
      ['SESSION_MEMORY', 'lots'],
      ['SESSION_MEMORY', '512k'],
      ['SESSION_CPUS', '0'],
      ['SESSION_PIDS_LIMIT', '2'],
      ['SESSION_IMAGE_PULL', 'always'],
      ['PREVIEW_PUBLIC_URL', 'ftp://x'],
      ['SESSIONS_API', 'yes'],
    ] as const) {
      expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', [name]: value }), name).toThrow(name);
    }
  });

  it('reads the limits, and refuses values below their floor', () => {
    expect(
      loadConfig({
        INTERNAL_SERVICE_KEY: 'k',
        UPSTREAM_NETWORKS: ' 172.18.0.0/16 , fd00::/8 ',
        PROXY_TIMEOUT_MS: '0',
        MAX_BODY_BYTES: '1024',
        MAX_CONNECTIONS_PER_SESSION: '8',
        MAX_HEADER_BYTES: '8192',
        MAX_HEADER_COUNT: '50',
        HEADERS_TIMEOUT_MS: '5000',
        REQUEST_TIMEOUT_MS: '0',
        CLIENT_BODY_TIMEOUT_MS: '0',
        CLIENT_SEND_TIMEOUT_MS: '7000',
        CLIENT_MIN_RATE_BPS: '0',
        MAX_STALLED_PER_SESSION: '16',
        UPSTREAM_MAX_SOCKETS: '64',
        UPSTREAM_QUEUE_TIMEOUT_MS: '250',
        WS_HALF_CLOSE_TIMEOUT_MS: '0',
        WS_IDLE_TIMEOUT_MS: '600000',
      }),
    ).toMatchObject({
      UPSTREAM_NETWORKS: ['172.18.0.0/16', 'fd00::/8'],
      PROXY_TIMEOUT_MS: 0,
      MAX_BODY_BYTES: 1024,
      MAX_CONNECTIONS_PER_SESSION: 8,
      MAX_HEADER_BYTES: 8192,
      MAX_HEADER_COUNT: 50,
      HEADERS_TIMEOUT_MS: 5000,
      REQUEST_TIMEOUT_MS: 0,
      CLIENT_BODY_TIMEOUT_MS: 0,
      CLIENT_SEND_TIMEOUT_MS: 7000,
      CLIENT_MIN_RATE_BPS: 0,
      MAX_STALLED_PER_SESSION: 16,
      UPSTREAM_MAX_SOCKETS: 64,
      UPSTREAM_QUEUE_TIMEOUT_MS: 250,
      WS_HALF_CLOSE_TIMEOUT_MS: 0,
      WS_IDLE_TIMEOUT_MS: 600_000,
    });
    // At least one connection per container, or no request could ever be forwarded.
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', UPSTREAM_MAX_SOCKETS: '0' })).toThrow(
      /UPSTREAM_MAX_SOCKETS/,
    );
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', CLIENT_MIN_RATE_BPS: '-1' })).toThrow(
      /CLIENT_MIN_RATE_BPS/,
    );
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', UPSTREAM_ENGINE: 'undici' })).toMatchObject({
      UPSTREAM_ENGINE: 'undici',
    });
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', UPSTREAM_ENGINE: 'fast' })).toThrow(
      /UPSTREAM_ENGINE must be auto, native or undici/,
    );
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', HEADERS_TIMEOUT_MS: '10' })).toThrow(
      /HEADERS_TIMEOUT_MS/,
    );
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', MAX_HEADER_BYTES: '100' })).toThrow(
      /MAX_HEADER_BYTES/,
    );
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', UPSTREAM_NETWORKS: ' , ' })).toThrow(
      /UPSTREAM_NETWORKS/,
    );
    expect(() => loadConfig({ INTERNAL_SERVICE_KEY: 'k', PROXY_TIMEOUT_MS: '3000000000' })).toThrow(
      /PROXY_TIMEOUT_MS/,
    );
  });

  it('reads every variable', () => {
    expect(
      loadConfig({
        INTERNAL_SERVICE_KEY: 'k',
        PORT: '8080',
        HOST: '127.0.0.1',
        DOCKER_HOST: 'tcp://127.0.0.1:2375',
        PREVIEW_NETWORK: 'previews',
        SHUTDOWN_GRACE_MS: '500',
      }),
    ).toMatchObject({
      PORT: 8080,
      DOCKER_HOST: 'tcp://127.0.0.1:2375',
      PREVIEW_NETWORK: 'previews',
      SHUTDOWN_GRACE_MS: 500,
    });
  });

  it.each([
    [{}, /INTERNAL_SERVICE_KEY is required/],
    [{ INTERNAL_SERVICE_KEY: '' }, /INTERNAL_SERVICE_KEY must not be empty/],
    [{ INTERNAL_SERVICE_KEY: 'k', PORT: 'eighty' }, /PORT/],
    [{ INTERNAL_SERVICE_KEY: 'k', PORT: '70000' }, /PORT/],
    [{ INTERNAL_SERVICE_KEY: 'k', SHUTDOWN_GRACE_MS: '-1' }, /SHUTDOWN_GRACE_MS/],
    [{ INTERNAL_SERVICE_KEY: 'k', PRESERVE_HOST: 'yes' }, /PRESERVE_HOST must be true or false/],
    [{ INTERNAL_SERVICE_KEY: 'k', PREVIEW_DOMAIN: 'not a domain' }, /PREVIEW_DOMAIN must be a domain name/],
    [{ INTERNAL_SERVICE_KEY: 'k', PREVIEW_DOMAIN: '-x.test' }, /PREVIEW_DOMAIN/],
    [{ INTERNAL_SERVICE_KEY: 'k', LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of fatal, error/],
    [{ INTERNAL_SERVICE_KEY: 'k', LOG_FORMAT: 'xml' }, /LOG_FORMAT must be json or pretty/],
    [{ INTERNAL_SERVICE_KEY: 'k', REDIS_URL: 'http://127.0.0.1:6379' }, /REDIS_URL must be a redis:\/\//],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('reads the trusted proxies as a comma-separated list', () => {
    expect(
      loadConfig({ INTERNAL_SERVICE_KEY: 'k', TRUSTED_PROXIES: ' 10.0.0.1, 192.168.0.0/16 ,' })
        .TRUSTED_PROXIES,
    ).toEqual(['10.0.0.1', '192.168.0.0/16']);
  });

  it('reads the preview domain (normalised) and the Redis URL', () => {
    expect(
      loadConfig({
        INTERNAL_SERVICE_KEY: 'k',
        PREVIEW_DOMAIN: ' Preview.Example.COM. ',
        REDIS_URL: 'redis://127.0.0.1:6379/2',
      }),
    ).toMatchObject({ PREVIEW_DOMAIN: 'preview.example.com', REDIS_URL: 'redis://127.0.0.1:6379/2' });
  });

  it('treats an empty optional variable as unset', () => {
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', PORT: '', PREVIEW_NETWORK: '' })).toMatchObject({
      PORT: 4002,
    });
    expect(loadConfig({ INTERNAL_SERVICE_KEY: 'k', PREVIEW_NETWORK: '' }).PREVIEW_NETWORK).toBeUndefined();
  });
});
