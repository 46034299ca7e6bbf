import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import type { AccessRecord } from '@sandbox/preview-routes';
import type { UpstreamEngineChoice } from '@sandbox/proxy-core';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { accessLine, loggerBindings } from './access-line.js';
import { createLineDestination } from './log-destination.js';

export type { Logger } from 'pino';

/** Log levels, as `LOG_LEVEL` takes them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Options of {@link createServiceLogger}. */
export interface ServiceLoggerOptions {
  /** The service's name, on every line. */
  name: string;
  level?: (typeof LOG_LEVELS)[number];
  /** `json` (one object per line, the default) or `pretty` (for a terminal in development). */
  format?: 'json' | 'pretty';
  /**
   * Where lines go: a writable stream, or any object with `write(line)` (a {@link createLineDestination}
   * on another descriptor, say). Default: stdout through {@link createLineDestination} (lines gathered and
   * written every 10 ms or 64 KiB).
   */
  destination?: NodeJS.WritableStream | { write(chunk: string): unknown };
}

// Never written, whatever a caller passes: credentials of the internal API and of clients, at the places a
// request or response object puts them. Exact paths only: a wildcard makes the redactor walk every field of
// every line (measured: 9 % of the proxy's CPU with one access line per request).
const REDACTED = ['req', 'res', 'request', 'response']
  .flatMap((at) => [
    `${at}.headers.cookie`,
    `${at}.headers.authorization`,
    `${at}.headers["x-internal-service-key"]`,
    `${at}.headers["x-preview-token"]`,
    `${at}.headers["set-cookie"]`,
  ])
  .concat([
    'headers.cookie',
    'headers.authorization',
    'headers["x-internal-service-key"]',
    'headers["x-preview-token"]',
    'headers["set-cookie"]',
  ]);

// The loggers createServiceLogger made, with what their access lines need: the stream pino writes to (an
// access line goes to the same one, so lines stay in order) and the fields every line starts with.
const accessPaths = new WeakMap<Logger, { stream: { write(chunk: string): unknown }; bindings: string }>();

/**
 * The apps' logger: pino, JSON by default. Stdout gets the lines gathered over at most 10 ms (or 64 KiB) in
 * one write (pending lines are also written at exit); `logger.flush()` writes them at once.
 */
export function createServiceLogger({
  name,
  level = 'info',
  format = 'json',
  destination,
}: ServiceLoggerOptions): Logger {
  const options = { name, level, redact: { paths: REDACTED, censor: '[redacted]' } };
  const stream =
    format === 'pretty'
      ? pretty({ sync: true, destination: prettyDestination(destination) })
      : (destination ??
        createLineDestination({
          onError: (error) =>
            process.emitWarning(
              `log lines to stdout are dropped from now on: ${error.code ?? error.message}`,
            ),
        }));
  const logger = pino(options, stream as pino.DestinationStream);
  // A stream that routes by level (pino.multistream, marked with pino's metadata symbol) needs what pino
  // sets on it before each line: the hand-built access line would go to no stream, or the wrong one.
  if ((stream as { [key: symbol]: unknown })[Symbol.for('pino.metadata')] !== true)
    accessPaths.set(logger, {
      stream,
      bindings: loggerBindings({ pid: process.pid, hostname: hostname(), name }),
    });
  return logger;
}

// pino-pretty pipes into its destination, which must then be a stream: a write-only object is wrapped.
function prettyDestination(destination: ServiceLoggerOptions['destination']): NodeJS.WritableStream | number {
  if (destination === undefined) return 1;
  if (typeof (destination as Partial<NodeJS.WritableStream>).on === 'function')
    return destination as NodeJS.WritableStream;
  const target = destination;
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      target.write(chunk.toString());
      callback();
    },
  });
}

/**
 * Says at start-up which client forwards HTTP requests to containers, and why. Falling back to undici
 * because this Node's built-in parser is gone or changed is a warning: it costs throughput (see
 * docs/performance.md), and a Node upgrade is the likely cause.
 */
export function logUpstreamEngine(logger: Logger, { engine, reason }: UpstreamEngineChoice): void {
  const fields = { engine, reason, node: process.version };
  if (reason === 'native-unavailable')
    logger.warn(
      fields,
      "upstream engine: undici, because this Node's built-in HTTP parser is unavailable (set UPSTREAM_ENGINE to choose)",
    );
  else logger.info(fields, `upstream engine: ${engine} (${reason})`);
}

/**
 * Writes one access line (info): the record's fields at the top level, message `access`. For a logger from
 * {@link createServiceLogger} the line is built by hand (see access-line.ts), the same JSON pino would
 * write; any other logger gets `logger.info(record, 'access')`.
 */
export function logAccess(logger: Logger): (record: AccessRecord) => void {
  const fast = accessPaths.get(logger);
  if (fast === undefined) return (record) => logger.info(record, 'access');
  const { stream, bindings } = fast;
  // levelVal follows logger.level when it is changed at run time.
  return (record) => {
    if (logger.levelVal <= 30) stream.write(accessLine(record, Date.now(), bindings));
  };
}
