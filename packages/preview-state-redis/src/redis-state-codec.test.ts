import { describe, expect, it } from 'vitest';
import { MalformedStoreDataError, parseStoredEntry, parseStoreMessage } from './redis-state-codec.js';

describe('parseStoredEntry', () => {
  it('reads what the scripts write', () => {
    expect(parseStoredEntry('registration', '{"seq":3,"value":[3000,4000]}')).toEqual({
      seq: 3,
      value: [3000, 4000],
    });
    expect(
      parseStoredEntry('registration', '{"seq":3,"value":[3000,{"port":5173,"stripPrefix":false}]}'),
    ).toEqual({ seq: 3, value: [3000, { port: 5173, stripPrefix: false }] });
    expect(
      parseStoredEntry(
        'registration',
        '{"seq":3,"value":[{"port":8888,"visibility":"private","tokensNotBefore":1800000000000}]}',
      ),
    ).toEqual({ seq: 3, value: [{ port: 8888, visibility: 'private', tokensNotBefore: 1_800_000_000_000 }] });
    expect(
      parseStoredEntry('container', '{"seq":4,"value":{"state":"running","ip":"10.0.0.2","network":"n"}}'),
    ).toEqual({ seq: 4, value: { state: 'running', ip: '10.0.0.2', network: 'n' } });
    expect(parseStoredEntry('engine', '{"seq":5,"value":{"connected":false,"reason":"down"}}')).toEqual({
      seq: 5,
      value: { connected: false, reason: 'down' },
    });
  });

  it.each([
    ['registration', 'not json'],
    ['registration', '3000'],
    ['registration', '{"seq":1,"value":[]}'],
    ['registration', '{"seq":1,"value":["3000"]}'],
    ['registration', '{"seq":-1,"value":[3000]}'],
    ['registration', '{"value":[3000]}'],
    // Only the exception is spelled out: a bare number is how a port that strips its prefix is stored.
    ['registration', '{"seq":1,"value":[{"port":3000,"stripPrefix":true}]}'],
    ['registration', '{"seq":1,"value":[{"port":3000}]}'],
    ['registration', '{"seq":1,"value":[{"port":"3000","stripPrefix":false}]}'],
    // A private port without the time its tokens count from, or a public one with it, or an unknown option.
    ['registration', '{"seq":1,"value":[{"port":3000,"visibility":"private"}]}'],
    ['registration', '{"seq":1,"value":[{"port":3000,"stripPrefix":false,"tokensNotBefore":1}]}'],
    ['registration', '{"seq":1,"value":[{"port":3000,"visibility":"public"}]}'],
    ['registration', '{"seq":1,"value":[{"port":3000,"stripPrefix":false,"extra":1}]}'],
    ['container', '{"seq":1,"value":{"state":"running"}}'],
    ['container', '{"seq":1,"value":{"state":"exploded"}}'],
    ['engine', '{"seq":1,"value":{"connected":false}}'],
  ] as const)('rejects a %s stored as %s', (kind, text) => {
    expect(() => parseStoredEntry(kind, text)).toThrow(MalformedStoreDataError);
  });
});

describe('parseStoreMessage', () => {
  it('reads changes, deletions and resyncs', () => {
    expect(parseStoreMessage('{"kind":"registration","id":"a","seq":7,"value":[3000]}')).toEqual({
      kind: 'registration',
      id: 'a',
      seq: 7,
      value: [3000],
    });
    expect(parseStoreMessage('{"kind":"container","id":"a","seq":8,"value":null}')).toEqual({
      kind: 'container',
      id: 'a',
      seq: 8,
      value: undefined,
    });
    expect(parseStoreMessage('{"kind":"resync","seq":9}')).toEqual({ kind: 'resync', seq: 9 });
  });

  it.each([
    'hello',
    '{"kind":"registration","id":"a","seq":7}',
    '{"kind":"ports","id":"a","seq":7,"value":[3000]}',
    '{"kind":"registration","id":"a","seq":"7","value":[3000]}',
    '{"kind":"engine","id":"","seq":7,"value":{"connected":"yes"}}',
  ])('rejects %s', (text) => {
    expect(() => parseStoreMessage(text)).toThrow(MalformedStoreDataError);
  });
});
