import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLineDestination } from '../src/log-destination.js';

const PACKAGE_DIR = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'log-destination-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Written {
  stdout: string;
  stderr: string;
  code: number | null;
}

/**
 * Runs test/fixtures/line-writer.ts with its stdout to us; nothing is read from it until `readAfterMs` after
 * the child said it is about to write (its stderr's `ready`), so that the writer meets a full pipe.
 */
async function runWriter(env: Record<string, string>, readAfterMs = 0): Promise<Written> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/line-writer.ts'], {
    cwd: PACKAGE_DIR,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  let stderr = '';
  let reading = false;
  const startReading = () => {
    if (reading) return;
    reading = true;
    setTimeout(() => {
      child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      child.stdout.resume();
    }, readAfterMs);
  };
  child.stdout.pause();
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.startsWith('ready\n')) startReading();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  // A child that died before its ready line still has its output read (and the test sees why).
  if (!reading) {
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdout.resume();
  }
  return { stdout: Buffer.concat(chunks).toString('utf8'), stderr: stderr.replace(/^ready\n/, ''), code };
}

function expectNumberedLines(stdout: string, count: number, padBytes: number): void {
  const lines = stdout.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines).toHaveLength(count);
  lines.forEach((line, i) => {
    expect(JSON.parse(line)).toEqual({ n: i, pad: 'x'.repeat(padBytes), é: 'ü' });
  });
}

describe('createLineDestination, on a real pipe', () => {
  // 20,000 lines of about 230 bytes: 4.6 MB, seventy times what a pipe holds, so the writer meets a full
  // pipe (a blocked write, or EAGAIN once Node made the pipe non-blocking) over and over.
  // Each way of ending, on a blocking descriptor (the write waits) and on one Node made non-blocking (the
  // lines wait in the backlog, which the exit or the flush must write out).
  for (const end of ['return', 'exit', 'flush'] as const)
    for (const touch of ['0', '1'] as const)
      it(`delivers every line, whole and in order, to a reader that is behind (ending by ${end}${touch === '1' ? ', non-blocking' : ''})`, async () => {
        const written = await runWriter(
          { LINES: '20000', LINE_BYTES: '200', LINE_WRITER_END: end, TOUCH_STDOUT: touch },
          300,
        );
        expect(written.code).toBe(0);
        expect(written.stderr).toBe('');
        expectNumberedLines(written.stdout, 20_000, 200);
      });

  it('waits out EAGAIN on a pipe Node made non-blocking, losing nothing', async () => {
    const written = await runWriter({ LINES: '20000', LINE_BYTES: '200', TOUCH_STDOUT: '1' }, 300);
    expect(written.code).toBe(0);
    expect(written.stderr).toBe('');
    expectNumberedLines(written.stdout, 20_000, 200);
  });

  it('keeps lines in memory while the reader is behind, without holding up the event loop', async () => {
    // 8,000 lines of about 230 bytes (1.8 MB, under the 8 MiB backlog) while the reader waits 500 ms.
    const written = await runWriter(
      { LINES: '8000', LINE_BYTES: '200', TOUCH_STDOUT: '1', REPORT_BLOCKED: '1' },
      500,
    );
    expect(written.code).toBe(0);
    const blockedMs = Number(/blockedMs=(\d+)/.exec(written.stderr)?.[1]);
    expect(blockedMs).toBeLessThan(250);
    expectNumberedLines(written.stdout, 8000, 200);
  });

  it('waits for the reader once the backlog is full, losing nothing', async () => {
    const written = await runWriter(
      { LINES: '8000', LINE_BYTES: '200', TOUCH_STDOUT: '1', REPORT_BLOCKED: '1', MAX_BACKLOG: '65536' },
      500,
    );
    expect(written.code).toBe(0);
    const blockedMs = Number(/blockedMs=(\d+)/.exec(written.stderr)?.[1]);
    expect(blockedMs).toBeGreaterThanOrEqual(300);
    expectNumberedLines(written.stdout, 8000, 200);
  });

  it('never interleaves the lines of two processes sharing the pipe', async () => {
    // Both writers on one real pipe (`|`), as edge-proxy's workers share its stdout, one of them
    // non-blocking. The reader starts late and reads 1,000 bytes at a time, so the writers meet a pipe
    // with little room over and over: a write larger than PIPE_BUF would go in pieces, between the other's
    // (this fails 4 times out of 4 with the split into PIPE_BUF pieces taken out).
    const writer = `"${process.execPath}" --import tsx test/fixtures/line-writer.ts`;
    const child = spawn(
      'bash',
      [
        '-c',
        `{ WRITER=a ${writer} & WRITER=b TOUCH_STDOUT=1 ${writer} & wait; } 2>/dev/null | { sleep 0.5; dd bs=1000 status=none; }`,
      ],
      {
        cwd: PACKAGE_DIR,
        env: { ...process.env, NODE_OPTIONS: '', LINES: '20000', LINE_BYTES: '300' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code).toBe(0);
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    const next = { a: 0, b: 0 };
    for (const line of lines) {
      const { writer, n } = JSON.parse(line) as { writer: 'a' | 'b'; n: number };
      expect(n).toBe(next[writer]);
      next[writer] += 1;
    }
    expect(next).toEqual({ a: 20_000, b: 20_000 });
  });

  it('keeps the process alive and serving when the reader is gone, and reports it once', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/line-writer.ts'], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, NODE_OPTIONS: '', LINES: '10', STAY_MS: '500' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.destroy();
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code).toBe(0);
    expect(stderr.replace(/^ready\n/, '').trim()).toBe('errors=EPIPE');
  });
});

describe('createLineDestination, on a file', () => {
  const file = (name: string) => join(dir, name);

  it('writes a line within maxDelayMs without a flush, not one system call per line', async () => {
    const path = file('delay.log');
    const fd = openSync(path, 'w');
    try {
      const destination = createLineDestination({ fd, maxDelayMs: 50 });
      destination.write('{"a":1}\n');
      destination.write('{"a":2}\n');
      expect(readFileSync(path, 'utf8')).toBe('');
      const deadline = Date.now() + 2000;
      while (readFileSync(path, 'utf8') === '' && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 5));
      expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n{"a":2}\n');
    } finally {
      closeSync(fd);
    }
  });

  it('with maxDelayMs 0 writes at the end of the turn', async () => {
    const path = file('turn.log');
    const fd = openSync(path, 'w');
    try {
      const destination = createLineDestination({ fd, maxDelayMs: 0 });
      destination.write('x\n');
      expect(readFileSync(path, 'utf8')).toBe('');
      await new Promise((resolve) => setImmediate(resolve));
      expect(readFileSync(path, 'utf8')).toBe('x\n');
    } finally {
      closeSync(fd);
    }
  });

  it('writes when its buffer is full, and a line longer than the buffer whole, in order', () => {
    const path = file('full.log');
    const fd = openSync(path, 'w');
    try {
      const destination = createLineDestination({ fd, bufferBytes: 64, maxDelayMs: 60_000 });
      const short = (n: number) => `${String(n).padStart(9, '0')}\n`;
      for (let n = 0; n < 6; n++) destination.write(short(n));
      // A line is taken while 3 bytes per character (UTF-8's worst case) still fit: lines 0-3 (40 bytes)
      // went out when line 4 might not have fitted.
      expect(readFileSync(path, 'utf8')).toBe([0, 1, 2, 3].map(short).join(''));
      const long = `${'ü'.repeat(100)}\n`;
      destination.write(long);
      destination.write(short(6));
      expect(readFileSync(path, 'utf8')).toBe([0, 1, 2, 3, 4, 5].map(short).join('') + long);
      destination.flushSync();
      expect(readFileSync(path, 'utf8')).toBe([0, 1, 2, 3, 4, 5].map(short).join('') + long + short(6));
    } finally {
      closeSync(fd);
    }
  });

  it('flush(callback) writes what is pending, then calls back', async () => {
    const path = file('flush.log');
    const fd = openSync(path, 'w');
    try {
      const destination = createLineDestination({ fd, maxDelayMs: 60_000 });
      destination.write('pending\n');
      await new Promise<void>((resolve) => destination.flush(() => resolve()));
      expect(readFileSync(path, 'utf8')).toBe('pending\n');
    } finally {
      closeSync(fd);
    }
  });
});
