import {
  connectWebSocket,
  parsePrometheusText,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { register, send, startManager } from './harness.js';

// A known sequence of requests against a real manager and container, then the values on /metrics.
let manager: RunningContainerManager;
let box: SessionContainer;

beforeAll(async () => {
  box = await startSessionContainer();
  manager = await startManager({ METRICS_PORT: '0' });
});

afterAll(async () => {
  await manager?.close();
  await removeCreatedContainers();
});

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(manager.metricsUrl ?? 'missing');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parsePrometheusText(await res.text());
}

describe('metrics', () => {
  it('counts a known sequence of requests, lookups and Docker calls', async () => {
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    for (let i = 0; i < 3; i++)
      expect((await send(manager.url, `/previews/${box.sessionId}/n${i}`)).status).toBe(200);
    expect((await send(manager.url, '/previews/nobody-here/')).status).toBe(404);
    const ws = await connectWebSocket(`${manager.url.replace('http', 'ws')}/previews/${box.sessionId}/ws`, {
      timeoutMs: 5000,
    });
    await ws.next();
    ws.close(1000);
    await ws.ended;
    await new Promise((resolve) => setTimeout(resolve, 100));

    const m = await scrape();
    expect(m.get('preview_http_requests_total{route="/previews",method="GET",status_class="2xx"}')).toBe(3);
    expect(m.get('preview_http_requests_total{route="/previews",method="GET",status_class="4xx"}')).toBe(1);
    expect(m.get('preview_http_requests_total{route="api",method="POST",status_class="2xx"}')).toBe(1);
    expect(m.get('preview_websockets_total{route="/previews",status_class="1xx"}')).toBe(1);
    expect(m.get('preview_registration_requests_total{method="POST",status_class="2xx"}')).toBe(1);
    expect(m.get('preview_request_duration_seconds_count{route="/previews"}')).toBe(4);
    expect(m.get('preview_upstream_connect_seconds_count{route="/previews"}')).toBe(3);
    // The registration's check, three requests and the WebSocket: five lookups, the 404 needed none.
    const hits = m.get('preview_container_cache_lookups_total{result="hit"}') ?? 0;
    const misses = m.get('preview_container_cache_lookups_total{result="miss"}') ?? 0;
    expect(hits + misses).toBe(5);
    expect(hits).toBeGreaterThanOrEqual(4);
    expect(m.get('preview_docker_api_calls_total{operation="events"}')).toBe(1);
    expect(m.get('preview_docker_api_calls_total{operation="list"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('preview_docker_event_stream_up')).toBe(1);
    expect(m.get('preview_docker_event_stream_reconnects_total')).toBe(0);
    expect(m.get('preview_active_websockets')).toBe(0);
    expect(m.get('preview_active_connections')).toBeGreaterThanOrEqual(0);
    // This Node has its built-in parser, so the native client serves, by default.
    expect(m.get('preview_upstream_engine_info{engine="native",reason="default"}')).toBe(1);
    expect(m.has('process_cpu_user_seconds_total')).toBe(true);
    expect(m.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('say which engine serves when UPSTREAM_ENGINE chose it', async () => {
    const chosen = await startManager({ METRICS_PORT: '0', UPSTREAM_ENGINE: 'undici' });
    try {
      const m = parsePrometheusText(await (await fetch(chosen.metricsUrl ?? 'missing')).text());
      expect(m.get('preview_upstream_engine_info{engine="undici",reason="configured"}')).toBe(1);
      expect([...m.keys()].filter((key) => key.startsWith('preview_upstream_engine_info'))).toHaveLength(1);
    } finally {
      await chosen.close();
    }
  });

  it('are not served on the public port', async () => {
    const reply = await send(manager.url, '/metrics');
    expect(reply.status).toBe(404);
    expect(reply.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });
});
