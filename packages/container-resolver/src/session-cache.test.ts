import { describe, expect, it } from 'vitest';
import type { ParsedContainer } from './parse-inspect.js';
import { type CachedContainer, createSessionCache, type SessionCache } from './session-cache.js';

function container(id: string, overrides: Partial<ParsedContainer> = {}): ParsedContainer {
  return {
    state: 'running',
    running: true,
    ip: '172.17.0.2',
    network: 'bridge',
    id,
    name: 'sandbox-session-s1',
    labels: {},
    ...overrides,
  };
}
const present = (id: string, overrides: Partial<ParsedContainer> = {}): CachedContainer => ({
  present: true,
  container: container(id, overrides),
});
const absent = (): CachedContainer => ({ present: false, cause: new Error('No such container') });

describe('createSessionCache', () => {
  it('starts empty', () => {
    const cache = createSessionCache();
    expect(cache.get('s1')).toBeUndefined();
    expect(cache.clock()).toBe(0);
    expect(cache.presentSessions()).toEqual([]);
    expect(cache.sessionOfContainer('A')).toBeUndefined();
  });

  it('stores and returns entries', () => {
    const cache = createSessionCache();
    const entry = present('A');
    expect(cache.store('s1', entry, cache.clock())).toBe(true);
    expect(cache.get('s1')).toBe(entry);
  });

  it('each touch advances the clock', () => {
    const cache = createSessionCache();
    cache.touch('s1');
    cache.touch('s2');
    cache.touch('s1');
    expect(cache.clock()).toBe(3);
  });

  it('reading the clock does not advance it', () => {
    const cache = createSessionCache();
    cache.clock();
    expect(cache.clock()).toBe(0);
  });

  /** Each step runs on the cache; `read` remembers the clock as a read would before asking Docker. */
  type Step =
    | { read: string }
    | { touch: string }
    | { store: string; entry: CachedContainer; readAt: string | 'now'; accepted: boolean };

  it.each<[string, Step[], Record<string, string | undefined>]>([
    [
      'a read that began after the last event is stored',
      [{ touch: 's1' }, { read: 'r' }, { store: 's1', entry: present('A'), readAt: 'r', accepted: true }],
      { s1: 'A' },
    ],
    [
      'a read older than an event of its session is discarded',
      [
        { store: 's1', entry: present('A'), readAt: 'now', accepted: true },
        { read: 'r' },
        { touch: 's1' },
        { store: 's1', entry: present('B'), readAt: 'r', accepted: false },
      ],
      { s1: 'A' },
    ],
    [
      'an older read is discarded even when nothing was stored yet',
      [{ read: 'r' }, { touch: 's1' }, { store: 's1', entry: present('A'), readAt: 'r', accepted: false }],
      { s1: undefined },
    ],
    [
      'an event of another session does not discard the read',
      [{ read: 'r' }, { touch: 's2' }, { store: 's1', entry: present('A'), readAt: 'r', accepted: true }],
      { s1: 'A' },
    ],
    [
      'a read that began after an event stores, a read older than a later event does not',
      [
        { touch: 's1' },
        { read: 'r1' },
        { touch: 's1' },
        { read: 'r2' },
        { store: 's1', entry: present('B'), readAt: 'r2', accepted: true },
        { store: 's1', entry: present('A'), readAt: 'r1', accepted: false },
      ],
      { s1: 'B' },
    ],
    [
      "the event's own write, at the clock just after its touch, is stored",
      [
        { store: 's1', entry: present('A'), readAt: 'now', accepted: true },
        { touch: 's1' },
        { store: 's1', entry: absent(), readAt: 'now', accepted: true },
      ],
      { s1: 'absent' },
    ],
    [
      'two reads begun at the same time: the later answer wins',
      [
        { read: 'r' },
        { store: 's1', entry: present('A'), readAt: 'r', accepted: true },
        { store: 's1', entry: present('B'), readAt: 'r', accepted: true },
      ],
      { s1: 'B' },
    ],
  ])('%s', (_case, steps, expected) => {
    const cache = createSessionCache();
    const reads = new Map<string, number>();
    for (const step of steps) {
      if ('read' in step) reads.set(step.read, cache.clock());
      else if ('touch' in step) cache.touch(step.touch);
      else {
        const readClock = step.readAt === 'now' ? cache.clock() : (reads.get(step.readAt) as number);
        expect(cache.store(step.store, step.entry, readClock)).toBe(step.accepted);
      }
    }
    for (const [sessionId, id] of Object.entries(expected)) {
      const entry = cache.get(sessionId);
      const seen = entry === undefined ? undefined : entry.present ? entry.container.id : 'absent';
      expect(seen).toBe(id);
    }
  });
});

describe('createSessionCache: container id index', () => {
  const now = (cache: SessionCache) => cache.clock();

  it('maps a stored container id to its session', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), now(cache));
    expect(cache.sessionOfContainer('A')).toBe('s1');
  });

  it('follows a change of container id (the session got a new container)', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), now(cache));
    cache.store('s1', present('B'), now(cache));
    expect(cache.sessionOfContainer('A')).toBeUndefined();
    expect(cache.sessionOfContainer('B')).toBe('s1');
  });

  it('forgets the id once the session is absent', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), now(cache));
    cache.store('s1', absent(), now(cache));
    expect(cache.sessionOfContainer('A')).toBeUndefined();
  });

  it('a discarded store leaves the index alone', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), now(cache));
    const readClock = now(cache);
    cache.touch('s1');
    expect(cache.store('s1', present('B'), readClock)).toBe(false);
    expect(cache.sessionOfContainer('A')).toBe('s1');
    expect(cache.sessionOfContainer('B')).toBeUndefined();
  });

  it('keeps the same id across a state change', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), now(cache));
    cache.store('s1', present('A', { state: 'exited', running: false, ip: undefined }), now(cache));
    expect(cache.sessionOfContainer('A')).toBe('s1');
  });

  // A rename moves a container from one session name to another; the two inspects may answer in any order.
  it.each([
    ['new session stored first', ['y', 'x']],
    ['old session stored first', ['x', 'y']],
  ])('a container renamed from session x to y ends up indexed under y (%s)', (_case, order) => {
    const cache = createSessionCache();
    cache.store('x', present('A'), now(cache));
    for (const sessionId of order) {
      cache.store(sessionId, sessionId === 'x' ? absent() : present('A'), now(cache));
    }
    expect(cache.sessionOfContainer('A')).toBe('y');
    expect(cache.get('x')?.present).toBe(false);
  });
});

describe('createSessionCache: presentSessions', () => {
  it('lists the sessions whose container is present, not the absent or untouched ones', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), cache.clock());
    cache.store('s2', present('B', { state: 'exited', running: false }), cache.clock());
    cache.store('s3', absent(), cache.clock());
    cache.touch('s4');
    expect(cache.presentSessions()).toEqual(['s1', 's2']);
  });

  it('drops a session whose container went away and lists it again when one comes back', () => {
    const cache = createSessionCache();
    cache.store('s1', present('A'), cache.clock());
    cache.store('s1', absent(), cache.clock());
    expect(cache.presentSessions()).toEqual([]);
    cache.store('s1', present('B'), cache.clock());
    expect(cache.presentSessions()).toEqual(['s1']);
  });
});
