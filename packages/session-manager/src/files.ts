import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { containerNameFor, previewErrors } from '@sandbox/error-contract';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { dockerStatusOf, sessionCallError } from './docker-errors.js';
import { childNameOf, parsePathStat, statOfTarEntry } from './file-paths.js';
import type { FileList, FileStat } from './schemas.js';

/** The Docker calls the files API makes. */
export type FilesDocker = Pick<Docker, 'getContainer'>;

/** Files of a session's container, through the engine's archive API (running or stopped, any image). */
export interface SessionFiles {
  /** What `path` is; a symlink is described, not followed. */
  stat(sessionId: string, path: string): Promise<FileStat>;
  /** The entries of a directory (symlinks to one followed), by name. */
  list(sessionId: string, path: string): Promise<FileList>;
  /** A regular file's bytes, streamed (symlinks followed). */
  read(sessionId: string, path: string): Promise<{ stat: FileStat; body: Readable }>;
  /**
   * Writes `body` to `path`, creating missing parent directories; `size` is its length when known (a
   * body without one is spooled to a temporary file first, up to `maxBytes`).
   */
  write(
    sessionId: string,
    path: string,
    body: Readable,
    size: number | undefined,
  ): Promise<{ path: string; size: number }>;
}

/** Options of {@link createSessionFiles}. */
export interface SessionFilesOptions {
  docker: FilesDocker;
  /** Largest body `write` accepts (413 PAYLOAD_TOO_LARGE beyond). */
  maxBytes: number;
}

const MAX_SYMLINK_HOPS = 16;

/** Creates {@link SessionFiles}. Paths must already be parsed (`parseContainerPath`). */
export function createSessionFiles({ docker, maxBytes }: SessionFilesOptions): SessionFiles {
  const containerOf = async (sessionId: string) => {
    const container = docker.getContainer(containerNameFor(sessionId));
    await container.inspect().catch((error: unknown) => {
      throw sessionCallError(sessionId, error);
    });
    return container;
  };

  const statIn = async (container: Docker.Container, sessionId: string, path: string) => {
    try {
      const response = (await container.infoArchive({ path })) as IncomingMessage;
      response.resume();
      return parsePathStat(path, response.headers['x-docker-container-path-stat'] as string | undefined);
    } catch (error) {
      // The container was just inspected: a 404 now is the path.
      if (dockerStatusOf(error) === 404) throw previewErrors.fileNotFound(sessionId, path);
      throw sessionCallError(sessionId, error);
    }
  };

  // The engine resolves each link inside the container's root (`linkTarget` is that resolved path), so
  // following it never leaves the container.
  const resolved = async (container: Docker.Container, sessionId: string, path: string) => {
    let stat = await statIn(container, sessionId, path);
    for (let hop = 0; stat.type === 'symlink' && hop < MAX_SYMLINK_HOPS; hop += 1) {
      if (stat.linkTarget === undefined) throw previewErrors.fileNotFound(sessionId, path);
      stat = await statIn(container, sessionId, stat.linkTarget);
    }
    if (stat.type === 'symlink') throw previewErrors.fileNotFound(sessionId, path);
    return stat;
  };

  const archiveOf = async (container: Docker.Container, sessionId: string, path: string) => {
    try {
      return (await container.getArchive({ path })) as IncomingMessage;
    } catch (error) {
      if (dockerStatusOf(error) === 404) throw previewErrors.fileNotFound(sessionId, path);
      throw sessionCallError(sessionId, error);
    }
  };

  return {
    async stat(sessionId, path) {
      return statIn(await containerOf(sessionId), sessionId, path);
    },

    async list(sessionId, path) {
      const container = await containerOf(sessionId);
      const directory = await resolved(container, sessionId, path);
      if (directory.type !== 'directory') throw previewErrors.notADirectory(path);
      const archive = await archiveOf(container, sessionId, directory.path);
      const extract = tar.extract();
      archive.pipe(extract);
      const entries: FileStat[] = [];
      let root: string | undefined;
      try {
        for await (const entry of extract) {
          root ??= entry.header.name;
          const name = childNameOf(root, entry.header.name);
          if (name !== undefined) entries.push(statOfTarEntry(path, name, entry.header));
          entry.resume();
        }
      } finally {
        archive.destroy();
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { path, entries };
    },

    async read(sessionId, path) {
      const container = await containerOf(sessionId);
      const stat = await resolved(container, sessionId, path);
      if (stat.type !== 'file') throw previewErrors.notAFile(path);
      const archive = await archiveOf(container, sessionId, stat.path);
      const extract = tar.extract();
      archive.pipe(extract);
      async function* bytes() {
        try {
          for await (const entry of extract) {
            for await (const chunk of entry) yield chunk as Buffer;
            break;
          }
        } finally {
          archive.destroy();
        }
      }
      return { stat: { ...stat, path }, body: Readable.from(bytes(), { objectMode: false }) };
    },

    async write(sessionId, path, body, size) {
      const container = await containerOf(sessionId);
      const existing = await statIn(container, sessionId, path).catch((error: unknown) => {
        if ((error as { code?: unknown }).code === 'FILE_NOT_FOUND') return undefined;
        throw error;
      });
      if (existing !== undefined && existing.type === 'directory') throw previewErrors.notAFile(path);
      if (size !== undefined && size > maxBytes) throw previewErrors.payloadTooLarge(maxBytes);
      // A tar entry states its size before its bytes: a body of unknown length is counted onto disk first.
      const spooled = size === undefined ? await spool(body, maxBytes) : undefined;
      try {
        const source = spooled ? createReadStream(spooled.file) : body;
        const length = spooled ? spooled.size : (size ?? 0);
        await putFile(container, path, source, length, existing ? Number.parseInt(existing.mode, 8) : 0o644);
        return { path, size: length };
      } finally {
        if (spooled) await rm(spooled.directory, { recursive: true, force: true });
      }
    },
  };
}

async function putFile(
  container: Docker.Container,
  path: string,
  source: Readable,
  size: number,
  mode: number,
): Promise<void> {
  const pack = tar.pack();
  // Relative to `/`: the engine creates missing parents as it unpacks, inside the container's root.
  const entry = pack.entry({ name: path.slice(1), size, mode, mtime: new Date(), type: 'file' });
  const bodyDone = pipeline(source, exactly(size), entry as unknown as NodeJS.WritableStream).then(() =>
    pack.finalize(),
  );
  // A body that fails (cut by its client, or not its stated length) must not leave a half-written file: the
  // archive is broken off, and the engine unpacks nothing of a truncated archive's last entry.
  bodyDone.catch((error: unknown) => pack.destroy(error as Error));
  const engineDone = container
    .putArchive(pack as unknown as NodeJS.ReadableStream, { path: '/', copyUIDGID: true })
    .catch((error: unknown) => {
      throw previewErrors.dockerEngineError(error);
    });
  await Promise.all([bodyDone, engineDone]);
}

// A body shorter or longer than its Content-Length must not become a truncated or padded file.
function exactly(size: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > size ? new Error('body longer than its length') : null, chunk);
    },
    flush(callback) {
      callback(seen === size ? null : new Error('body shorter than its length'));
    },
  });
}

async function spool(
  body: Readable,
  maxBytes: number,
): Promise<{ directory: string; file: string; size: number }> {
  const directory = await mkdtemp(join(tmpdir(), 'sandbox-upload-'));
  const file = join(directory, 'body');
  let size = 0;
  try {
    await pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          size += chunk.length;
          callback(size > maxBytes ? previewErrors.payloadTooLarge(maxBytes) : null, chunk);
        },
      }),
      createWriteStream(file),
    );
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return { directory, file, size };
}
