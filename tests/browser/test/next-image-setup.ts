// Vitest globalSetup, after fixtures/src/global-setup.ts: builds the Next.js fixture image when its inputs
// changed (ensureNextImage allows a cold build 15 minutes).
import { ensureNextImage } from './next-support.js';

export default async function setup(): Promise<void> {
  await ensureNextImage();
}
