// Exec in a session through the API, against the real engine: output streams while the command runs, exit
// codes pass through, a timeout or a client that goes away kills the command and everything it started.
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { FIXTURE_NODE_IMAGE, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startManager, TEST_KEY } from './harness.js';
import { createdSessions, type ExecLine, execOutput, sessionApi } from './sessions-support.js';

type Manager = Awaited<ReturnType<typeof startManager>>;

let manager: Manager;
const cleanup = createdSessions();
const sessionId = cleanup.track(uniqueSessionId('exec').toLowerCase());

beforeAll(async () => {
  manager = await startManager();
  const created = await sessionApi(manager.url).create({ sessionId, image: FIXTURE_NODE_IMAGE });
  expect(created.status, created.body.toString()).toBe(201);
});

afterAll(async () => {
  await manager?.close();
  await cleanup.removeAll();
});

/** Starts an exec and returns its response, unread. */
async function openExec(body: unknown, accept?: string): Promise<IncomingMessage> {
  const req = request(`${manager.url}/api/internal/sessions/${sessionId}/exec`, {
    method: 'POST',
    headers: {
      'x-internal-service-key': TEST_KEY,
      'content-type': 'application/json',
      ...(accept === undefined ? {} : { accept }),
    },
  });
  req.end(JSON.stringify(body));
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  return res;
}

// The processes of the container, as `ps` shows them (busybox: PID USER COMMAND).
async function processes(): Promise<string[]> {
  const { stdout } = await execOutput(manager.url, sessionId, ['ps', '-o', 'pid,stat,args']);
  return stdout.trim().split('\n').slice(1);
}

describe('POST /api/internal/sessions/:id/exec', () => {
  it('streams each line as the command writes it, then the exit code', async () => {
    const started = performance.now();
    const res = await openExec({
      cmd: ['sh', '-c', 'for i in 1 2 3; do echo "tick $i"; sleep 1; done; echo done >&2; exit 3'],
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    const arrivals: Array<{ line: ExecLine; atMs: number }> = [];
    let buffered = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n')) {
        arrivals.push({
          line: JSON.parse(buffered.slice(0, end)) as ExecLine,
          atMs: performance.now() - started,
        });
        buffered = buffered.slice(end + 1);
      }
    }
    const ticks = arrivals.filter(({ line }) => line.type === 'stdout');
    expect(ticks.map(({ line }) => (line as { data: string }).data)).toEqual([
      'tick 1\n',
      'tick 2\n',
      'tick 3\n',
    ]);
    // Each tick arrived while the command was still running: a second apart, the first well before the end.
    const [first, second, third] = ticks.map(({ atMs }) => atMs);
    console.info(`[exec] ticks at ${ticks.map(({ atMs }) => atMs.toFixed(0)).join(', ')} ms`);
    expect(first).toBeLessThan(1500);
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThan(700);
    expect((third ?? 0) - (second ?? 0)).toBeGreaterThan(700);
    expect(arrivals.at(-2)?.line).toEqual({ type: 'stderr', data: 'done\n' });
    expect(arrivals.at(-1)?.line).toEqual({ type: 'exit', exitCode: 3, timedOut: false });
  });

  it('passes exit codes, stdin-less commands, env, workdir and user through', async () => {
    expect((await execOutput(manager.url, sessionId, ['true'])).exit).toEqual({
      type: 'exit',
      exitCode: 0,
      timedOut: false,
    });
    expect((await execOutput(manager.url, sessionId, ['sh', '-c', 'exit 42'])).exit).toMatchObject({
      exitCode: 42,
    });
    const shaped = await execOutput(
      manager.url,
      sessionId,
      ['sh', '-c', 'echo "$GREETING $(pwd) $(id -u)"'],
      {
        env: { GREETING: 'hi' },
        workdir: '/srv',
        user: '1234',
      },
    );
    expect(shaped.stdout).toBe('hi /srv 1234\n');
    // A binary that is not there: the engine's message on the stream, and 126/127 as the code.
    const missing = await execOutput(manager.url, sessionId, ['/no/such/binary']);
    expect([126, 127]).toContain((missing.exit as { exitCode: number }).exitCode);
    // Output that is not one write: a multi-byte character split across writes arrives whole.
    const split = await execOutput(manager.url, sessionId, [
      'sh',
      '-c',
      "printf '\\342\\202'; sleep 0.2; printf '\\254\\n'",
    ]);
    expect(split.stdout).toBe('€\n');
  });

  it('kills the command, and every process it started, when timeoutMs passes', async () => {
    const started = performance.now();
    const result = await execOutput(
      manager.url,
      sessionId,
      ['sh', '-c', 'sleep 3600 & sleep 3601 & echo started; wait'],
      { timeoutMs: 1000 },
    );
    const tookMs = performance.now() - started;
    console.info(`[exec] timed out after ${tookMs.toFixed(0)} ms`);
    expect(result.stdout).toBe('started\n');
    expect(result.exit).toEqual({ type: 'exit', exitCode: 137, timedOut: true });
    expect(tookMs).toBeLessThan(10_000);
    // Gone, not left as zombies either (the session runs with an init that reaps them).
    const left = await eventually(
      processes,
      (list) => !list.some((line) => /sleep 360[01]/.test(line)),
      5000,
    );
    expect(left.filter((line) => /sleep 360[01]/.test(line))).toEqual([]);
  });

  it('kills the command when its client goes away', async () => {
    const res = await openExec({ cmd: ['sh', '-c', 'echo up; sleep 3602'] });
    // Reading with `once`, not `for await`: leaving that loop would destroy the response before the check.
    const [first] = (await once(res, 'data')) as [Buffer];
    expect(first.toString()).toContain('up');
    // It runs (the listing can see it) until the client goes away.
    expect((await processes()).some((line) => line.includes('sleep 3602'))).toBe(true);
    res.destroy();
    const left = await eventually(
      processes,
      (list) => !list.some((line) => line.includes('sleep 3602')),
      10_000,
    );
    expect(left.filter((line) => line.includes('sleep 3602'))).toEqual([]);
  });

  it('speaks Server-Sent Events to a client that asks for them', async () => {
    const res = await openExec({ cmd: ['sh', '-c', 'echo one; echo two >&2'] }, 'text/event-stream');
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    let text = '';
    for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString('utf8');
    const events = text
      .trim()
      .split('\n\n')
      .map((block) => {
        const [event, data] = block.split('\n');
        return { event: event?.replace('event: ', ''), data: JSON.parse(data?.replace('data: ', '') ?? '') };
      });
    expect(events.map((event) => event.event).sort()).toEqual(['exit', 'stderr', 'stdout']);
    expect(events.find((event) => event.event === 'stdout')?.data).toEqual({ type: 'stdout', data: 'one\n' });
    expect(events.at(-1)?.data).toEqual({ type: 'exit', exitCode: 0, timedOut: false });
  });

  it('answers the contract rows before anything runs', async () => {
    const api = sessionApi(manager.url);
    const missing = await api.post('/api/internal/sessions/nobody-here/exec', { cmd: ['true'] });
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'SESSION_NOT_FOUND' });
    for (const body of [
      {},
      { cmd: [] },
      { cmd: 'ls' },
      { cmd: ['ls'], timeoutMs: 0 },
      { cmd: ['ls'], workdir: 'x' },
    ]) {
      const refused = await api.post(`/api/internal/sessions/${sessionId}/exec`, body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json()).toMatchObject({ code: 'INVALID_SESSION_REQUEST' });
    }
    const stoppedId = cleanup.track(uniqueSessionId('execstop').toLowerCase());
    expect((await api.create({ sessionId: stoppedId, image: FIXTURE_NODE_IMAGE })).status).toBe(201);
    expect((await api.post(`/api/internal/sessions/${stoppedId}/stop?timeoutSeconds=0`)).status).toBe(200);
    const stopped = await api.post(`/api/internal/sessions/${stoppedId}/exec`, { cmd: ['true'] });
    expect(stopped.status).toBe(409);
    expect(stopped.json()).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: `Session ${stoppedId} is not running`,
      code: 'SESSION_NOT_RUNNING',
    });
  });
});
