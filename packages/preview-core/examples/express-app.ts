import { createServer } from 'node:http';
import { createErrorHandler, createPreviewRouter, notFoundHandler } from '@sandbox/preview-core';
import express from 'express';

// (a) Mount the preview routes in an existing Express app, next to its own routes.
export function createAppServer(internalServiceKey: string) {
  const app = express();
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  // Registration API, /internal-previews/proxy/:id/* and /previews/:id/*; no body parser in front of them.
  const previews = createPreviewRouter({ internalServiceKey });
  app.use(previews);
  app.use(notFoundHandler); // optional: the contract's JSON 404 for everything else
  app.use(createErrorHandler()); // preview errors leave as the contract's JSON
  const server = createServer(app);
  server.on('upgrade', previews.handleUpgrade); // WebSockets (dev-server hot reload) on the same routes
  return server;
}
