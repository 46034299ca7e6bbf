// Smoke test of the published builds under plain Node, run by check-packages-runtime.sh in a temp project
// where every packed tarball is installed: once with `load` = require (the .cjs builds) and once with
// `load` = import() (the .mjs builds). `other` loads the opposite format, to check that an error thrown by
// one copy of the error contract is still recognised by the other (the dual-package hazard).
// CommonJS on purpose: both an ESM and a CommonJS entry can load it.
const assert = require('node:assert/strict');
const http = require('node:http');
const routesSmoke = require('./check-routes-smoke.cjs');

const { checkProxiedRoute, startUpstream, stop, urlOf } = routesSmoke;
const listen = (handler) => routesSmoke.listen(http.createServer(handler));

module.exports = async function smoke(format, load, other) {
  const names = [
    'error-contract',
    'preview-registry',
    'preview-state-redis',
    'container-resolver',
    'proxy-core',
    'preview-routes',
    'preview-server',
    'session-manager',
    'preview-core',
    'preview-cli',
  ];
  const pkgs = {};
  for (const name of names) pkgs[name] = await load(`@sandbox/${name}`);
  const otherContract = await other('@sandbox/error-contract');

  // preview-cli: the command line runs in-process and answers its help.
  let help = '';
  const code = await pkgs['preview-cli'].runCli(['--help'], {
    env: {},
    stdout: (text) => (help += text),
    stderr() {},
  });
  assert.equal(code, 0);
  assert.match(help, /^Usage: sandbox-preview/);

  // session-manager: its pure parts, and its operations in preview-server's document.
  const sessions = pkgs['session-manager'];
  assert.equal(sessions.parseContainerPath('//app/./src/'), '/app/src');
  const documented = pkgs['preview-server'].createInternalApiDocument({
    extensions: [sessions.SESSIONS_API_DOCUMENT],
  });
  assert.ok(
    documented.paths['/api/internal/sessions/{id}/exec'].post,
    'the sessions API is not in the document',
  );
  const upstream = await startUpstream();
  const port = upstream.address().port;
  const closed = await listen(() => {});
  const closedPort = closed.address().port;
  await stop(closed);

  // proxy-core (undici for HTTP): a request reaches the upstream; a refused connection is the 502.
  const proxy = pkgs['proxy-core'].createPreviewProxy();
  let failure;
  const front = await listen((req, res) => {
    const target = { host: '127.0.0.1', port: req.url === '/refused' ? closedPort : port };
    proxy.forward(req, res, { target, forwardPath: '/a%2Fb//c?q=%26', prefix: '/previews/abc' }, (error) => {
      failure = error;
      res.writeHead(599).end();
    });
  });
  assert.equal(await (await fetch(`${urlOf(front)}/ok`)).text(), 'GET /a%2Fb//c?q=%26');
  assert.equal((await fetch(`${urlOf(front)}/refused`)).status, 599);
  assert.equal(failure.code, 'UPSTREAM_CONNECT_FAILED');
  assert.ok(failure instanceof pkgs['error-contract'].PreviewError);
  assert.ok(otherContract.isPreviewError(failure), 'the other format does not recognise a PreviewError');
  await stop(front);

  // preview-core end to end (Express 5): register a port, proxy HTTP, a streamed body and a WebSocket
  // through it, the contract's JSON 404.
  const resolver = {
    resolve: async (id) => ({ ip: '127.0.0.1', network: 'n', containerId: id, labels: {} }),
  };
  const registerAt = (app) =>
    fetch(`${urlOf(app)}/api/internal/sessions/demo/previews`, {
      method: 'POST',
      headers: { 'x-internal-service-key': 'k', 'content-type': 'application/json' },
      body: JSON.stringify({ port }),
    });
  // By default a loopback target is refused: only container addresses are forwarded to.
  const strict = await listen(pkgs['preview-core'].createPreviewApp({ resolver, internalServiceKey: 'k' }));
  assert.equal((await registerAt(strict)).status, 201);
  const refused = await fetch(`${urlOf(strict)}/previews/demo/page`);
  assert.equal(refused.status, 500);
  assert.equal((await refused.json()).code, 'CONTAINER_ADDRESS_REFUSED');
  await stop(strict);
  const previewApp = pkgs['preview-core'].createPreviewApp({
    resolver,
    internalServiceKey: 'k',
    isAllowedUpstream: (address) => address === '127.0.0.1',
  });
  const app = await listen(previewApp.requestListener);
  app.on('upgrade', previewApp.handleUpgrade);
  assert.equal((await registerAt(app)).status, 201);
  assert.equal(await (await fetch(`${urlOf(app)}/previews/demo/page?x=1`)).text(), 'GET /page?x=1');
  await checkProxiedRoute(urlOf(app), '/previews/demo');
  const missing = await fetch(`${urlOf(app)}/previews/unknown/`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, 'PREVIEW_NOT_REGISTERED');
  await stop(app);
  await stop(upstream);
  // The proxy-only composition from the same install.
  await routesSmoke(`${format}, every package installed`, async (name) => load(name));
  console.log(`${format}: the ${names.length} packages load and work`);
};
