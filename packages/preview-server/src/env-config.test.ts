import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseEnvConfig, serviceLimits, sharedEnvShape } from './env-config.js';

const shared = (env: Record<string, string> = {}) => parseEnvConfig(z.object(sharedEnvShape), env);

describe('serviceLimits', () => {
  it('gives the proxy the slow-client, queue and tunnel limits, with their defaults', () => {
    expect(serviceLimits(shared()).proxy).toMatchObject({
      maxSockets: 1024,
      queueTimeoutMs: 5000,
      bodyTimeoutMs: 20_000,
      sendTimeoutMs: 60_000,
      minTransferRateBps: 500,
      maxStalledPerSession: 256,
      tunnelHalfCloseTimeoutMs: 5000,
      tunnelIdleTimeoutMs: 0,
    });
  });

  it('passes each variable to its option', () => {
    const limits = serviceLimits(
      shared({
        UPSTREAM_MAX_SOCKETS: '32',
        UPSTREAM_QUEUE_TIMEOUT_MS: '100',
        CLIENT_BODY_TIMEOUT_MS: '1000',
        CLIENT_SEND_TIMEOUT_MS: '2000',
        CLIENT_MIN_RATE_BPS: '0',
        MAX_STALLED_PER_SESSION: '0',
        WS_HALF_CLOSE_TIMEOUT_MS: '0',
        WS_IDLE_TIMEOUT_MS: '30000',
      }),
    );
    expect(limits.proxy).toMatchObject({
      maxSockets: 32,
      queueTimeoutMs: 100,
      bodyTimeoutMs: 1000,
      sendTimeoutMs: 2000,
      minTransferRateBps: 0,
      maxStalledPerSession: 0,
      tunnelHalfCloseTimeoutMs: 0,
      tunnelIdleTimeoutMs: 30_000,
    });
  });
});
