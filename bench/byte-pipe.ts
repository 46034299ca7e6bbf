// The engine's ceiling in the benchmark: a Node process that copies bytes between each client connection
// and a connection of its own to one fixed `TARGET` (host:port). No HTTP at all: no parsing, no routes, no
// prefix (the client asks for the container's own paths), one upstream connection per client connection.
// Whatever an HTTP proxy on Node does, it does this much and more, so its req/s against nginx's bounds what
// any proxy on this engine can reach on the same machine.
import { connect, createServer } from 'node:net';

const [host = '', port = ''] = (process.env.TARGET ?? '').split(':');
if (host === '' || !/^\d+$/.test(port)) throw new Error('byte-pipe needs TARGET=host:port');

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port: Number(port), noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  console.log(`byte-pipe listening on http://${address.address}:${address.port}`);
});
// Nothing to drain: a client of a byte pipe sees its connection end as it would on any proxy's exit.
process.on('SIGTERM', () => process.exit(0));
