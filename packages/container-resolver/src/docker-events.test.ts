import { readFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { describe, expect, it, vi } from 'vitest';
import {
  classifySessionEvent,
  createJsonLineDecoder,
  type DockerEventMessage,
  type SessionEvent,
  WATCHED_CONTAINER_ACTIONS,
  WATCHED_NETWORK_ACTIONS,
} from './docker-events.js';

/**
 * Real `GET /events` lines from dockerd 20.10 (see `recording` in the file): `all` unfiltered, `filtered` with
 * the watcher's own type and event filters, over the same window.
 */
interface RecordedEvents {
  all: string[];
  filtered: string[];
}
const recorded: RecordedEvents = JSON.parse(
  readFileSync(new URL('../test/recorded/events.json', import.meta.url), 'utf8'),
);
const messages: DockerEventMessage[] = recorded.all.map((line) => JSON.parse(line));

// The two containers of the recording.
const X = '03b227a7a1a69093847cd72c53b3dcdcf806c6cc966f3bc31129b3fa04316493';
const Z = 'd0a39cab42f9ae1c89838b27e7dd758c870b5c10f317adebf8bb1132558f654b';

const c = (action: string, sessionId: string, containerId = X, previousSessionId?: string): SessionEvent =>
  ({
    kind: 'container',
    action,
    containerId,
    sessionId,
    ...(previousSessionId === undefined ? {} : { previousSessionId }),
  }) as SessionEvent;
const n = (action: 'connect' | 'disconnect', containerId = X): SessionEvent => ({
  kind: 'network',
  action,
  containerId,
});

/** What each recorded line classifies as, in the engine's order. */
const expected: Array<[what: string, SessionEvent | undefined]> = [
  ['container create sandbox-session-x (not watched)', undefined],
  ['network connect bridge', n('connect')],
  ['container start', c('start', 'x')],
  ['container pause', c('pause', 'x')],
  ['container unpause', c('unpause', 'x')],
  ['network connect crev-net', n('connect')],
  ['network disconnect crev-net', n('disconnect')],
  ['network disconnect crev-net (the engine sent it twice)', n('disconnect')],
  ['docker kill: kill (signal 9)', c('kill', 'x')],
  ['docker kill: die', c('die', 'x')],
  ['docker kill: network disconnect', n('disconnect')],
  ['docker start: network connect first', n('connect')],
  ['docker start: start', c('start', 'x')],
  ['docker stop: kill (signal 15)', c('kill', 'x')],
  ['docker stop: kill (signal 9) after the timeout', c('kill', 'x')],
  ['docker stop: die', c('die', 'x')],
  ['docker stop: network disconnect', n('disconnect')],
  ['docker stop: stop, last', c('stop', 'x')],
  ['docker start: network connect', n('connect')],
  ['docker start: start', c('start', 'x')],
  ['docker restart: kill (15)', c('kill', 'x')],
  ['docker restart: kill (9)', c('kill', 'x')],
  ['docker restart: die', c('die', 'x')],
  ['docker restart: network disconnect', n('disconnect')],
  ['docker restart: stop', c('stop', 'x')],
  ['docker restart: network connect', n('connect')],
  ['docker restart: start', c('start', 'x')],
  ['docker restart: restart, after start', c('restart', 'x')],
  ['rename sandbox-session-x -> renamed-away: session x loses its container', c('rename', 'x')],
  ['rename renamed-away -> sandbox-session-y: session y gains one', c('rename', 'y')],
  ['container create other-container', undefined],
  ['network connect of a non-session container: classified, the cache decides', n('connect', Z)],
  ['container start other-container (not a session)', undefined],
  ['rename other-container -> sandbox-session-z', c('rename', 'z', Z)],
  ['docker rm -f: kill (9)', c('kill', 'z', Z)],
  ['docker rm -f: die', c('die', 'z', Z)],
  ['docker rm -f: network disconnect', n('disconnect', Z)],
  ['docker rm -f: destroy, no stop', c('destroy', 'z', Z)],
  ['docker rm -f y: kill', c('kill', 'y')],
  ['docker rm -f y: die', c('die', 'y')],
  ['docker rm -f y: network disconnect', n('disconnect')],
  ['docker rm -f y: destroy', c('destroy', 'y')],
];

/** A recorded message with its actor edited, for the cases the recording does not hold. */
function edited(index: number, edit: (attributes: Record<string, string>) => void): DockerEventMessage {
  const message = structuredClone(messages[index]) as DockerEventMessage;
  const attributes = { ...(message.Actor?.Attributes ?? {}) };
  edit(attributes);
  return { ...message, Actor: { ...message.Actor, Attributes: attributes } };
}

const START = 2;
const RENAME_AWAY = 28;
const NETWORK_CONNECT = 1;

describe('classifySessionEvent (recorded dockerd 20.10 stream)', () => {
  it('the table covers the whole recording', () => {
    expect(messages).toHaveLength(expected.length);
  });

  it.each(expected.map(([what, event], index) => ({ index, what, event })))('#$index $what', (row) => {
    expect(classifySessionEvent(messages[row.index] as DockerEventMessage)).toEqual(row.event);
  });

  it("the engine's filter on the watched types and actions keeps exactly what the classifier looks at", () => {
    const watched = (m: DockerEventMessage) =>
      (m.Type === 'container' &&
        (WATCHED_CONTAINER_ACTIONS as readonly (string | undefined)[]).includes(m.Action)) ||
      (m.Type === 'network' &&
        (WATCHED_NETWORK_ACTIONS as readonly (string | undefined)[]).includes(m.Action));
    expect(recorded.filtered).toEqual(recorded.all.filter((line) => watched(JSON.parse(line))));
  });
});

describe('classifySessionEvent (edited recorded messages)', () => {
  it.each<[string, DockerEventMessage, SessionEvent | undefined]>([
    [
      'rename from one session name to another',
      edited(RENAME_AWAY, (a) => {
        a.name = 'sandbox-session-y';
        a.oldName = '/sandbox-session-x';
      }),
      c('rename', 'y', X, 'x'),
    ],
    [
      'rename between two non-session names',
      edited(RENAME_AWAY, (a) => {
        a.name = 'b';
        a.oldName = '/a';
      }),
      undefined,
    ],
    [
      'rename to a session name without oldName',
      edited(RENAME_AWAY, (a) => {
        a.name = 'sandbox-session-y';
        delete a.oldName;
      }),
      c('rename', 'y'),
    ],
    [
      'oldName is only read for rename',
      edited(START, (a) => {
        a.name = 'web';
        a.oldName = '/sandbox-session-x';
      }),
      undefined,
    ],
    [
      'a name with the prefix but an invalid session id',
      edited(START, (a) => {
        a.name = 'sandbox-session-.hidden';
      }),
      undefined,
    ],
    [
      'the bare prefix',
      edited(START, (a) => {
        a.name = 'sandbox-session-';
      }),
      undefined,
    ],
    [
      'the prefix in the middle of a name',
      edited(START, (a) => {
        a.name = 'not-a-sandbox-session-x';
      }),
      undefined,
    ],
    [
      'a leading slash in the name',
      edited(START, (a) => {
        a.name = '/sandbox-session-x';
      }),
      c('start', 'x'),
    ],
    [
      'no name attribute',
      edited(START, (a) => {
        delete a.name;
      }),
      undefined,
    ],
    [
      'a network event without the container attribute',
      edited(NETWORK_CONNECT, (a) => {
        delete a.container;
      }),
      undefined,
    ],
  ])('%s', (_case, message, event) => {
    expect(classifySessionEvent(message)).toEqual(event);
  });

  it.each<[string, DockerEventMessage]>([
    ['no Actor', { Type: 'container', Action: 'start' }],
    [
      'no Actor.ID',
      { Type: 'container', Action: 'start', Actor: { Attributes: { name: 'sandbox-session-x' } } },
    ],
    ['no Type', { Action: 'start', Actor: { ID: X, Attributes: { name: 'sandbox-session-x' } } }],
    [
      'an image event with a session-like name',
      { Type: 'image', Action: 'delete', Actor: { ID: X, Attributes: { name: 'sandbox-session-x' } } },
    ],
    [
      'an unwatched container action',
      {
        Type: 'container',
        Action: 'exec_start: sh',
        Actor: { ID: X, Attributes: { name: 'sandbox-session-x' } },
      },
    ],
    [
      'a health status',
      {
        Type: 'container',
        Action: 'health_status: healthy',
        Actor: { ID: X, Attributes: { name: 'sandbox-session-x' } },
      },
    ],
    [
      'a network action other than connect/disconnect',
      { Type: 'network', Action: 'create', Actor: { ID: X, Attributes: { container: X } } },
    ],
    ['an empty object', {}],
  ])('ignores %s', (_case, message) => {
    expect(classifySessionEvent(message)).toBeUndefined();
  });
});

describe('createJsonLineDecoder', () => {
  const stream = `${recorded.all.join('\n')}\n`;

  it('decodes the recorded stream in one chunk', () => {
    expect(createJsonLineDecoder()(stream)).toEqual(messages);
  });

  it.each([1, 2, 7, 64, 333, 1024, 4096])(
    'decodes the recorded stream cut into %i-character chunks',
    (size) => {
      const decode = createJsonLineDecoder();
      const out: unknown[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...decode(stream.slice(i, i + size)));
      expect(out).toEqual(messages);
    },
  );

  it.each<[string, string[], unknown[]]>([
    ['a message split mid-way', ['{"a":', '1}\n'], [{ a: 1 }]],
    ['several messages in one chunk', ['{"a":1}\n{"a":2}\n{"a":3}\n'], [{ a: 1 }, { a: 2 }, { a: 3 }]],
    ['a chunk ending inside the second message', ['{"a":1}\n{"a"', ':2}\n'], [{ a: 1 }, { a: 2 }]],
    ['the newline alone in the next chunk', ['{"a":1}', '\n'], [{ a: 1 }]],
    ['blank and whitespace-only lines', ['\n\n{"a":1}\n  \n\t\n{"a":2}\n\n'], [{ a: 1 }, { a: 2 }]],
    ['CRLF line ends', ['{"a":1}\r\n{"a":2}\r\n'], [{ a: 1 }, { a: 2 }]],
    ['a last message without a newline is held back', ['{"a":1}\n{"a":2}'], [{ a: 1 }]],
    ['empty chunks', ['', '{"a":1}', '', '\n', ''], [{ a: 1 }]],
    ['multi-byte text split between characters', ['{"n":"h', 'é ✓ 日', '本"}\n'], [{ n: 'hé ✓ 日本' }]],
    ['an astral character split between its surrogates', ['{"n":"\ud83d', '\ude00"}\n'], [{ n: '😀' }]],
  ])('%s', (_case, chunks, expectedMessages) => {
    const onInvalid = vi.fn();
    const decode = createJsonLineDecoder(onInvalid);
    expect(chunks.flatMap((chunk) => decode(chunk))).toEqual(expectedMessages);
    expect(onInvalid).not.toHaveBeenCalled();
  });

  it('reports a broken line and goes on with the next ones', () => {
    const onInvalid = vi.fn();
    const decode = createJsonLineDecoder(onInvalid);
    expect(decode('{"a":1}\n{"a":\n')).toEqual([{ a: 1 }]);
    expect(decode('not json\n{"a":2}\n')).toEqual([{ a: 2 }]);
    expect(onInvalid.mock.calls).toEqual([['{"a":'], ['not json']]);
  });

  it('a broken line does not swallow the message after it in the same chunk', () => {
    const onInvalid = vi.fn();
    expect(createJsonLineDecoder(onInvalid)(`{oops\n${recorded.all[2]}\n`)).toEqual([messages[2]]);
    expect(onInvalid).toHaveBeenCalledWith('{oops');
  });

  it('works without an onInvalid callback', () => {
    expect(createJsonLineDecoder()('{\n{"a":1}\n')).toEqual([{ a: 1 }]);
  });

  it('keeps the multi-byte labels of a real event intact when the text is whole', () => {
    const [message] = createJsonLineDecoder()(`${recorded.all[2]}\n`) as DockerEventMessage[];
    expect(message?.Actor?.Attributes?.['sandbox.note']).toBe('héllo ✓ 日本');
  });

  // The decoder takes strings: the Buffer -> string step belongs to its caller. Decoding each Buffer chunk
  // on its own (chunk.toString()) corrupts a character cut by a chunk boundary; a StringDecoder does not.
  // event-subscription.test.ts checks what the subscription does with such chunks.
  it('a Buffer cut inside a character needs a StringDecoder before the decoder', () => {
    const bytes = Buffer.from(`${recorded.all[2]}\n`, 'utf8');
    const cut = bytes.indexOf(Buffer.from('é')) + 1;
    const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
    const note = (decoded: unknown[]) =>
      (decoded[0] as DockerEventMessage).Actor?.Attributes?.['sandbox.note'];

    const naive = createJsonLineDecoder();
    expect(note(chunks.flatMap((chunk) => naive(chunk.toString())))).toBe('h\ufffd\ufffdllo ✓ 日本');

    const utf8 = new StringDecoder('utf8');
    const careful = createJsonLineDecoder();
    expect(note(chunks.flatMap((chunk) => careful(utf8.write(chunk))))).toBe('héllo ✓ 日本');
  });
});
