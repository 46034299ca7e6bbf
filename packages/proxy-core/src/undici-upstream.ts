import type { Dispatcher } from 'undici';
import type { UpstreamDispatcher, UpstreamHandler } from './upstream-client.js';
import { UPSTREAM_BUSY_CODE } from './upstream-errors.js';

/**
 * A dispatcher that is still loading (undici is imported on first need): requests wait for it, then go
 * on as usual; a failed load fails each of them, as an unreachable container would. Once loaded it costs
 * one check per request.
 */
export function deferredUpstream(loading: Promise<UpstreamDispatcher>): UpstreamDispatcher {
  let loaded: UpstreamDispatcher | undefined;
  const settled = loading.then(
    (dispatcher) => {
      loaded = dispatcher;
      return dispatcher;
    },
    (error: unknown) => {
      throw error instanceof Error ? error : new Error(String(error));
    },
  );
  // Nobody may be waiting yet; a failure is reported to each request that asks.
  settled.catch(() => {});
  return {
    dispatch(request, handler) {
      if (loaded !== undefined) return loaded.dispatch(request, handler);
      settled.then(
        (dispatcher) => dispatcher.dispatch(request, handler),
        (error: Error) => handler.onError(error),
      );
      return true;
    },
  };
}

/**
 * An undici dispatcher in the shape `forwardHttp` takes (undici's handler interface is the same).
 * undici queues a request that finds every connection of its pool busy without a deadline of its own (its
 * headers timeout starts once the request is written): with `queueTimeoutMs`, a request not on a
 * connection by then fails with code `PREVIEW_UPSTREAM_BUSY` (503), and is dropped when one comes free.
 */
export function undiciUpstream(dispatcher: Dispatcher, queueTimeoutMs = 0): UpstreamDispatcher {
  const waiting = queueTimeoutMs > 0 ? new QueueDeadlines(queueTimeoutMs) : undefined;
  return {
    dispatch: (request, handler) =>
      dispatcher.dispatch(
        request as Dispatcher.DispatchOptions,
        (waiting === undefined ? handler : waiting.track(handler)) as unknown as Dispatcher.DispatchHandler,
      ),
  };
}

// Requests not yet on a connection, in dispatch order, checked by one timer.
class QueueDeadlines {
  private readonly pending = new Set<QueuedHandler>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {}

  track(handler: UpstreamHandler): QueuedHandler {
    const queued = new QueuedHandler(handler, this);
    this.pending.add(queued);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), Math.max(10, Math.min(500, this.timeoutMs / 4)));
      this.timer.unref();
    }
    return queued;
  }

  done(queued: QueuedHandler): void {
    this.pending.delete(queued);
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const queued of this.pending) {
      // Insertion order is dispatch order: the first one still in time ends the sweep.
      if (now - queued.since < this.timeoutMs) break;
      queued.giveUp(this.timeoutMs);
    }
  }
}

class QueuedHandler implements UpstreamHandler {
  readonly since = performance.now();
  private gaveUp = false;

  constructor(
    private readonly inner: UpstreamHandler,
    private readonly deadlines: QueueDeadlines,
  ) {}

  giveUp(timeoutMs: number): void {
    this.deadlines.done(this);
    this.gaveUp = true;
    this.inner.onError(
      Object.assign(new Error(`no connection to the container came free within ${timeoutMs} ms`), {
        code: UPSTREAM_BUSY_CODE,
      }),
    );
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.gaveUp) {
      abort(new Error('the request gave up waiting for a connection'));
      return;
    }
    this.deadlines.done(this);
    this.inner.onConnect(abort);
  }

  onHeaders(
    statusCode: number,
    rawHeaders: ReadonlyArray<Buffer | string>,
    resume: () => void,
    statusText: string,
  ): boolean {
    return this.gaveUp ? false : this.inner.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.gaveUp ? false : this.inner.onData(chunk);
  }

  onComplete(trailers: unknown): void {
    if (!this.gaveUp) this.inner.onComplete(trailers);
  }

  onError(error: Error): void {
    this.deadlines.done(this);
    if (!this.gaveUp) this.inner.onError(error);
  }
}
