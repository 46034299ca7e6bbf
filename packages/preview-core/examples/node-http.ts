import { createServer } from 'node:http';
import { createPreviewHandler } from '@sandbox/preview-core';

// (b) A plain node:http server: the preview routes first, the server's own handler for everything else.
export function createPreviewServer(internalServiceKey: string) {
  const previews = createPreviewHandler({ internalServiceKey });
  const server = createServer((req, res) => {
    previews(req, res, () => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('my own route\n');
    });
  });
  server.on('upgrade', previews.handleUpgrade);
  return server;
}
