// The Next.js fixture image, for the browser tests that run a Next dev server through the proxy.
import { fileURLToPath } from 'node:url';
import { connectWebSocket, WebSocketHandshakeError } from '@sandbox/test-fixtures';
import { buildFixtureImage } from './support.js';

/**
 * A minimal App Router app in /app run by `next dev` (Turbopack) on port 3000, its basePath from
 * PREVIEW_BASE_PATH when set; built by build-next-image.sh. The page holds a client counter
 * (`<button id="count">count: N</button>`) and `<p id="msg">` from /app/app/message.js, for Fast Refresh.
 */
export const FIXTURE_NEXT_IMAGE = 'sandbox-fixture-next:latest';
export const NEXT_PORT = 3000;

const BUILD_NEXT_SCRIPT = fileURLToPath(new URL('../../../fixtures/build-next-image.sh', import.meta.url));

/** Builds sandbox-fixture-next:latest when its inputs changed (quick otherwise). */
export function ensureNextImage(): Promise<void> {
  // A cold build downloads Next.js (~100 MB packed) from npm and imports a ~470 MB image: minutes on a slow
  // registry or a busy machine, hence the margin.
  return buildFixtureImage(BUILD_NEXT_SCRIPT, 15 * 60_000);
}

/**
 * The outcome of a WebSocket handshake: 101 when it opened (then closed at once), else the HTTP status it
 * was refused with, else the error.
 */
export async function wsHandshake(url: string, headers: Record<string, string>): Promise<number | string> {
  return connectWebSocket(url, { headers, timeoutMs: 10_000 }).then(
    (ws) => {
      ws.destroy();
      return 101;
    },
    (error: unknown) => (error instanceof WebSocketHandshakeError ? error.statusCode : String(error)),
  );
}
