// ESM consumer of the published @sandbox/preview-core: the preview routes mounted in an Express app, a
// preview registered for a real session container (PREVIEW_SESSION_ID, its app on port 3000), and one
// request proxied to it. Prints OK and exits 0, or exits 1 saying what went wrong.
import { once } from 'node:events';
import { createErrorHandler, createPreviewRouter } from '@sandbox/preview-core';
import express from 'express';

const KEY = 'rehearsal-key';
const sessionId = process.env.PREVIEW_SESSION_ID;
if (!sessionId) throw new Error('PREVIEW_SESSION_ID is not set');

const app = express();
app.use(createPreviewRouter({ internalServiceKey: KEY }));
app.use(createErrorHandler());
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();
const base = `http://127.0.0.1:${port}`;

try {
  const registered = await fetch(`${base}/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    body: JSON.stringify({ port: 3000 }),
  });
  if (registered.status !== 201) {
    throw new Error(`register: HTTP ${registered.status} ${await registered.text()}`);
  }
  const proxied = await fetch(`${base}/previews/${sessionId}/hello?x=1`);
  const body = await proxied.text();
  if (proxied.status !== 200) throw new Error(`proxy: HTTP ${proxied.status} ${body}`);
  const { url } = JSON.parse(body);
  if (url !== '/hello?x=1') throw new Error(`proxy: the container saw ${JSON.stringify(url)}`);
  console.log('OK');
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  server.closeAllConnections();
  server.close();
}
