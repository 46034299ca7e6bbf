import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { previewErrors } from '@sandbox/error-contract';

// What keeps slow clients from holding a container's connections: a request body that does not arrive, or
// a response the client does not read, holds an upstream connection (and a place of its session) for as
// long as it lasts. Each direction gets a budget of time, in the manner of Apache's mod_reqtimeout: it
// starts at the timeout, is spent only while the proxy waits on the client, and each `minRateBps` bytes
// the client moves earn one second back (never more than the timeout ahead). A client that stalls is cut
// after the timeout; one that trickles below the rate, a little later; one that keeps the rate, never.
// Time during which the proxy itself is not reading (the container does not take the upload) or not
// writing (the container sends nothing) is not the client's and is not spent. On top of that, a session's
// stalled transfers may hold only a share of its places: beyond it the longest stalled are cut first, so
// that new requests of the same session always find room.

/** Limits on clients that send or read slowly; each 0 turns its rule off. */
export interface ClientTransferLimits {
  /** Budget of a request body, in ms (see above); past it, the 408 or a cut connection. */
  bodyTimeoutMs: number;
  /** Budget of a response the client reads, in ms; past it, the client's connection is cut. */
  sendTimeoutMs: number;
  /** Bytes per second that earn one second of budget back; 0: any progress restores the whole budget. */
  minRateBps: number;
  /** Most transfers of one session stalled on their client for over a second; 0: no share. */
  maxStalledPerSession: number;
}

// How long a transfer must wait on its client before it counts as stalled for the session's share.
const STALL_GRACE_MS = 1000;
// Budgets are spent in steps of this: a cut comes at most this late.
const TICK_MS = 250;

/** The watch over one proxied request's two transfers. */
export class ClientTransfer {
  /** The body being forwarded, while it is; destroyed with the 408 when the client is too slow. */
  body: Readable | null = null;
  private bodyBudgetMs = 0;
  /** When the client last sent body bytes, or the proxy last resumed reading (0: not uploading). */
  private bodyProgressAt = 0;
  private bodySpentAt = 0;
  private sendBudgetMs: number;
  /** When the response began to wait on the client's socket to drain (0: it is not waiting). */
  private sendStalledAt = 0;
  private sendSpentAt = 0;
  /** Bytes waiting in the response's buffers when it began to wait: what a drain moved. */
  private sendPending = 0;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly sessionId: string | undefined,
    private readonly guard: ClientTransferGuard,
  ) {
    this.sendBudgetMs = guard.limits.sendTimeoutMs;
  }

  /** Watches the request body on its way to the container. */
  watchBody(body: Readable): void {
    if (this.guard.limits.bodyTimeoutMs === 0) return;
    this.body = body;
    const now = performance.now();
    this.bodyBudgetMs = this.guard.limits.bodyTimeoutMs;
    this.bodyProgressAt = now;
    this.bodySpentAt = now;
  }

  /** Body bytes arrived from the client. */
  bodyBytes(count: number): void {
    if (this.body === null) return;
    this.bodyProgressAt = performance.now();
    this.bodyBudgetMs = this.guard.earn(this.bodyBudgetMs, count, this.guard.limits.bodyTimeoutMs);
  }

  /** The whole body arrived (or failed): nothing more to wait for from the client in this direction. */
  bodyDone(): void {
    this.body = null;
    this.bodyProgressAt = 0;
  }

  /** A write to the client did not fit its socket: the response now waits on the client. */
  sendStalled(): void {
    if (this.guard.limits.sendTimeoutMs === 0 || this.sendStalledAt !== 0) return;
    const now = performance.now();
    this.sendStalledAt = now;
    this.sendSpentAt = now;
    this.sendPending = this.res.writableLength;
  }

  /** The client's socket drained what was waiting. */
  sendDrained(): void {
    if (this.sendStalledAt === 0) return;
    this.spendSend(performance.now());
    this.sendBudgetMs = this.guard.earn(this.sendBudgetMs, this.sendPending, this.guard.limits.sendTimeoutMs);
    this.sendStalledAt = 0;
  }

  /** Since when this transfer waits on its client (0: it does not). */
  stalledSince(now: number): number {
    if (this.sendStalledAt !== 0) return this.sendStalledAt;
    if (this.body !== null && !this.req.isPaused() && now - this.bodyProgressAt >= STALL_GRACE_MS)
      return this.bodyProgressAt;
    return 0;
  }

  /** Spends the budgets for the time since the last tick; true when one ran out (and the client was cut). */
  tick(now: number): boolean {
    if (this.body !== null) {
      // Paused by the proxy: the container is not taking the upload, which is not the client's doing.
      if (this.req.isPaused()) this.bodyProgressAt = now;
      else this.bodyBudgetMs -= now - this.bodySpentAt;
      this.bodySpentAt = now;
      if (this.bodyBudgetMs <= 0) {
        this.cut();
        return true;
      }
    }
    if (this.sendStalledAt !== 0) {
      this.spendSend(now);
      if (this.sendBudgetMs <= 0) {
        this.cut();
        return true;
      }
    }
    return false;
  }

  private spendSend(now: number): void {
    this.sendBudgetMs -= now - this.sendSpentAt;
    this.sendSpentAt = now;
  }

  /**
   * Ends the request for its client's slowness: an upload still arriving fails with the 408 (answered, and
   * the connection closed, when nothing of the response went out yet); otherwise the connection is cut.
   */
  cut(): void {
    const { body } = this;
    const sendStalled = this.sendStalledAt !== 0;
    this.bodyDone();
    this.sendStalledAt = 0;
    if (body !== null && !body.destroyed && !this.res.headersSent) {
      body.destroy(previewErrors.requestTimeout());
      return;
    }
    // A client that does not read has the rest of the response queued in the kernel behind its closed
    // window: a FIN would wait behind it, and the kernel would keep the orphaned socket and its buffers
    // (about a MiB each under slowhttptest) until the client left. A reset drops them at once, as nginx's
    // reset_timedout_connection does.
    const socket = this.res.socket as (Socket & { resetAndDestroy?: () => void }) | null;
    if (sendStalled && typeof socket?.resetAndDestroy === 'function') socket.resetAndDestroy();
    this.res.destroy();
  }
}

/** One sweep over every watched transfer of a proxy: one timer, whatever the number of requests. */
export class ClientTransferGuard {
  private readonly transfers = new Set<ClientTransfer>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly limits: ClientTransferLimits) {}

  /** Whether any rule is on (else no request is watched at all). */
  get active(): boolean {
    const { bodyTimeoutMs, sendTimeoutMs } = this.limits;
    return bodyTimeoutMs > 0 || sendTimeoutMs > 0;
  }

  /** Starts watching a request until {@link release}. */
  watch(req: IncomingMessage, res: ServerResponse, sessionId: string | undefined): ClientTransfer {
    const transfer = new ClientTransfer(req, res, sessionId, this);
    this.transfers.add(transfer);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), TICK_MS);
      this.timer.unref();
    }
    return transfer;
  }

  /** Stops watching a request (its response closed). */
  release(transfer: ClientTransfer): void {
    this.transfers.delete(transfer);
    if (this.transfers.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** A budget after `bytes` moved: one second per `minRateBps` bytes, never more than `capMs`. */
  earn(budgetMs: number, bytes: number, capMs: number): number {
    const { minRateBps } = this.limits;
    if (minRateBps === 0) return capMs;
    return Math.min(capMs, budgetMs + (bytes * 1000) / minRateBps);
  }

  private sweep(): void {
    const now = performance.now();
    const { maxStalledPerSession } = this.limits;
    let stalled: Map<string, ClientTransfer[]> | undefined;
    for (const transfer of this.transfers) {
      if (transfer.tick(now) || maxStalledPerSession === 0 || transfer.sessionId === undefined) continue;
      const since = transfer.stalledSince(now);
      if (since === 0 || now - since < STALL_GRACE_MS) continue;
      stalled ??= new Map();
      const list = stalled.get(transfer.sessionId);
      if (list === undefined) stalled.set(transfer.sessionId, [transfer]);
      else list.push(transfer);
    }
    if (stalled === undefined) return;
    for (const list of stalled.values()) {
      if (list.length <= maxStalledPerSession) continue;
      // The longest stalled go first: they are the least likely to be a client that is merely busy.
      list.sort((a, b) => a.stalledSince(now) - b.stalledSince(now));
      for (const transfer of list.slice(0, list.length - maxStalledPerSession)) transfer.cut();
    }
  }
}
