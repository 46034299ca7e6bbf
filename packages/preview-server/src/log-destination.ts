import { writeSync } from 'node:fs';

/** Options of {@link createLineDestination}. */
export interface LineDestinationOptions {
  /** The file descriptor lines go to. Default: 1 (stdout). */
  fd?: number;
  /** The longest a line waits before it is written, in milliseconds. Default 10; 0: at the end of its turn. */
  maxDelayMs?: number;
  /** Bytes gathered before a write, at most (a longer line goes on its own). Default 64 KiB. */
  bufferBytes?: number;
  /**
   * Bytes kept in memory while the descriptor takes none (a pipe whose reader is behind), at most; beyond
   * them the writer waits for the reader. Default 8 MiB.
   */
  maxBacklogBytes?: number;
  /** Called once when the descriptor fails for good (EPIPE, EBADF...); later lines are dropped. */
  onError?: (error: NodeJS.ErrnoException) => void;
}

/** A pino destination: lines in, whole lines out to a file descriptor. */
export interface LineDestination {
  write(chunk: string): boolean;
  /** Writes everything pending, waiting for the reader if need be, then calls `callback` (`logger.flush(cb)`). */
  flush(callback?: (error?: Error) => void): void;
  /** Writes everything pending, waiting for the reader if need be. */
  flushSync(): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
// What POSIX guarantees a pipe writes in one piece (Linux: 4096).
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
 * Writes are whole lines of at most PIPE_BUF bytes each: a pipe takes such a write in one piece, so the
 * lines of processes sharing it (edge-proxy's workers share its stdout) never interleave mid-line.
 *
 * When the descriptor takes nothing (a non-blocking pipe whose reader is behind: EAGAIN), the lines wait in
 * memory and are tried again every millisecond, without holding up the event loop, up to
 * `maxBacklogBytes`; beyond that the writer waits for the reader (nothing is dropped, memory stays
 * bounded). A blocking descriptor simply blocks, as Node's own stdout does on Linux. Pending lines are
 * written at exit, `process.exit()` included; a kill the process cannot handle (SIGKILL, or a signal it has
 * no handler for) loses the last `maxDelayMs` (or the backlog).
 */
export function createLineDestination(options: LineDestinationOptions = {}): LineDestination {
  const {
    fd = 1,
    maxDelayMs = 10,
    bufferBytes = 64 * 1024,
    maxBacklogBytes = 8 * 1024 * 1024,
    onError,
  } = options;
  const buffer = Buffer.allocUnsafe(bufferBytes);
  let used = 0;
  // Bytes the descriptor did not take yet, in order, before anything in `buffer`.
  const backlog: Buffer[] = [];
  let backlogBytes = 0;
  let timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  let timerIsImmediate = false;
  let failed = false;

  const fail = (error: NodeJS.ErrnoException) => {
    failed = true;
    open.delete(flushSync);
    backlog.length = 0;
    backlogBytes = 0;
    used = 0;
    onError?.(error);
  };

  // Writes bytes[from, to) as far as the descriptor takes them; returns where it stopped. `wait`: wait out a
  // full descriptor (EAGAIN) instead of stopping there.
  const writeSpan = (bytes: Buffer, from: number, to: number, wait: boolean): number => {
    let at = from;
    while (at < to && !failed) {
      try {
        at += writeSync(fd, bytes, at, to - at);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') fail(error as NodeJS.ErrnoException);
        else if (!wait) return at;
        else Atomics.wait(sleeper, 0, 0, 1);
      }
    }
    return failed ? to : at;
  };

  // Writes bytes[0, length) in whole-line pieces of at most PIPE_BUF; returns how many bytes went.
  const writeLines = (bytes: Buffer, length: number, wait: boolean): number => {
    let at = 0;
    while (at < length) {
      let end = length;
      if (end - at > PIPE_BUF) {
        const lastNewline = bytes.lastIndexOf(NEWLINE, at + PIPE_BUF - 1);
        if (lastNewline >= at) end = lastNewline + 1;
        else {
          // One line longer than PIPE_BUF: it goes whole, it cannot go in one piece anyway.
          const next = bytes.indexOf(NEWLINE, at + PIPE_BUF);
          end = next === -1 || next >= length ? length : next + 1;
        }
      }
      const reached = writeSpan(bytes, at, end, wait);
      if (reached < end) return reached;
      at = end;
    }
    return length;
  };

  // Writes the backlog, oldest first; whether it is all gone.
  const drainBacklog = (wait: boolean): boolean => {
    while (backlog.length > 0) {
      const head = backlog[0] as Buffer;
      const written = writeLines(head, head.length, wait);
      backlogBytes -= written;
      if (written < head.length) {
        backlog[0] = head.subarray(written);
        return false;
      }
      backlog.shift();
    }
    return true;
  };

  const clearTimer = () => {
    if (timer === undefined) return;
    if (timerIsImmediate) clearImmediate(timer as NodeJS.Immediate);
    else clearTimeout(timer as NodeJS.Timeout);
    timer = undefined;
  };

  const onTimer = () => {
    timer = undefined;
    flush(false);
  };

  const schedule = (ms: number) => {
    if (timer !== undefined) return;
    timerIsImmediate = ms === 0;
    timer = ms === 0 ? setImmediate(onTimer) : setTimeout(onTimer, ms);
    // Pending lines do not keep the process alive: the exit listener writes them.
    timer.unref();
  };

  // Writes bytes[0, length) after the backlog, as far as the descriptor takes them now (all of them when
  // `wait`); the rest joins the backlog (copied when `bytes` is the buffer, which is about to be reused).
  const send = (bytes: Buffer, length: number, wait: boolean, copy: boolean) => {
    const written = drainBacklog(wait) ? writeLines(bytes, length, wait) : 0;
    if (written === length || failed) return;
    const rest = bytes.subarray(written, length);
    backlog.push(copy ? Buffer.from(rest) : rest);
    backlogBytes += length - written;
  };

  // Past its cap the backlog is waited out; what remains of it is retried every millisecond.
  const settle = () => {
    if (backlogBytes > maxBacklogBytes) drainBacklog(true);
    if (backlogBytes > 0) schedule(1);
  };

  function flush(wait: boolean) {
    clearTimer();
    if (failed) return;
    const length = used;
    used = 0;
    if (length > 0) send(buffer, length, wait, true);
    else drainBacklog(wait);
    settle();
  }

  function flushSync() {
    flush(true);
  }

  open.add(flushSync);

  return {
    write(chunk) {
      if (failed) return true;
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      const most = chunk.length * 3;
      if (used + most > bufferBytes) {
        flush(false);
        if (most > bufferBytes) {
          const bytes = Buffer.from(chunk, 'utf8');
          send(bytes, bytes.length, false, false);
          settle();
          return true;
        }
      }
      used += buffer.write(chunk, used, 'utf8');
      schedule(maxDelayMs);
      return true;
    },
    flush(callback) {
      flushSync();
      callback?.();
    },
    flushSync,
  };
}
