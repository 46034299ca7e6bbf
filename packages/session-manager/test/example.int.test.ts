// The README's example, run as written against the real engine: a session from an image, its port proxied
// once it answers, an exec, a file, and the removal.
import { FIXTURE_NODE_IMAGE, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalLoop } from '../examples/local-loop.js';

const KEY = 'example-key';
let loop: Awaited<ReturnType<typeof startLocalLoop>>;

beforeAll(async () => {
  loop = await startLocalLoop(KEY, 0);
});

afterAll(async () => {
  await loop?.close();
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${loop.url}/api/internal${path}`, {
    ...init,
    headers: { 'x-internal-service-key': KEY, 'content-type': 'application/json', ...init.headers },
  });

describe('examples/local-loop.ts', () => {
  it('creates a session, proxies its port, runs a command, writes a file and removes it', async () => {
    const sessionId = uniqueSessionId('example').toLowerCase();
    try {
      const created = await api('/sessions', {
        method: 'POST',
        body: JSON.stringify({ sessionId, image: FIXTURE_NODE_IMAGE, ports: [3000] }),
      });
      expect(created.status).toBe(201);

      const deadline = Date.now() + 30_000;
      let proxied = await fetch(`${loop.url}/previews/${sessionId}/hi`);
      while (proxied.status !== 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        proxied = await fetch(`${loop.url}/previews/${sessionId}/hi`);
      }
      expect(await proxied.json()).toMatchObject({ url: '/hi' });

      const exec = await api(`/sessions/${sessionId}/exec`, {
        method: 'POST',
        body: JSON.stringify({ cmd: ['sh', '-c', 'echo $SANDBOX_SESSION_ID'] }),
      });
      expect(
        (await exec.text())
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
      ).toEqual([
        { type: 'stdout', data: `${sessionId}\n` },
        { type: 'exit', exitCode: 0, timedOut: false },
      ]);

      const file = `/sessions/${sessionId}/files?path=/srv/note.txt`;
      expect(
        (await api(file, { method: 'PUT', body: 'noted', headers: { 'content-type': 'text/plain' } })).status,
      ).toBe(201);
      expect(await (await api(file)).text()).toBe('noted');
    } finally {
      const removed = await api(`/sessions/${sessionId}`, { method: 'DELETE' });
      expect(removed.status).toBe(200);
    }
  });
});
