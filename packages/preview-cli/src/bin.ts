#!/usr/bin/env node
// The `sandbox-preview` command: runCli on this process's arguments, environment and streams.
import { createRequire } from 'node:module';
import { runCli } from './cli.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
// Ctrl-C ends a follow cleanly (exit 0); a second one exits at once.
const interrupted = new AbortController();
process.once('SIGINT', () => {
  interrupted.abort();
  process.once('SIGINT', () => process.exit(130));
});

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  signal: interrupted.signal,
  version,
});
