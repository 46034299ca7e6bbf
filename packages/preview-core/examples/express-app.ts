import { createErrorHandler, createPreviewRouter, notFoundHandler } from '@sandbox/preview-core';
import express from 'express';

// (a) Mount the preview routes in an existing Express app, next to its own routes.
export function createApp(internalServiceKey: string) {
  const app = express();
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  // Registration API, /internal-previews/proxy/:id/* and /previews/:id/*; no body parser in front of them.
  app.use(createPreviewRouter({ internalServiceKey }));
  app.use(notFoundHandler); // optional: the contract's JSON 404 for everything else
  app.use(createErrorHandler()); // preview errors leave as the contract's JSON
  return app;
}
