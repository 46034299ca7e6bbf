import { describe, expect, it } from 'vitest';
import { createFrameDemuxer, type OutputChunk } from './exec-frames.js';

function frame(type: number, text: string): Buffer {
  const data = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

async function demux(chunks: Buffer[]): Promise<Array<[string, string]>> {
  const demuxer = createFrameDemuxer();
  const out: Array<[string, string]> = [];
  demuxer.on('data', (chunk: OutputChunk) => out.push([chunk.stream, chunk.data.toString()]));
  for (const chunk of chunks) demuxer.write(chunk);
  demuxer.end();
  await new Promise((resolve) => demuxer.on('end', resolve));
  return out;
}

describe('createFrameDemuxer', () => {
  const bytes = Buffer.concat([
    frame(1, 'out one'),
    frame(2, 'err'),
    frame(0, 'stdin echo'),
    frame(1, ''),
    frame(1, 'two'),
  ]);
  const expected = [
    ['stdout', 'out one'],
    ['stderr', 'err'],
    ['stdout', 'two'],
  ];

  it('splits frames that arrive together', async () => {
    expect(await demux([bytes])).toEqual(expected);
  });

  it('joins frames split at any byte, whatever the reads', async () => {
    for (let at = 1; at < bytes.length; at += 1) {
      const joined = await demux([bytes.subarray(0, at), bytes.subarray(at)]);
      expect(joined.map(([stream]) => stream).join(), `split at ${at}`).toBe(
        'stdout,stderr,stdout'.split(',').join(),
      );
      expect(joined.map(([, text]) => text).join(''), `split at ${at}`).toBe('out oneerrtwo');
    }
    const byteByByte = await demux([...bytes].map((byte) => Buffer.from([byte])));
    expect(byteByByte.map(([, text]) => text).join('')).toBe('out oneerrtwo');
  });
});
