import type { Duplex } from 'node:stream';

/** How long a tunnelled WebSocket may linger; each 0 turns its rule off. */
export interface TunnelLimits {
  /**
   * Once one side ended its half (a TCP FIN, with or without a close frame before it), the other side has
   * this many ms to end its own; then both sockets are destroyed. 0: a half-closed tunnel stays open.
   */
  halfCloseTimeoutMs: number;
  /** A tunnel with no bytes either way for this many ms is closed. */
  idleTimeoutMs: number;
}

/**
 * Ends a tunnel's two sockets together. The pipes between them pass a FIN on, and nothing more: a client
 * that leaves with a bare FIN while the container keeps its half open (or the reverse) would otherwise leave
 * one socket in CLOSE-WAIT and the other in FIN-WAIT-2 for ever, each holding a descriptor and the tunnel
 * its session's place. A socket that closes outright takes the other with it.
 */
export function bindTunnel(client: Duplex, upstream: Duplex, limits: TunnelLimits): void {
  let timer: NodeJS.Timeout | undefined;
  const destroyBoth = () => {
    clearTimeout(timer);
    client.destroy();
    upstream.destroy();
  };
  const halfClosed = () => {
    if (timer !== undefined || limits.halfCloseTimeoutMs === 0) return;
    timer = setTimeout(destroyBoth, limits.halfCloseTimeoutMs);
    timer.unref();
  };
  client.once('end', halfClosed);
  upstream.once('end', halfClosed);
  // The client is gone: nothing the container sends can reach it.
  client.once('close', destroyBoth);
  // The container is gone: what it sent last may still be on its way to the client, which gets the end
  // of the stream and its half-close time to read it.
  upstream.once('close', () => {
    if (client.destroyed) return;
    if (client.writable) client.end();
    halfClosed();
  });
  // Every byte of the tunnel passes through the client's socket, one way or the other: its idleness is
  // the tunnel's.
  if (limits.idleTimeoutMs > 0) {
    const socket = client as Duplex & { setTimeout?: (ms: number, callback?: () => void) => unknown };
    socket.setTimeout?.(limits.idleTimeoutMs, destroyBoth);
  }
}
