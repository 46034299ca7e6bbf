// Vitest globalSetup, after fixtures/src/global-setup.ts: builds the Vite fixture image when its inputs changed.
import { ensureViteImage } from './support.js';

export default async function setup(): Promise<void> {
  await ensureViteImage();
}
