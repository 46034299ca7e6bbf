import { posix } from 'node:path';
import { previewErrors } from '@sandbox/error-contract';
import type { FileStat } from './schemas.js';

// Pure: the paths the files API accepts and what Docker's archive API says of them.

const MAX_PATH_LENGTH = 4096;

/**
 * An absolute container path, normalised (`//` and `.` segments folded, no trailing slash), or the 400
 * INVALID_FILE_PATH. A `..` segment is refused rather than folded: it never means anything a caller should
 * rely on. Symlinks are resolved by the engine, inside the container's root.
 */
export function parseContainerPath(raw: unknown): string {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.length > MAX_PATH_LENGTH || raw.includes('\0'))
    throw previewErrors.invalidFilePath();
  if (raw.split('/').includes('..')) throw previewErrors.invalidFilePath();
  const normalized = posix.normalize(raw);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

// Go's os.FileMode type bits, as Docker's stat header carries them.
const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;
const MODE_TYPE_BITS = [2 ** 31, 2 ** 27, 2 ** 26, 2 ** 25, 2 ** 24, 2 ** 21, 2 ** 19];

/** What a Go file mode says a path is. */
export function fileTypeOfMode(mode: number): FileStat['type'] {
  const has = (bit: number) => Math.floor(mode / bit) % 2 === 1;
  if (has(MODE_DIR)) return 'directory';
  if (has(MODE_SYMLINK)) return 'symlink';
  return MODE_TYPE_BITS.some(has) ? 'other' : 'file';
}

/** The `X-Docker-Container-Path-Stat` header (base64 JSON) of an archive HEAD, as a {@link FileStat}. */
export function parsePathStat(path: string, header: string | undefined): FileStat {
  const raw = JSON.parse(Buffer.from(header ?? '', 'base64').toString('utf8')) as {
    name?: string;
    size?: number;
    mode?: number;
    mtime?: string;
    linkTarget?: string;
  };
  const mode = raw.mode ?? 0;
  const type = fileTypeOfMode(mode);
  return {
    path,
    name: path === '/' ? '/' : posix.basename(path),
    type,
    size: raw.size ?? 0,
    mode: (mode % 0o1000).toString(8).padStart(4, '0'),
    modifiedAt: new Date(raw.mtime ?? 0).toISOString(),
    ...(type === 'symlink' && raw.linkTarget ? { linkTarget: raw.linkTarget } : {}),
  };
}

/** The entry of a tar header as a {@link FileStat} of a directory's child. */
export function statOfTarEntry(
  directory: string,
  name: string,
  header: {
    type?: string | null | undefined;
    size?: number | undefined;
    mode?: number | undefined;
    mtime?: Date | undefined;
    linkname?: string | null | undefined;
  },
): FileStat {
  const type =
    header.type === 'directory'
      ? 'directory'
      : header.type === 'symlink'
        ? 'symlink'
        : header.type === 'file' || header.type === 'contiguous-file'
          ? 'file'
          : 'other';
  return {
    path: directory === '/' ? `/${name}` : `${directory}/${name}`,
    name,
    type,
    size: type === 'file' ? (header.size ?? 0) : 0,
    mode: ((header.mode ?? 0) % 0o1000).toString(8).padStart(4, '0'),
    modifiedAt: (header.mtime ?? new Date(0)).toISOString(),
    ...(type === 'symlink' && header.linkname ? { linkTarget: header.linkname } : {}),
  };
}

/**
 * The direct child a tar entry of a directory's archive stands for (pure), or `undefined` for the
 * directory itself and for deeper entries. The archive names entries after the directory's base name
 * (`app/x`), or absolutely for `/` (`/x`).
 */
export function childNameOf(rootEntry: string, entry: string): string | undefined {
  const root = rootEntry.endsWith('/') ? rootEntry : `${rootEntry}/`;
  if (!entry.startsWith(root)) return undefined;
  const rest = entry.slice(root.length).replace(/\/$/, '');
  return rest === '' || rest.includes('/') ? undefined : rest;
}
