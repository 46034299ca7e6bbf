import { previewErrors } from '@sandbox/error-contract';
import { isValidSessionId } from '@sandbox/preview-registry';
import { hasMalformedPercentEncoding, type PreviewProxy, splitPreviewPath } from '@sandbox/proxy-core';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { PreviewTargetResolver } from './target.js';

/** Options of {@link createProxyRoute}. */
export interface ProxyRouteOptions {
  /** The route prefix without trailing slash, e.g. `/previews`. */
  prefix: string;
  targets: PreviewTargetResolver;
  proxy: PreviewProxy;
}

function decodeSessionId(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * `ALL {prefix}/:sessionId/*`: matched by hand on the raw URL (no router, no body parser in front of the
 * proxy), validated, resolved, forwarded with the prefix stripped.
 */
export function createProxyRoute({ prefix, targets, proxy }: ProxyRouteOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const match = splitPreviewPath(req.url, prefix);
    if (!match) {
      next();
      return;
    }
    const sessionId = decodeSessionId(match.rawSessionId);
    if (sessionId === undefined || hasMalformedPercentEncoding(req.url)) {
      next(previewErrors.malformedPath());
      return;
    }
    if (!isValidSessionId(sessionId)) {
      next(previewErrors.invalidSessionId());
      return;
    }
    const routePrefix = `${req.baseUrl}${prefix}/${match.rawSessionId}`;
    targets
      .resolve(sessionId)
      .then(
        (target) =>
          proxy.forward(req, res, { target, forwardPath: match.forwardPath, prefix: routePrefix }, next),
        next,
      );
  };
}
