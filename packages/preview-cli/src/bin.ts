#!/usr/bin/env node
// The `sandbox-preview` command: runCli on this process's arguments, environment and streams.
import { createRequire } from 'node:module';
import { runCli } from './cli.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
// A reader that goes away (`logs -f | head`) ends the command, quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  // Ctrl-C ends a follow cleanly (exit 0); a second one, or one during any other command, exits at once.
  interrupts(stop) {
    const onInterrupt = () => {
      stop();
      process.once('SIGINT', () => process.exit(130));
    };
    process.once('SIGINT', onInterrupt);
    return () => process.off('SIGINT', onInterrupt);
  },
  version,
});
