import { Agent, type AgentOptions } from 'node:http';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Options of {@link createUpstreamAgent}. */
export interface UpstreamAgentOptions {
  /** Give up on a TCP connect after this many ms (ETIMEDOUT, answered 502). Default 5000. */
  connectTimeoutMs?: number;
  /** Most concurrent sockets per container ip:port. Default 1024. */
  maxSockets?: number;
  /** Most idle keep-alive sockets kept per container ip:port. Default 64. */
  maxFreeSockets?: number;
  /**
   * Idle keep-alive sockets are closed after this many ms. Default 4000: below Node's 5 s server
   * keep-alive, so we close an idle socket before the container does and never send on a dying one.
   */
  idleTimeoutMs?: number;
}

function connectWithTimeout(options: NetConnectOpts, timeoutMs: number): Socket {
  const socket = connect(options);
  // net has no connect timeout of its own, and the kernel's is minutes: fail fast instead.
  const timer = setTimeout(() => {
    const error = Object.assign(new Error(`connect ETIMEDOUT after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
    socket.destroy(error);
  }, timeoutMs);
  timer.unref();
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
  return socket;
}

/** A pooled keep-alive agent for upstream connections, with a bounded connect time. */
export function createUpstreamAgent({
  connectTimeoutMs = 5000,
  maxSockets = 1024,
  maxFreeSockets = 64,
  idleTimeoutMs = 4000,
}: UpstreamAgentOptions = {}): Agent {
  const agentOptions: AgentOptions = {
    keepAlive: true,
    maxSockets,
    maxFreeSockets,
    timeout: idleTimeoutMs,
    scheduling: 'lifo',
  };
  const agent = new Agent(agentOptions);
  agent.createConnection = (options: NetConnectOpts): Duplex => connectWithTimeout(options, connectTimeoutMs);
  return agent;
}
