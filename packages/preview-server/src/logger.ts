import type { AccessRecord } from '@sandbox/preview-routes';
import type { UpstreamEngineChoice } from '@sandbox/proxy-core';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

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
  /** Where lines go. Default: stdout, written asynchronously (one write per event-loop turn, not one per line). */
  destination?: NodeJS.WritableStream;
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

/**
 * The apps' logger: pino, JSON by default. Stdout is written asynchronously (the lines of one event-loop turn in one write); call
 * `logger.flush()` before exiting.
 */
export function createServiceLogger({
  name,
  level = 'info',
  format = 'json',
  destination,
}: ServiceLoggerOptions): Logger {
  const options = { name, level, redact: { paths: REDACTED, censor: '[redacted]' } };
  if (format === 'pretty') return pino(options, pretty({ sync: true, destination: destination ?? 1 }));
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
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

/** Writes one access line (info): the record's fields at the top level, message `access`. */
export function logAccess(logger: Logger): (record: AccessRecord) => void {
  return (record) => logger.info(record, 'access');
}
