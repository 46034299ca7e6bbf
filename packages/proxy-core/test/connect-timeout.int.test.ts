import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, exchange, startFrontServer, useEngine } from './helpers.js';

// A listener whose accept queue is full and that never accepts: Linux then drops further SYNs, so a new
// connection hangs in the handshake exactly like one to a host that does not answer. Node always accepts,
// hence a tiny Python listener with a backlog of 0.
const LISTENER = `
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`;

let listener: ChildProcess;
let port: number;
const fillers: Socket[] = [];

beforeAll(async () => {
  listener = spawn('python3', ['-c', LISTENER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(listener.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  port = Number(line.toString().trim());
  // Fill the accept queue; these complete their handshakes and then sit unaccepted.
  for (let i = 0; i < 3; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    fillers.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
});

afterAll(() => {
  for (const socket of fillers) socket.destroy();
  listener?.kill();
});

describe.each(ENGINES)('%s engine', (engine) => {
  beforeAll(() => useEngine(engine));

  it('answers 502 once the connect timeout passes for a container that never completes the handshake', async () => {
    const front = await startFrontServer(() => ({ host: '127.0.0.1', port }), { connectTimeoutMs: 500 });
    try {
      const started = Date.now();
      const res = await exchange(front.url, { path: '/p/s1/' });
      const elapsed = Date.now() - started;
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body.toString())).toEqual({
        status: 502,
        message: 'Failed to connect to preview server',
      });
      expect(elapsed).toBeGreaterThanOrEqual(450);
    } finally {
      await front.close();
    }
  });
});
