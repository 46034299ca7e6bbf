// Files of a session through the API, against the real engine: read, write (parents created), list, stat;
// paths that try to leave the container; and 100 MiB up and down with the manager's memory flat.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { FIXTURE_NODE_IMAGE, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatedBody, startManager, TEST_KEY } from './harness.js';
import { type ManagerProcess, mib, sampleRss, startManagerProcess } from './manager-process.js';
import { createdSessions, execOutput, sessionApi } from './sessions-support.js';

type Manager = Awaited<ReturnType<typeof startManager>>;

let manager: Manager;
let api: ReturnType<typeof sessionApi>;
const cleanup = createdSessions();
const sessionId = cleanup.track(uniqueSessionId('files').toLowerCase());
const files = (path: string, kind = '') =>
  `/api/internal/sessions/${sessionId}/files${kind}?path=${encodeURIComponent(path)}`;

beforeAll(async () => {
  manager = await startManager();
  api = sessionApi(manager.url);
  const created = await api.create({ sessionId, image: FIXTURE_NODE_IMAGE });
  expect(created.status, created.body.toString()).toBe(201);
});

afterAll(async () => {
  await manager?.close();
  await cleanup.removeAll();
});

const sh = async (script: string) => (await execOutput(manager.url, sessionId, ['sh', '-c', script])).stdout;

describe('the files API', () => {
  it('writes a file, creating its parents, and reads it back; the container sees the same bytes', async () => {
    const written = await api.raw('PUT', files('/work/new/dir/hello.txt'), 'hello, files\n', 'text/plain');
    expect(written.status, written.body.toString()).toBe(201);
    expect(written.json()).toEqual({ path: '/work/new/dir/hello.txt', size: 13, written: true });
    expect(await sh('cat /work/new/dir/hello.txt')).toBe('hello, files\n');

    const read = await api.get(files('/work/new/dir/hello.txt'));
    expect(read.status).toBe(200);
    expect(read.headers['content-type']).toBe('application/octet-stream');
    expect(read.headers['content-length']).toBe('13');
    expect(read.body.toString()).toBe('hello, files\n');

    // Overwriting keeps the file's mode.
    await sh('chmod 0750 /work/new/dir/hello.txt');
    expect((await api.raw('PUT', files('/work/new/dir/hello.txt'), 'second\n')).status).toBe(201);
    expect(await sh('cat /work/new/dir/hello.txt; stat -c %a /work/new/dir/hello.txt')).toBe('second\n750\n');
  });

  it('lists a directory and stats paths (a symlink described, not followed)', async () => {
    await sh(
      'mkdir -p /list/sub && echo 12345 > /list/a.txt && ln -s /list/a.txt /list/link && touch /list/sub/deep',
    );
    const listed = await api.get(files('/list', '/list'));
    expect(listed.status).toBe(200);
    const { path, entries } = listed.json<{ path: string; entries: Array<Record<string, unknown>> }>();
    expect(path).toBe('/list');
    expect(entries.map(({ name, type, size, linkTarget }) => ({ name, type, size, linkTarget }))).toEqual([
      { name: 'a.txt', type: 'file', size: 6, linkTarget: undefined },
      { name: 'link', type: 'symlink', size: 0, linkTarget: '/list/a.txt' },
      { name: 'sub', type: 'directory', size: 0, linkTarget: undefined },
    ]);
    const stat = await api.get(files('/list/a.txt', '/stat'));
    expect(stat.json()).toMatchObject({
      path: '/list/a.txt',
      name: 'a.txt',
      type: 'file',
      size: 6,
      mode: '0644',
    });
    expect(new Date(stat.json<{ modifiedAt: string }>().modifiedAt).getTime()).toBeGreaterThan(
      Date.now() - 60_000,
    );
    expect((await api.get(files('/list/link', '/stat'))).json()).toMatchObject({
      type: 'symlink',
      linkTarget: '/list/a.txt',
    });
    expect((await api.get(files('/list/link'))).body.toString()).toBe('12345\n');
    expect((await api.get(files('/', '/list'))).json<{ entries: Array<{ name: string }> }>().entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'list' }),
        expect.objectContaining({ name: 'srv' }),
      ]),
    );
  });

  it('answers the contract rows', async () => {
    const expectError = async (path: string, status: number, code: string, message?: string) => {
      const reply = await api.get(path);
      expect(reply.status, path).toBe(status);
      expect(reply.json(), path).toMatchObject({ code, ...(message === undefined ? {} : { message }) });
    };
    await expectError(
      files('/no/such/file'),
      404,
      'FILE_NOT_FOUND',
      `No file at /no/such/file in session ${sessionId}`,
    );
    await expectError(files('/srv'), 400, 'NOT_A_FILE', '/srv is not a regular file');
    await expectError(
      files('/list/a.txt', '/list'),
      400,
      'NOT_A_DIRECTORY',
      '/list/a.txt is not a directory',
    );
    await expectError(files('relative/path'), 400, 'INVALID_FILE_PATH');
    await expectError(files('/srv/../etc/passwd'), 400, 'INVALID_FILE_PATH');
    await expectError(files('/a\0b'), 400, 'INVALID_FILE_PATH');
    await expectError(`/api/internal/sessions/${sessionId}/files`, 400, 'INVALID_FILE_PATH');
    await expectError(
      '/api/internal/sessions/nobody-here/files?path=/etc/hostname',
      404,
      'SESSION_NOT_FOUND',
    );
    const onDirectory = await api.raw('PUT', files('/srv'), 'x');
    expect(onDirectory.json()).toMatchObject({ code: 'NOT_A_FILE' });
    const withoutKey = await new Promise<IncomingMessage>((resolve) =>
      request(`${manager.url}${files('/etc/hostname')}`, resolve).end(),
    );
    withoutKey.resume();
    expect(withoutKey.statusCode).toBe(403);
  });

  it('keeps paths inside the container: `..` refused, symlinks resolved in its root', async () => {
    const hostname = (await sh('cat /etc/hostname')).trim();
    const marker = `/tmp/sandbox-escape-${sessionId}`;
    expect(existsSync(marker)).toBe(false);
    await sh('ln -s ../../../../../../.. /tmp/up && ln -s /proc/1/root /tmp/proc-root && ln -s / /tmp/root');

    // A relative link climbing past the root stops at the container's root.
    const up = await api.get(files('/tmp/up/etc/hostname'));
    expect(up.status).toBe(200);
    expect(up.body.toString().trim()).toBe(hostname);
    // /proc/1/root is not followed into any process's root: nothing there, or the container's own.
    const proc = await api.get(files('/tmp/proc-root/etc/hostname'));
    if (proc.status === 200) expect(proc.body.toString().trim()).toBe(hostname);
    else expect(proc.json()).toMatchObject({ code: 'FILE_NOT_FOUND' });

    // Writes through the links land inside the container, never on the host.
    for (const link of ['/tmp/up', '/tmp/root', '/tmp/proc-root']) {
      const written = await api.raw('PUT', files(`${link}${marker}`), `through ${link}\n`);
      expect([201, 404, 502], `${link}: ${written.body.toString()}`).toContain(written.status);
    }
    expect(existsSync(marker)).toBe(false);
    expect(await sh(`cat ${marker}`)).toContain('through /tmp/');
  });
});

describe('100 MiB through the files API', () => {
  const SIZE = 100 * 1024 * 1024;
  // Streamed, the manager holds a few chunks at a time; buffered, it would hold the whole 100 MiB.
  const MAX_RSS_GROWTH = 64 * 1024 * 1024;
  let child: ManagerProcess;
  const bigSession = cleanup.track(uniqueSessionId('bigfile').toLowerCase());

  beforeAll(async () => {
    child = await startManagerProcess({ ACCESS_LOG: 'false' });
    const created = await sessionApi(child.url).create({ sessionId: bigSession, image: FIXTURE_NODE_IMAGE });
    expect(created.status, created.body.toString()).toBe(201);
    // A 32 MiB round trip first, so the baseline leaves out one-off costs (the allocator's and V8's first
    // high-water marks under a stream): what is measured is whether memory grows with a body 3 times larger.
    const warm = `${child.url}/api/internal/sessions/${bigSession}/files?path=/data/warm.bin`;
    const headers = { 'x-internal-service-key': TEST_KEY };
    const put = await fetch(warm, { method: 'PUT', headers, body: new Uint8Array(32 * 1024 * 1024) });
    expect(put.status).toBe(201);
    expect((await (await fetch(warm, { headers })).arrayBuffer()).byteLength).toBe(32 * 1024 * 1024);
  });

  afterAll(async () => {
    await child?.stop();
  });

  it.each([{ chunked: false }, { chunked: true }])(
    'writes and reads it back (chunked upload: $chunked) with the manager RSS growing < 64 MiB',
    async ({ chunked }) => {
      const path = `/data/big-${chunked ? 'chunked' : 'length'}.bin`;
      const url = `${child.url}/api/internal/sessions/${bigSession}/files?path=${encodeURIComponent(path)}`;
      const body = generatedBody(SIZE);

      const upSampler = await sampleRss(child.pid);
      const started = performance.now();
      const req = request(url, {
        method: 'PUT',
        headers: {
          'x-internal-service-key': TEST_KEY,
          'content-type': 'application/octet-stream',
          ...(chunked ? {} : { 'content-length': String(SIZE) }),
        },
      });
      const responded = new Promise<IncomingMessage>((resolve, reject) =>
        req.once('response', resolve).once('error', reject),
      );
      await pipeline(body.stream, req);
      const res = await responded;
      let text = '';
      for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString();
      const upMs = performance.now() - started;
      const up = await upSampler.stop();
      expect(res.statusCode, text).toBe(201);
      expect(JSON.parse(text)).toEqual({ path, size: SIZE, written: true });
      const sent = body.digest();
      const inContainer = await execOutput(child.url, bigSession, ['sha256sum', path]);
      expect(inContainer.stdout.split(' ')[0]).toBe(sent);

      const downSampler = await sampleRss(child.pid);
      const downStarted = performance.now();
      const down = await new Promise<IncomingMessage>((resolve, reject) =>
        request(url, { headers: { 'x-internal-service-key': TEST_KEY } }, resolve)
          .once('error', reject)
          .end(),
      );
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of down as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
      const downMs = performance.now() - downStarted;
      const read = await downSampler.stop();
      expect(down.statusCode).toBe(200);
      expect(down.headers['content-length']).toBe(String(SIZE));
      expect(bytes).toBe(SIZE);
      expect(hash.digest('hex')).toBe(sent);

      console.info(
        `[files ${chunked ? 'chunked' : 'content-length'}] up ${(upMs / 1000).toFixed(2)} s, RSS +${mib(up.peak - up.baseline)} MiB` +
          ` (baseline ${mib(up.baseline)}); down ${(downMs / 1000).toFixed(2)} s, RSS +${mib(read.peak - read.baseline)} MiB` +
          ` (${up.count + read.count} samples, max gap ${Math.max(up.maxGapMs, read.maxGapMs).toFixed(0)} ms)`,
      );
      expect(up.peak - up.baseline).toBeLessThan(MAX_RSS_GROWTH);
      expect(read.peak - read.baseline).toBeLessThan(MAX_RSS_GROWTH);
    },
    180_000,
  );

  it('refuses a body over the limit with 413, before or while reading it', async () => {
    const limited = await startManager({ SESSION_FILE_MAX_BYTES: '1m' });
    try {
      const limitedApi = sessionApi(limited.url);
      const path = `/api/internal/sessions/${bigSession}/files?path=/data/too-big.bin`;
      const declared = await limitedApi.raw('PUT', path, 'x'.repeat(1024 * 1024 + 1));
      expect(declared.status).toBe(413);
      expect(declared.json()).toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
        message: 'Request body must not exceed 1048576 bytes',
      });
      const req = request(`${limited.url}${path}`, {
        method: 'PUT',
        headers: { 'x-internal-service-key': TEST_KEY, 'transfer-encoding': 'chunked' },
      });
      const responded = new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
      req.on('error', () => {});
      req.write(Buffer.alloc(700 * 1024));
      req.write(Buffer.alloc(700 * 1024));
      req.end();
      const res = await responded;
      let text = '';
      for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString();
      expect(res.statusCode).toBe(413);
      expect(JSON.parse(text)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect((await execOutput(child.url, bigSession, ['ls', '/data'])).stdout).not.toContain('too-big');
    } finally {
      await limited.close();
    }
  });
});
