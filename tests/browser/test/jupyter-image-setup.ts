// Vitest globalSetup, after fixtures/src/global-setup.ts: builds the Jupyter fixture image when its inputs changed.
import { ensureJupyterImage } from './jupyter-support.js';

export default async function setup(): Promise<void> {
  await ensureJupyterImage();
}
