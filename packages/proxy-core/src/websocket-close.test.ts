import { describe, expect, it } from 'vitest';
import { createCloseCodeSniffer } from './websocket-close.js';

function frame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const length = payload.length;
  const lengthBytes =
    length < 126 ? [length] : length < 0x10000 ? [126, length >> 8, length & 0xff] : undefined;
  if (!lengthBytes) throw new Error('test frames stay under 64 KiB');
  const head = Buffer.from([
    0x80 | opcode,
    (mask ? 0x80 : 0) | (lengthBytes[0] as number),
    ...lengthBytes.slice(1),
  ]);
  if (!mask) return Buffer.concat([head, payload]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)));
  return Buffer.concat([head, mask, masked]);
}
const closeFrame = (code: number, mask?: Buffer) => {
  const payload = Buffer.alloc(2 + 3);
  payload.writeUInt16BE(code, 0);
  payload.write('bye', 2);
  return frame(0x8, payload, mask);
};

function sniff(bytes: Buffer, chunkSize: number): Array<number | undefined> {
  const seen: Array<number | undefined> = [];
  const feed = createCloseCodeSniffer((code) => seen.push(code));
  for (let at = 0; at < bytes.length; at += chunkSize) feed(bytes.subarray(at, at + chunkSize));
  return seen;
}

describe('createCloseCodeSniffer', () => {
  const stream = Buffer.concat([
    frame(0x1, Buffer.from('hello')),
    frame(0x2, Buffer.alloc(300, 7)),
    frame(0x9, Buffer.from('ping')),
    closeFrame(4001),
    frame(0x1, Buffer.from('after close')),
  ]);

  it.each([1, 2, 3, 7, 64, 4096])(
    'finds the close code past text, 16-bit-length binary and ping frames (chunks of %i)',
    (size) => {
      expect(sniff(stream, size)).toEqual([4001]);
    },
  );

  it('unmasks a client close frame', () => {
    const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const client = Buffer.concat([frame(0x1, Buffer.from('hi'), mask), closeFrame(1001, mask)]);
    for (const size of [1, 5, 100]) expect(sniff(client, size)).toEqual([1001]);
  });

  it('reports a close frame without a code as undefined, and nothing when no close comes', () => {
    expect(sniff(frame(0x8, Buffer.alloc(0)), 1)).toEqual([undefined]);
    expect(sniff(frame(0x1, Buffer.from('x')), 1)).toEqual([]);
  });
});
