import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import {
  assertDockerEngine,
  ensureFixtureImages,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createContainerResolver, createDockerClient, type DockerEnv } from '../src/index.js';
import { failure } from './failure.js';
import { createTlsCertificates, type TlsCertificates } from './tls-certs.js';

// dockerd is not reconfigured: forwarders on loopback port 0 pipe each connection to its unix socket, so
// the client really speaks TCP (and TLS with client certificates) to the real engine.
const servers: Server[] = [];
const sockets: Socket[] = [];
/** Connections piped to the engine; for TLS only those whose client certificate the server accepted. */
const forwarded = { tcp: 0, tls: 0 };
/** Why the TLS server dropped a connection: the certificate verification error, else the TLS error code. */
const rejected: string[] = [];
let tmp = '';
let certs: TlsCertificates;
let tcpPort = 0;
let tlsPort = 0;
let container: SessionContainer;
// A failing beforeAll would report the tests as skipped; every test must fail with the reason instead.
let setupFailed: unknown;

/** Pipes a connection to the engine's unix socket; either side failing ends both. */
function forward(client: Socket, kind: keyof typeof forwarded): void {
  forwarded[kind] += 1;
  const engine = connect('/var/run/docker.sock');
  sockets.push(client, engine);
  client.on('error', () => engine.destroy()).pipe(engine);
  engine.on('error', () => client.destroy()).pipe(client);
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

function startTlsForwarder(): Promise<number> {
  // As dockerd --tlsverify: a client certificate is required and must be signed by the CA.
  const options = { ...certs.server, requestCert: true, rejectUnauthorized: true };
  const server = createTlsServer(options, (socket) => forward(socket, 'tls'));
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    rejected.push(String(socket.authorizationError ?? error.code));
  });
  return listen(server);
}

beforeAll(async () => {
  try {
    await assertDockerEngine();
    await ensureFixtureImages();
    tmp = await mkdtemp(join(tmpdir(), 'container-resolver-docker-host-'));
    certs = await createTlsCertificates(tmp);
    tcpPort = await listen(createServer((socket) => forward(socket, 'tcp')));
    tlsPort = await startTlsForwarder();
    container = await startSessionContainer({ image: 'busybox' });
  } catch (error) {
    setupFailed = error;
  }
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  if (tmp) await rm(tmp, { recursive: true, force: true });
  await removeCreatedContainers();
});

// Configured only through env objects, as a user would: process.env is shared with tests running in parallel.
const tlsEnv = (certPath: string): DockerEnv => ({
  DOCKER_HOST: `tcp://127.0.0.1:${tlsPort}`,
  DOCKER_TLS_VERIFY: '1',
  DOCKER_CERT_PATH: certPath,
});
const resolveWith = (env: DockerEnv) =>
  createContainerResolver({ docker: createDockerClient(env) }).resolve(container.sessionId);

/** The reason of the contract's CONTAINER_LOOKUP_FAILED rejection, after its message prefix. */
async function lookupFailure(env: DockerEnv): Promise<string> {
  const { code, message, status } = await failure(resolveWith(env));
  const prefix = `Failed to validate container for session ${container.sessionId}: `;
  expect({ code, status, prefix: message.slice(0, prefix.length) }).toEqual({
    code: 'CONTAINER_LOOKUP_FAILED',
    status: 500,
    prefix,
  });
  return message.slice(prefix.length);
}

// Node's TLS server sends no alert when it drops a connection (it checks the client certificate once the
// handshake is done and destroys the socket), so the client only sees the connection end: a hang-up, or
// a reset if its request was still unread. The server's own reason shows why it dropped it.
const DROPPED = /^(socket hang up|read ECONNRESET)$/;

describe('createDockerClient with a tcp:// DOCKER_HOST against the real engine', () => {
  beforeEach(() => {
    if (setupFailed !== undefined) throw setupFailed;
  });

  it('plain tcp:// resolves to the same IP as the unix socket', async () => {
    const viaSocket = await resolveWith({});
    expect(viaSocket).toMatchObject({ ip: container.ip, containerId: container.id });
    const before = forwarded.tcp;
    expect(await resolveWith({ DOCKER_HOST: `tcp://127.0.0.1:${tcpPort}` })).toEqual(viaSocket);
    // The answer came through the forwarder, not from a fallback to the default socket.
    expect(forwarded.tcp).toBeGreaterThan(before);
  });

  it('DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH resolve over TLS with a client certificate', async () => {
    const before = forwarded.tls;
    expect(await resolveWith(tlsEnv(certs.goodCertPath))).toEqual(await resolveWith({}));
    expect(forwarded.tls).toBeGreaterThan(before);
  });

  it('a client certificate signed by another CA is rejected', async () => {
    const [before, seen] = [forwarded.tls, rejected.length];
    expect(await lookupFailure(tlsEnv(certs.badCertPath))).toMatch(DROPPED);
    await vi.waitFor(() => expect(rejected.slice(seen)).toEqual(['UNABLE_TO_VERIFY_LEAF_SIGNATURE']));
    expect(forwarded.tls).toBe(before);
  });

  it('without DOCKER_TLS_VERIFY, plain HTTP to the TLS port fails', async () => {
    const seen = rejected.length;
    const env = { DOCKER_HOST: `tcp://127.0.0.1:${tlsPort}`, DOCKER_CERT_PATH: certs.goodCertPath };
    expect(await lookupFailure(env)).toMatch(DROPPED);
    // OpenSSL saw an HTTP request where it expected a ClientHello.
    await vi.waitFor(() => expect(rejected.slice(seen)).toEqual(['ERR_SSL_HTTP_REQUEST']));
  });
});
