/**
 * Follows the frames of one direction of a WebSocket (RFC 6455 5.2) and reports the status code of the
 * first close frame (`undefined` for a close without one). The tunnel stays a byte pipe: this only reads
 * along, keeping at most a frame header (14 bytes) and skipping payloads whole. Returns the function to
 * call with each chunk; it stops looking after the close frame.
 */
export function createCloseCodeSniffer(onClose: (code: number | undefined) => void): (chunk: Buffer) => void {
  let header: number[] = [];
  let skip = 0;
  // Inside a close frame: its payload length, its mask (if any), and the code bytes read so far.
  let close: { length: number; mask: number[] | undefined; bytes: number[] } | undefined;
  let done = false;

  const frameHeader = () => {
    if (header.length < 2) return undefined;
    const second = header[1] as number;
    const masked = (second & 0x80) !== 0;
    const len7 = second & 0x7f;
    const lengthBytes = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const size = 2 + lengthBytes + (masked ? 4 : 0);
    if (header.length < size) return undefined;
    let length = len7;
    if (lengthBytes > 0) {
      length = 0;
      for (let i = 2; i < 2 + lengthBytes; i++) length = length * 256 + (header[i] as number);
    }
    const mask = masked ? header.slice(2 + lengthBytes, size) : undefined;
    return { opcode: (header[0] as number) & 0x0f, length, mask };
  };

  return (chunk) => {
    let at = 0;
    while (!done && at < chunk.length) {
      if (close) {
        close.bytes.push(chunk[at++] as number);
        if (close.bytes.length < 2) continue;
        done = true;
        const [a = 0, b = 0] = close.bytes;
        const [m0 = 0, m1 = 0] = close.mask ?? [];
        onClose(((a ^ m0) << 8) | (b ^ m1));
        return;
      }
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at);
        skip -= n;
        at += n;
        continue;
      }
      header.push(chunk[at++] as number);
      const frame = frameHeader();
      if (!frame) continue;
      header = [];
      if (frame.opcode !== 0x8) {
        skip = frame.length;
        continue;
      }
      if (frame.length < 2) {
        done = true;
        onClose(undefined);
        return;
      }
      close = { length: frame.length, mask: frame.mask, bytes: [] };
    }
  };
}
