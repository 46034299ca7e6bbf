// The peers the benchmark measures ours against, besides nginx: HAProxy and Caddy (Debian packages), each a
// reverse proxy on /previews/<id>/ with the prefix stripped, upstream keep-alive on, no access log. On as
// many cores as ours (one) unless told: HAProxy `nbthread 1`, Caddy GOMAXPROCS=1; http.ts's every-core
// section gives both the machine's core count. In the foreground, as children, with everything under a
// temporary folder.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capture, freePort, sleep, track } from './support.js';

/** A peer proxy, started and serving the session's container through the prefix. */
export interface Peer {
  name: string;
  child: ChildProcess;
  pid: number;
  url: string;
  /** Its configuration file, as written (for the results). */
  config: string;
  output(): string;
}

function haproxyConfig(
  port: number,
  upstream: string,
  sessionId: string,
  dir: string,
  threads: number,
): string {
  return `# written by bench/peers.ts
global
  nbthread ${threads}
  # Two descriptors per connection must fit the open-files limit (20,000 here).
  maxconn 8000
  pidfile ${dir}/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  # Idle upstream connections are shared between clients, as nginx's keepalive and our pool do.
  http-reuse always
frontend front
  bind 127.0.0.1:${port}
  default_backend app
backend app
  # /previews/<id>/rest -> /rest, as our proxy strips the prefix.
  http-request replace-path ^/previews/${sessionId}(/.*)$ \\1
  server container ${upstream} maxconn 1024
`;
}

function caddyConfig(port: number, upstream: string, sessionId: string): string {
  return `# written by bench/peers.ts
{
  admin off
  auto_https off
}
http://127.0.0.1:${port} {
  # /previews/<id>/rest -> /rest, as our proxy strips the prefix.
  handle_path /previews/${sessionId}/* {
    reverse_proxy ${upstream}
  }
}
`;
}

async function waitServing(peer: Peer, sessionId: string): Promise<Peer> {
  const deadline = Date.now() + 15_000;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(`${peer.url}/previews/${sessionId}/__fixture/ready`, {
        signal: AbortSignal.timeout(1000),
      });
      const text = await res.text();
      if (res.ok && text.trim() === 'ok') return peer;
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (error) {
      last = String((error as { cause?: unknown }).cause ?? error);
    }
    if (peer.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${peer.name} did not start (last try: ${last}):\n${peer.config}\n${peer.output()}`);
    await sleep(100);
  }
}

function spawnPeer(
  name: string,
  binary: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
  config: string,
) {
  const child = track(spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const output = capture(child);
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return { name, child, pid: child.pid, url: `http://127.0.0.1:${port}`, config, output };
}

/**
 * HAProxy with `threads` threads (nbthread; one unless told), in the foreground (-db), serving the session's
 * container `upstream` (ip:port). Its files go to <dir>/haproxy: a second one needs another `dir`.
 */
export async function startHaproxy(
  binary: string,
  dir: string,
  upstream: string,
  sessionId: string,
  threads = 1,
): Promise<Peer> {
  const folder = join(dir, 'haproxy');
  mkdirSync(folder, { recursive: true });
  const port = await freePort();
  const config = haproxyConfig(port, upstream, sessionId, folder, threads);
  const file = join(folder, 'haproxy.cfg');
  writeFileSync(file, config);
  const peer = spawnPeer(
    'haproxy',
    binary,
    ['-db', '-f', file],
    { PATH: process.env.PATH ?? '' },
    port,
    config,
  );
  return waitServing(peer, sessionId);
}

/**
 * Caddy with GOMAXPROCS=`cores` (one unless told: one core, as ours), its state under <dir>/caddy: a second
 * one needs another `dir`.
 */
export async function startCaddy(
  binary: string,
  dir: string,
  upstream: string,
  sessionId: string,
  cores = 1,
): Promise<Peer> {
  const folder = join(dir, 'caddy');
  mkdirSync(folder, { recursive: true });
  const port = await freePort();
  const config = caddyConfig(port, upstream, sessionId);
  const file = join(folder, 'Caddyfile');
  writeFileSync(file, config);
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: folder,
    XDG_DATA_HOME: join(folder, 'data'),
    XDG_CONFIG_HOME: join(folder, 'config'),
    GOMAXPROCS: String(cores),
  };
  const peer = spawnPeer(
    'caddy',
    binary,
    ['run', '--config', file, '--adapter', 'caddyfile'],
    env,
    port,
    config,
  );
  return waitServing(peer, sessionId);
}
