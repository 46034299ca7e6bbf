// A proxy-only consumer of the published packages (preview-routes + preview-registry + error-contract,
// its own resolver), run by check-packages-runtime.sh as installed from the tarballs and as bundled by
// esbuild. Its helpers (an upstream with an echo, a streamed-body hash and a WebSocket echo; the checks of
// one proxied route) also serve check-packages-smoke.cjs. CommonJS with literal require() calls, so that
// esbuild bundles what it loads.
const assert = require('node:assert/strict');
const { createHash, randomBytes } = require('node:crypto');
const http = require('node:http');

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function stop(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
}

const urlOf = (server) => `http://127.0.0.1:${server.address().port}`;

// One unfragmented frame from a client (masked, payload under 64 KiB): enough for an echo.
function readClientFrame(buffer) {
  if (buffer.length < 2) return undefined;
  let length = buffer[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    offset = 4;
  }
  if (buffer.length < offset + 4 + length) return undefined;
  const mask = buffer.subarray(offset, offset + 4);
  const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length));
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
  return { opcode: buffer[0] & 0x0f, payload, size: offset + 4 + length };
}

function serverFrame(opcode, payload) {
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, payload.length]) : Buffer.alloc(4);
  if (payload.length >= 126) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(payload.length, 2);
  }
  return Buffer.concat([head, payload]);
}

/** An app as a container would run it: echoes `METHOD url`, hashes bodies, echoes WebSocket text. */
async function startUpstream() {
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => {
      res.setHeader('x-body', `${bytes} ${hash.digest('hex')}`);
      res.end(`${req.method} ${req.url}`);
    });
  });
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1')
      .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (let frame = readClientFrame(pending); frame; frame = readClientFrame(pending)) {
        pending = pending.subarray(frame.size);
        if (frame.opcode === 0x8) {
          socket.end(serverFrame(0x8, frame.payload));
          return;
        }
        if (frame.opcode === 0x1) socket.write(serverFrame(0x1, frame.payload));
      }
    });
    socket.on('error', () => socket.destroy());
  });
  return listen(server);
}

/** Streams `chunks` of 64 KiB, one per tick, as a chunked POST; resolves to the upstream's x-body. */
function streamedPost(url, chunks) {
  const hash = createHash('sha256');
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode, body: res.headers['x-body'], hash: hash.digest('hex') }),
      );
    });
    req.on('error', reject);
    let sent = 0;
    const next = () => {
      if (sent === chunks) {
        req.end();
        return;
      }
      const chunk = randomBytes(64 * 1024);
      hash.update(chunk);
      sent++;
      req.write(chunk, () => setImmediate(next));
    };
    next();
  });
}

/** A text message through a WebSocket at `url` and back (Node's global WebSocket, a browser's API). */
function webSocketEcho(url, text) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error(`no WebSocket echo from ${url}`)), 5000);
    ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
    ws.onopen = () => ws.send(text);
    ws.onmessage = (event) => {
      clearTimeout(timer);
      ws.close(1000);
      resolve(String(event.data));
    };
  });
}

/** HTTP, a 2 MiB streamed body and a WebSocket through `base + prefix`, which must reach `upstream`. */
async function checkProxiedRoute(base, prefix) {
  assert.equal(await (await fetch(`${base}${prefix}/a%2Fb//c?q=%26`)).text(), 'GET /a%2Fb//c?q=%26');
  const upload = await streamedPost(`${base}${prefix}/upload`, 32);
  assert.equal(upload.status, 200);
  assert.equal(upload.body, `${32 * 64 * 1024} ${upload.hash}`);
  assert.equal(await webSocketEcho(`${base.replace('http', 'ws')}${prefix}/socket`, 'hello'), 'hello');
}

// Literal require() calls, which a bundler follows; check-packages-smoke.cjs passes its own loader.
function requirePackage(name) {
  switch (name) {
    case '@sandbox/error-contract':
      return require('@sandbox/error-contract');
    case '@sandbox/preview-registry':
      return require('@sandbox/preview-registry');
    case '@sandbox/preview-routes':
      return require('@sandbox/preview-routes');
    default:
      throw new Error(`not a package of the proxy-only consumer: ${name}`);
  }
}

async function smoke(label, load = async (name) => requirePackage(name)) {
  const { previewErrors } = await load('@sandbox/error-contract');
  const { createInMemoryRegistry } = await load('@sandbox/preview-registry');
  const { createPreviewRoutes } = await load('@sandbox/preview-routes');
  const upstream = await startUpstream();
  const registry = createInMemoryRegistry();
  await registry.register('demo', upstream.address().port);
  const resolver = {
    async resolve(sessionId) {
      if (sessionId !== 'demo') throw previewErrors.containerLookupFailed(sessionId, new Error('unknown'));
      return { ip: '127.0.0.1', network: 'loopback', containerId: sessionId, labels: {} };
    },
  };
  const routes = createPreviewRoutes({
    registry,
    resolver,
    // The upstream of this check listens on loopback, which the default policy never forwards to.
    isAllowedUpstream: (address) => address === '127.0.0.1',
  });
  const front = http.createServer(routes);
  front.on('upgrade', routes.handleUpgrade);
  await listen(front);
  await checkProxiedRoute(urlOf(front), '/previews/demo');
  const missing = await fetch(`${urlOf(front)}/previews/nobody/`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, 'PREVIEW_NOT_REGISTERED');
  assert.equal((await fetch(`${urlOf(front)}/elsewhere`)).status, 404);
  await stop(front);
  await stop(upstream);
  console.log(`${label}: the proxy-only consumer proxies HTTP, a streamed body and a WebSocket`);
}

module.exports = smoke;
module.exports.startUpstream = startUpstream;
module.exports.checkProxiedRoute = checkProxiedRoute;
module.exports.listen = listen;
module.exports.stop = stop;
module.exports.urlOf = urlOf;
