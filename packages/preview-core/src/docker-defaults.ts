import { createContainerResolver } from '@sandbox/container-resolver';
import type { ContainerResolver } from '@sandbox/error-contract';
import {
  createPreviewApp as createServerApp,
  createPreviewHandler as createServerHandler,
  createPreviewRouter as createServerRouter,
  type PreviewApp,
  type PreviewRequestHandler,
  type PreviewRouterOptions as ServerRouterOptions,
} from '@sandbox/preview-server';

/**
 * Options of {@link createPreviewRouter}, {@link createPreviewApp} and {@link createPreviewHandler}: those of
 * `@sandbox/preview-server`, with the resolver optional.
 */
export interface PreviewRouterOptions extends Omit<ServerRouterOptions, 'resolver'> {
  /** Session -> container address. Default: Docker, from `DOCKER_HOST` (one inspect per request). */
  resolver?: ContainerResolver;
}

/** Options of {@link createPreviewApp} and {@link createPreviewHandler}. */
export type PreviewAppOptions = PreviewRouterOptions;

// The umbrella is the one place that picks Docker as the default: the server and routes packages take a
// resolver, so an edge or a proxy-only consumer never loads dockerode.
const withDocker = (options: PreviewRouterOptions): ServerRouterOptions => ({
  ...options,
  resolver: options.resolver ?? createContainerResolver(),
});

/** `createPreviewRouter` of `@sandbox/preview-server`, resolving containers through Docker by default. */
export function createPreviewRouter(
  options: PreviewRouterOptions = {},
): ReturnType<typeof createServerRouter> {
  return createServerRouter(withDocker(options));
}

/** `createPreviewApp` of `@sandbox/preview-server`, resolving containers through Docker by default. */
export function createPreviewApp(options: PreviewAppOptions = {}): PreviewApp {
  return createServerApp(withDocker(options));
}

/** `createPreviewHandler` of `@sandbox/preview-server`, resolving containers through Docker by default. */
export function createPreviewHandler(options: PreviewAppOptions = {}): PreviewRequestHandler {
  return createServerHandler(withDocker(options));
}
