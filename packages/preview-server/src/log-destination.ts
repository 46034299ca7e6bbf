import { writeSync } from 'node:fs';

/** Options of {@link createLineDestination}. */
export interface LineDestinationOptions {
  /** The file descriptor lines go to. Default: 1 (stdout). */
  fd?: number;
  /** The longest a line waits before it is written, in milliseconds. Default 10; 0: at the end of its turn. */
  maxDelayMs?: number;
  /** Bytes gathered before a write, at most (a longer line goes on its own). Default 64 KiB. */
  bufferBytes?: number;
  /** Called once when the descriptor fails for good (EPIPE, EBADF...); later lines are dropped. */
  onError?: (error: NodeJS.ErrnoException) => void;
}

/** A pino destination: lines in, whole lines out to a file descriptor. */
export interface LineDestination {
  write(chunk: string): boolean;
  /** Writes what is pending now, then calls `callback` (pino's `logger.flush(cb)` calls this). */
  flush(callback?: (error?: Error) => void): void;
  flushSync(): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
// What POSIX guarantees a pipe writes without interleaving (Linux: 4096).
const PIPE_BUF = 4096;
const NEWLINE = 0x0a;

// Every destination's pending lines are written when the process exits; one listener for all of them.
const open = new Set<() => void>();
process.once('exit', () => {
  for (const flushSync of open) flushSync();
});

/**
 * Where the apps' log lines go: each line is copied into a buffer as it comes, and the buffer is written
 * with one synchronous `write(2)` on this thread when it is full or its oldest line is `maxDelayMs` old.
 *
 * Why not pino's default asynchronous destination: it hands each turn's lines to libuv's thread pool
 * (`fs.write`); the hand-over both ways (a worker woken, then the loop woken with the result) and the
 * string it keeps appending to cost about 14 µs of CPU per request with one access line each. Why not a
 * write at the end of every turn: under load a turn serves a few requests, and the system call per turn
 * still cost about 2.6 µs per request (profiled, tiny responses at 32 connections).
 *
 * A full pipe (a log reader behind) makes the write wait, as Node's own stdout does on Linux: lines are
 * not dropped and memory does not grow. Pending lines are written when the process exits, also through
 * `process.exit()`; only a kill without a chance to run (SIGKILL) loses the last `maxDelayMs`.
 */
export function createLineDestination(options: LineDestinationOptions = {}): LineDestination {
  const { fd = 1, maxDelayMs = 10, bufferBytes = 64 * 1024, onError } = options;
  const buffer = Buffer.allocUnsafe(bufferBytes);
  let used = 0;
  let timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  let failed = false;

  // Writes bytes[from, to) however many calls it takes.
  const writeSpan = (bytes: Buffer, from: number, to: number) => {
    let at = from;
    while (at < to && !failed) {
      try {
        at += writeSync(fd, bytes, at, to - at);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // A non-blocking descriptor (Node makes a pipe one once anything uses process.stdout) that is full:
        // wait for the reader, a millisecond at a time, as a blocking write would.
        if (code === 'EAGAIN') {
          Atomics.wait(sleeper, 0, 0, 1);
          continue;
        }
        failed = true;
        open.delete(flushSync);
        onError?.(error as NodeJS.ErrnoException);
      }
    }
  };

  // In pieces of whole lines of at most PIPE_BUF bytes: a pipe takes such a write in one piece, so the lines
  // of processes sharing it (edge-proxy's workers share its stdout) never interleave mid-line.
  const writeAll = (bytes: Buffer, length: number) => {
    let at = 0;
    while (at < length && !failed) {
      let end = length;
      if (end - at > PIPE_BUF) {
        const lastNewline = bytes.lastIndexOf(NEWLINE, at + PIPE_BUF - 1);
        if (lastNewline >= at) end = lastNewline + 1;
        else {
          // One line longer than PIPE_BUF: it goes whole, it cannot go atomically anyway.
          const next = bytes.indexOf(NEWLINE, at + PIPE_BUF);
          end = next === -1 || next >= length ? length : next + 1;
        }
      }
      writeSpan(bytes, at, end);
      at = end;
    }
  };

  function flushSync() {
    if (timer !== undefined) {
      if (maxDelayMs === 0) clearImmediate(timer as NodeJS.Immediate);
      else clearTimeout(timer as NodeJS.Timeout);
      timer = undefined;
    }
    if (used === 0) return;
    const length = used;
    used = 0;
    writeAll(buffer, length);
  }

  const onTimer = () => {
    timer = undefined;
    flushSync();
  };

  open.add(flushSync);

  return {
    write(chunk) {
      if (failed) return true;
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      const most = chunk.length * 3;
      if (used + most > bufferBytes) {
        flushSync();
        if (most > bufferBytes) {
          const bytes = Buffer.from(chunk, 'utf8');
          writeAll(bytes, bytes.length);
          return true;
        }
      }
      used += buffer.write(chunk, used, 'utf8');
      if (timer === undefined) {
        timer = maxDelayMs === 0 ? setImmediate(onTimer) : setTimeout(onTimer, maxDelayMs);
        // A pending line does not keep the process alive: the exit listener writes it.
        timer.unref();
      }
      return true;
    },
    flush(callback) {
      flushSync();
      callback?.();
    },
    flushSync,
  };
}
