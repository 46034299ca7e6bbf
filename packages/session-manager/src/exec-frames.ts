import { Transform, type TransformCallback } from 'node:stream';

/** One chunk of an exec's output, from the stream it was written to. */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

// Docker multiplexes a non-TTY exec's stdout and stderr on one connection, in frames: one byte of stream
// type (1 stdout, 2 stderr), three zero bytes, a big-endian uint32 length, then that many bytes.
const HEADER_BYTES = 8;

/**
 * A transform from Docker's multiplexed bytes to {@link OutputChunk}s (objects), whatever the chunking of its
 * input: a frame split across reads is joined, several frames in one read are split. Frames of another
 * stream type (stdin echo) are dropped.
 */
export function createFrameDemuxer(): Transform {
  let pending: Buffer = Buffer.alloc(0);
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= HEADER_BYTES) {
        const type = pending[offset];
        const size = pending.readUInt32BE(offset + 4);
        if (pending.length - offset < HEADER_BYTES + size) break;
        const data = pending.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + size);
        offset += HEADER_BYTES + size;
        if (size > 0 && (type === 1 || type === 2))
          this.push({ stream: type === 1 ? 'stdout' : 'stderr', data } satisfies OutputChunk);
      }
      pending = pending.subarray(offset);
      callback();
    },
  });
}
