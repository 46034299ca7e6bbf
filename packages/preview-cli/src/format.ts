import type { LogEntry, Session } from './client.js';

// What the commands print, as pure functions of what the manager answered.

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/** The URL a port is opened at: its path URL (the active port), else its host URL, else none. */
export function urlOfPort(port: Session['ports'][number]): string | undefined {
  return port.urls.path ?? port.urls.host ?? undefined;
}

/** `ls`: one line per session, its ports and the URL of its first. */
export function sessionTable(sessions: readonly Session[]): string {
  const rows = sessions.map((session) => {
    const first = session.ports[0];
    return [
      session.sessionId,
      session.state,
      session.image,
      session.ports.map((port) => `${port.port}${port.registered ? '' : '*'}`).join(',') || '-',
      (first && urlOfPort(first)) ?? '-',
    ];
  });
  return table([['SESSION', 'STATE', 'IMAGE', 'PORTS', 'URL'], ...rows]);
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * One request log entry on one line: time, status, method and path, duration, bytes out; a WebSocket's
 * close code, an error's contract code, an aborted exchange.
 */
export function logLine(entry: LogEntry): string {
  const time = entry.time.slice(11, 23);
  const status = entry.status === 0 ? '---' : String(entry.status);
  const kind = entry.kind === 'websocket' ? 'WS ' : '';
  let line = `${time}  ${status}  ${kind}${entry.method} ${entry.path}  ${entry.durationMs} ms  ${bytes(entry.bytesOut)}`;
  if (entry.closeCode !== undefined) line += `  close ${entry.closeCode}`;
  if (entry.error !== undefined) line += `  ${entry.error}`;
  if (entry.aborted) line += '  aborted';
  return line;
}
