// The sessions API against the real engine: containers from an image (environment, labels, limits, network),
// their lifecycle, and each new error row. Exec and files have their own suites.
import { existsSync } from 'node:fs';
import {
  docker,
  FIXTURE_BUSYBOX_IMAGE,
  FIXTURE_NODE_IMAGE,
  startSessionContainer,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorBody, eventually, send, startManager, TEST_KEY } from './harness.js';
import { createdSessions, execOutput, type SessionBody, sessionApi } from './sessions-support.js';

type Manager = Awaited<ReturnType<typeof startManager>>;

let manager: Manager;
let api: ReturnType<typeof sessionApi>;
const cleanup = createdSessions();
const network = `sandbox-sessions-${uniqueSessionId('net').toLowerCase()}`;

beforeAll(async () => {
  await docker(['network', 'create', '--label', 'sandbox.test=1', network]);
  manager = await startManager({
    PREVIEW_NETWORK: network,
    PREVIEW_DOMAIN: 'preview.example.test',
    PREVIEW_PUBLIC_URL: 'http://localhost:4002',
    SESSION_MEMORY: '256m',
    SESSION_CPUS: '0.5',
    SESSION_PIDS_LIMIT: '128',
  });
  api = sessionApi(manager.url);
});

afterAll(async () => {
  await manager?.close();
  await cleanup.removeAll();
  await docker(['network', 'rm', network]).catch(() => {});
});

describe('POST /api/internal/sessions', () => {
  it('creates and starts the container; its port is registered once it answers, then proxied', async () => {
    const sessionId = cleanup.track(uniqueSessionId('create').toLowerCase());
    const created = await api.create({ sessionId, image: FIXTURE_NODE_IMAGE, ports: [3000] });
    expect(created.status, created.body.toString()).toBe(201);
    expect(created.headers.location).toBe(`/api/internal/sessions/${sessionId}`);
    const session = created.json<SessionBody>();
    expect(session).toMatchObject({
      sessionId,
      containerName: `sandbox-session-${sessionId}`,
      image: FIXTURE_NODE_IMAGE,
      managed: true,
      state: 'running',
      running: true,
      exitCode: null,
    });
    expect(session.ports).toEqual([
      {
        port: 3000,
        stripPrefix: true,
        visibility: 'public',
        registered: expect.any(Boolean),
        urls: {
          path: `http://localhost:4002/previews/${sessionId}/`,
          host: `http://3000-${sessionId}.preview.example.test:4002/`,
        },
      },
    ]);

    const ready = await api.waitRegistered(sessionId);
    expect(ready.ports[0]?.registered).toBe(true);
    const proxied = await send(manager.url, `/previews/${sessionId}/hello?x=1`);
    expect(proxied.status).toBe(200);
    expect(proxied.json()).toMatchObject({ method: 'GET', url: '/hello?x=1' });
  });

  it('tells the app where it is served, labels the container, and applies the limits and the network', async () => {
    const sessionId = cleanup.track(uniqueSessionId('env').toLowerCase());
    const created = await api.create({
      sessionId,
      image: FIXTURE_NODE_IMAGE,
      ports: [{ port: 3000, stripPrefix: false }, 3001],
      env: { PORTS: '3000,3001', MY_SETTING: 'on' },
      workdir: '/tmp',
    });
    expect(created.status, created.body.toString()).toBe(201);
    const env = Object.fromEntries(
      (await execOutput(manager.url, sessionId, ['env'])).stdout
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({
      SANDBOX_SESSION_ID: sessionId,
      PREVIEW_PORT: '3000',
      PREVIEW_PATH_PREFIX: `/previews/${sessionId}`,
      PREVIEW_BASE_PATH: `/previews/${sessionId}/`,
      PREVIEW_URL: `http://localhost:4002/previews/${sessionId}/`,
      PREVIEW_HOST_URL: `http://3000-${sessionId}.preview.example.test:4002/`,
      PREVIEW_HOST_URL_3000: `http://3000-${sessionId}.preview.example.test:4002/`,
      PREVIEW_HOST_URL_3001: `http://3001-${sessionId}.preview.example.test:4002/`,
      MY_SETTING: 'on',
    });
    expect((await execOutput(manager.url, sessionId, ['pwd'])).stdout).toBe('/tmp\n');

    const inspect = JSON.parse(await docker(['inspect', `sandbox-session-${sessionId}`]))[0] as {
      HostConfig: {
        Memory: number;
        NanoCpus: number;
        PidsLimit: number;
        Init: boolean;
        SecurityOpt: string[];
      };
      Config: { Labels: Record<string, string> };
      NetworkSettings: { Networks: Record<string, unknown> };
    };
    expect(inspect.HostConfig).toMatchObject({
      Memory: 256 * 1024 * 1024,
      NanoCpus: 500_000_000,
      PidsLimit: 128,
      Init: true,
      SecurityOpt: ['no-new-privileges'],
    });
    expect(inspect.Config.Labels['sandbox.session.managed']).toBe('true');
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([network]);

    // Both ports come up; the first stays the active one (the path route's), whatever order they answered in.
    const ready = await api.waitRegistered(sessionId, 2);
    expect(ready.ports.map((port) => [port.port, port.registered, port.stripPrefix])).toEqual([
      [3000, true, false],
      [3001, true, true],
    ]);
    const previews = await send(manager.url, `/api/internal/sessions/${sessionId}/previews`, {
      headers: { 'x-internal-service-key': TEST_KEY },
    });
    expect(previews.json()).toMatchObject({ activePort: 3000 });
    // stripPrefix: false: the app receives the whole path.
    const proxied = await send(manager.url, `/previews/${sessionId}/page`);
    expect(proxied.json()).toMatchObject({ url: `/previews/${sessionId}/page` });
  });

  it('generates an id when none is given', async () => {
    const created = await api.create({ image: FIXTURE_BUSYBOX_IMAGE });
    expect(created.status, created.body.toString()).toBe(201);
    const { sessionId } = created.json<SessionBody>();
    cleanup.track(sessionId);
    expect(sessionId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('answers 409 SESSION_EXISTS when the name is taken, leaving the container as it was', async () => {
    const existing = await startSessionContainer({ image: 'busybox' });
    const taken = await api.create({ sessionId: existing.sessionId, image: FIXTURE_BUSYBOX_IMAGE });
    expect(taken.status).toBe(409);
    expect(taken.json()).toEqual({
      ...errorBody(409, 'Conflict', `Session ${existing.sessionId} already exists`),
      code: 'SESSION_EXISTS',
    });
    expect(await docker(['inspect', '-f', '{{.Id}}', `sandbox-session-${existing.sessionId}`])).toBe(
      existing.id,
    );
    await existing.remove();
  });

  it('answers 404 IMAGE_NOT_FOUND for an image the engine does not have, without pulling', async () => {
    const image = 'sandbox-no-such-image:never-built';
    const missing = await api.create({ image });
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({
      ...errorBody(404, 'Not Found', `Image ${image} not found locally (pulling is disabled)`),
      code: 'IMAGE_NOT_FOUND',
    });
  });

  it.each([
    [{}, 'image: Invalid input: expected string, received undefined'],
    [{ image: 'a b' }, 'image: must be an image reference'],
    [{ image: FIXTURE_BUSYBOX_IMAGE, ports: [80] }, 'ports.0'],
    [{ image: FIXTURE_BUSYBOX_IMAGE, ports: ['3000'] }, 'ports.0'],
    [{ image: FIXTURE_BUSYBOX_IMAGE, cmd: [] }, 'cmd'],
    [{ image: FIXTURE_BUSYBOX_IMAGE, cmd: 'sleep 1' }, 'cmd'],
    [{ image: FIXTURE_BUSYBOX_IMAGE, env: { 'A=B': 'x' } }, 'env'],
    [{ image: FIXTURE_BUSYBOX_IMAGE, workdir: 'relative' }, 'workdir'],
  ])('answers 400 INVALID_SESSION_REQUEST for %j', async (body, detail) => {
    const refused = await api.create(body);
    expect(refused.status).toBe(400);
    const error = refused.json<{ code: string; message: string }>();
    expect(error.code).toBe('INVALID_SESSION_REQUEST');
    expect(error.message).toContain(`Invalid request: ${detail}`);
  });

  it('answers the contract rows for the id, the key, the body and private ports', async () => {
    const badId = await api.create({ sessionId: '../x', image: FIXTURE_BUSYBOX_IMAGE });
    expect(badId.status).toBe(400);
    expect(badId.json()).toMatchObject({ code: 'INVALID_SESSION_ID' });
    const noKey = await send(manager.url, '/api/internal/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: FIXTURE_BUSYBOX_IMAGE }),
    });
    expect(noKey.status).toBe(403);
    expect(noKey.json()).toEqual({ ...errorBody(403, 'Forbidden', 'Forbidden'), code: 'FORBIDDEN' });
    expect((await send(manager.url, '/api/internal/sessions')).status).toBe(403);
    const notJson = await api.raw('POST', '/api/internal/sessions', 'image=x', 'text/plain');
    expect(notJson.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    const broken = await api.raw('POST', '/api/internal/sessions', '{"image":', 'application/json');
    expect(broken.json()).toMatchObject({ code: 'MALFORMED_JSON' });
    const large = await api.raw(
      'POST',
      '/api/internal/sessions',
      JSON.stringify({ image: 'x', pad: 'x'.repeat(1024 * 1024) }),
      'application/json',
    );
    expect(large.status).toBe(413);
    expect(large.json()).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'Request body must not exceed 1048576 bytes',
    });
    const privatePort = await api.create({
      image: FIXTURE_BUSYBOX_IMAGE,
      ports: [{ port: 3000, visibility: 'private' }],
    });
    expect(privatePort.status).toBe(400);
    expect(privatePort.json()).toMatchObject({ code: 'PREVIEW_TOKENS_DISABLED' });
  });
});

describe('the lifecycle: list, get, stop, start, remove', () => {
  it("leaves out a container with its label whose name is not a session's", async () => {
    // Names a session id cannot have: too long (ids are at most 128 characters), and not ours at all.
    const names = [
      `sandbox-session-${'a'.repeat(130)}`,
      `not-a-session-${uniqueSessionId('odd').toLowerCase()}`,
    ];
    try {
      for (const name of names)
        await docker([
          'create',
          '--label',
          'sandbox.session.managed=true',
          '--label',
          'sandbox.test=1',
          '--name',
          name,
          FIXTURE_BUSYBOX_IMAGE,
          'true',
        ]);
      const listed = await api.get('/api/internal/sessions');
      expect(listed.status, listed.body.toString()).toBe(200);
      const ids = listed.json<{ sessions: SessionBody[] }>().sessions.map((session) => session.sessionId);
      for (const name of names) expect(ids.some((id) => name.endsWith(id))).toBe(false);
    } finally {
      for (const name of names) await docker(['rm', '-f', name]).catch(() => {});
    }
  });

  it('lists only its own sessions, stops and starts them (ports registered again), removes them', async () => {
    const sessionId = cleanup.track(uniqueSessionId('life').toLowerCase());
    const byHand = await startSessionContainer({ image: 'busybox' });
    expect((await api.create({ sessionId, image: FIXTURE_NODE_IMAGE, ports: [3000] })).status).toBe(201);
    await api.waitRegistered(sessionId);

    const listed = (await api.get('/api/internal/sessions')).json<{ sessions: SessionBody[] }>();
    const ids = listed.sessions.map((session) => session.sessionId);
    expect(ids).toContain(sessionId);
    expect(ids).not.toContain(byHand.sessionId);
    // A container made by hand is still a session: described, with `managed: false`.
    const handMade = await api.get(`/api/internal/sessions/${byHand.sessionId}`);
    expect(handMade.json()).toMatchObject({ sessionId: byHand.sessionId, managed: false, running: true });
    await byHand.remove();

    const stopped = await api.post(`/api/internal/sessions/${sessionId}/stop?timeoutSeconds=1`);
    expect(stopped.status).toBe(200);
    expect(stopped.json()).toMatchObject({ state: 'exited', running: false });
    expect(stopped.json<SessionBody>().exitCode).toEqual(expect.any(Number));
    // Registrations stay; the proxy says the container is not running (the locked row).
    const down = await send(manager.url, `/previews/${sessionId}/`);
    expect(down.json()).toEqual({
      ...errorBody(500, 'Internal Server Error', `Container for session ${sessionId} is not running`),
      code: 'CONTAINER_NOT_RUNNING',
    });
    // Stopping again is what was asked: 200.
    expect((await api.post(`/api/internal/sessions/${sessionId}/stop?timeoutSeconds=1`)).status).toBe(200);

    const started = await api.post(`/api/internal/sessions/${sessionId}/start`);
    expect(started.status).toBe(200);
    expect(started.json()).toMatchObject({ state: 'running', running: true, exitCode: null });
    expect((await api.post(`/api/internal/sessions/${sessionId}/start`)).status).toBe(200);
    const up = await eventually(
      () => send(manager.url, `/previews/${sessionId}/again`),
      (reply) => reply.status === 200,
      20_000,
    );
    expect(up.json()).toMatchObject({ url: '/again' });

    const removed = await api.delete(`/api/internal/sessions/${sessionId}`);
    expect(removed.status).toBe(200);
    expect(removed.json()).toEqual({ sessionId, removed: true, ports: [3000] });
    await expect(docker(['inspect', `sandbox-session-${sessionId}`])).rejects.toThrow();
    const gone = await send(manager.url, `/previews/${sessionId}/`);
    expect(gone.json()).toMatchObject({ code: 'PREVIEW_NOT_REGISTERED' });
    const again = await api.delete(`/api/internal/sessions/${sessionId}`);
    expect(again.status).toBe(404);
    expect(again.json()).toEqual({
      ...errorBody(404, 'Not Found', `Session ${sessionId} not found`),
      code: 'SESSION_NOT_FOUND',
    });
  });

  it('is read back from Docker by a manager that starts later: its ports are registered again', async () => {
    const sessionId = cleanup.track(uniqueSessionId('restart').toLowerCase());
    expect((await api.create({ sessionId, image: FIXTURE_NODE_IMAGE, ports: [3000] })).status).toBe(201);
    // A second manager, with a registry of its own (in memory): all it knows comes from the labels.
    const later = await startManager();
    try {
      const session = await sessionApi(later.url).waitRegistered(sessionId);
      expect(session).toMatchObject({ managed: true, ports: [{ port: 3000, registered: true }] });
      const proxied = await send(later.url, `/previews/${sessionId}/from-labels`);
      expect(proxied.json()).toMatchObject({ url: '/from-labels' });
    } finally {
      await later.close();
    }
  });

  it('answers 404 SESSION_NOT_FOUND and 400 for bad ids and stop timeouts', async () => {
    for (const [method, path] of [
      ['GET', '/api/internal/sessions/nobody-here'],
      ['POST', '/api/internal/sessions/nobody-here/stop'],
      ['POST', '/api/internal/sessions/nobody-here/start'],
      ['DELETE', '/api/internal/sessions/nobody-here'],
    ] as const) {
      const reply = await api.raw(method, path);
      expect(reply.status, `${method} ${path}`).toBe(404);
      expect(reply.json()).toMatchObject({ code: 'SESSION_NOT_FOUND' });
    }
    expect((await api.get('/api/internal/sessions/-bad')).json()).toMatchObject({
      code: 'INVALID_SESSION_ID',
    });
    const badTimeout = await api.post('/api/internal/sessions/whoever/stop?timeoutSeconds=abc');
    expect(badTimeout.status).toBe(400);
    expect(badTimeout.json()).toMatchObject({ code: 'INVALID_SESSION_REQUEST' });
    // A fragment is never part of a request target: `/sessions/{id}#x/previews` is not `/sessions/{id}`.
    const sessionId = cleanup.track(uniqueSessionId('frag').toLowerCase());
    expect((await api.create({ sessionId, image: FIXTURE_BUSYBOX_IMAGE })).status).toBe(201);
    const fragment = await api.delete(`/api/internal/sessions/${sessionId}#x/previews`);
    expect(fragment.status).toBe(400);
    expect(fragment.json()).toMatchObject({ code: 'MALFORMED_PATH' });
    // The key is still checked first under the API; elsewhere a fragment is the 400 too.
    const withoutKey = await send(manager.url, `/api/internal/sessions/${sessionId}#x`, { method: 'DELETE' });
    expect(withoutKey.json()).toMatchObject({ code: 'FORBIDDEN' });
    expect((await send(manager.url, '/nowhere#x')).json()).toMatchObject({ code: 'MALFORMED_PATH' });
    expect((await api.get(`/api/internal/sessions/${sessionId}`)).json()).toMatchObject({ running: true });
  });
});

describe('engine failures', () => {
  it('answers 502 DOCKER_ENGINE_ERROR when the engine cannot be reached', async () => {
    const socket = `/tmp/sandbox-no-engine-${process.pid}.sock`;
    expect(existsSync(socket)).toBe(false);
    const offline = await startManager({ DOCKER_HOST: `unix://${socket}` });
    try {
      const reply = await sessionApi(offline.url).create({ image: FIXTURE_BUSYBOX_IMAGE });
      expect(reply.status).toBe(502);
      const body = reply.json<{ code: string; message: string; error: string }>();
      expect(body).toMatchObject({ code: 'DOCKER_ENGINE_ERROR', error: 'Bad Gateway' });
      expect(body.message).toMatch(/^Docker engine error: .*ENOENT/);
      const listed = await sessionApi(offline.url).get('/api/internal/sessions');
      expect(listed.json()).toMatchObject({ code: 'DOCKER_ENGINE_ERROR' });
    } finally {
      await offline.close();
    }
  });

  it('answers 502 IMAGE_PULL_FAILED when pulling is on and the registry fails', async () => {
    const pulling = await startManager({ SESSION_IMAGE_PULL: 'missing' });
    try {
      // A registry on a loopback port nothing listens on: the engine's pull fails at once.
      const image = '127.0.0.1:9/sandbox-missing:latest';
      const reply = await sessionApi(pulling.url).create({ image });
      expect(reply.status).toBe(502);
      const body = reply.json<{ code: string; message: string }>();
      expect(body.code).toBe('IMAGE_PULL_FAILED');
      expect(body.message).toContain(`Failed to pull image ${image}: `);
    } finally {
      await pulling.close();
    }
  });

  it("answers 502 DOCKER_ENGINE_ERROR with the engine's words, and leaves nothing behind", async () => {
    const misconfigured = await startManager({ PREVIEW_NETWORK: 'sandbox-no-such-network' });
    const sessionId = cleanup.track(uniqueSessionId('nonet').toLowerCase());
    try {
      const reply = await sessionApi(misconfigured.url).create({ sessionId, image: FIXTURE_BUSYBOX_IMAGE });
      expect(reply.status).toBe(502);
      expect(reply.json<{ message: string }>().message).toMatch(
        /^Docker engine error: .*sandbox-no-such-network/,
      );
      await expect(docker(['inspect', `sandbox-session-${sessionId}`])).rejects.toThrow();
    } finally {
      await misconfigured.close();
    }
  });

  it('creates a session whose command cannot run; it ends at once with the exit code to show for it', async () => {
    const sessionId = cleanup.track(uniqueSessionId('nostart').toLowerCase());
    const reply = await api.create({ sessionId, image: FIXTURE_BUSYBOX_IMAGE, cmd: ['/no/such/binary'] });
    expect(reply.status, reply.body.toString()).toBe(201);
    const ended = await eventually(
      async () => (await api.get(`/api/internal/sessions/${sessionId}`)).json<SessionBody>(),
      (session) => !session.running,
      10_000,
    );
    expect(ended).toMatchObject({ state: 'exited', exitCode: 127 });
  });
});
