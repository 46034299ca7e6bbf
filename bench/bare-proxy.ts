// The bare proxy of the benchmark: proxy-core's `createPreviewProxy()` on a plain node:http server,
// forwarding `PREFIX/*` to one fixed `TARGET` (host:port) with the prefix stripped. No routes, no registry, no
// container lookup, no request ids, logs or metrics: what forwarding itself costs on the engine the services
// use (UPSTREAM_ENGINE, as they read it), for the route's CPU per request to be compared with.
import { createServer } from 'node:http';
import { createPreviewProxy } from '@sandbox/proxy-core';

const [host = '', port = ''] = (process.env.TARGET ?? '').split(':');
const prefix = process.env.PREFIX ?? '';
if (host === '' || !/^\d+$/.test(port) || !prefix.startsWith('/'))
  throw new Error('bare-proxy needs TARGET=host:port and PREFIX=/previews/<id>');
const engine = process.env.UPSTREAM_ENGINE === 'undici' ? 'undici' : undefined;
const proxy = createPreviewProxy(engine === undefined ? {} : { engine });
const target = { host, port: Number(port) };

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (!url.startsWith(`${prefix}/`)) {
    res.writeHead(404).end();
    return;
  }
  proxy.forward(req, res, { target, forwardPath: url.slice(prefix.length), prefix }, (error) => {
    if (!res.headersSent) res.writeHead(error ? 502 : 404);
    res.end();
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  console.log(`bare-proxy (${proxy.upstream.engine}) listening on http://${address.address}:${address.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
