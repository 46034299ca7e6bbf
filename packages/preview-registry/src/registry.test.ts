import { describe, expect, it } from 'vitest';
import { createInMemoryRegistry, withPortRegistered } from './registry.js';
import { isValidSessionId, previewPortSchema } from './schemas.js';

describe('createInMemoryRegistry', () => {
  it('registers, looks up and forgets; the last write wins', async () => {
    const registry = createInMemoryRegistry();
    expect(await registry.lookup('a')).toBeUndefined();
    expect(await registry.register('a', 3000)).toEqual({
      sessionId: 'a',
      port: 3000,
      stripPrefix: true,
      visibility: 'public',
    });
    await registry.register('a', 4000);
    expect(await registry.lookup('a')).toBe(4000);
    expect(await registry.unregister('a')).toBe(true);
    expect(await registry.unregister('a')).toBe(false);
    expect(await registry.lookup('a')).toBeUndefined();
  });

  it('keeps sessions apart and accepts initial registrations', async () => {
    const registry = createInMemoryRegistry({ initial: [{ sessionId: 'x', port: 5000 }] });
    await registry.register('y', 6000);
    expect(await registry.lookup('x')).toBe(5000);
    expect(await registry.lookup('y')).toBe(6000);
  });

  it('keeps several ports per session in registration order, the last one active', async () => {
    const registry = createInMemoryRegistry();
    await registry.register('a', 3000);
    await registry.register('a', 4000);
    expect(await registry.lookup('a')).toBe(4000);
    expect(await registry.ports('a')).toEqual([3000, 4000]);
    // Registering a known port again moves it to the end: it becomes the active one.
    await registry.register('a', 3000);
    expect(await registry.ports('a')).toEqual([4000, 3000]);
    expect(await registry.lookup('a')).toBe(3000);
  });

  it('peek answers now what lookup answers, before and after every write', async () => {
    const registry = createInMemoryRegistry({ initial: [{ sessionId: 'a', port: 3000 }] });
    const same = async (id: string) => expect(registry.peek?.(id)).toBe(await registry.lookup(id));
    await same('a');
    await same('nobody');
    await registry.register('a', 4000);
    await same('a');
    await registry.unregisterPort('a', 4000);
    await same('a');
    expect(registry.peek?.('a')).toBe(3000);
    await registry.unregister('a');
    await same('a');
    expect(registry.peek?.('constructor')).toBeUndefined();
  });

  it('unregisters one port; the most recent remaining one becomes active', async () => {
    const registry = createInMemoryRegistry({
      initial: [
        { sessionId: 'a', port: 3000 },
        { sessionId: 'a', port: 4000 },
        { sessionId: 'a', port: 5000 },
      ],
    });
    expect(await registry.unregisterPort('a', 5000)).toBe(true);
    expect(await registry.lookup('a')).toBe(4000);
    expect(await registry.unregisterPort('a', 3000)).toBe(true);
    expect(await registry.ports('a')).toEqual([4000]);
    expect(await registry.unregisterPort('a', 3000)).toBe(false);
    expect(await registry.unregisterPort('b', 3000)).toBe(false);
    expect(await registry.unregisterPort('a', 4000)).toBe(true);
    expect(await registry.lookup('a')).toBeUndefined();
    expect(await registry.ports('a')).toEqual([]);
    expect(await registry.unregister('a')).toBe(false);
  });

  it('hands out copies of the ports, never its own array', async () => {
    const registry = createInMemoryRegistry();
    await registry.register('a', 3000);
    (await registry.ports('a')).push(9999);
    expect(await registry.ports('a')).toEqual([3000]);
  });

  it('does not confuse prototype keys with sessions', async () => {
    const registry = createInMemoryRegistry();
    expect(await registry.lookup('constructor')).toBeUndefined();
    expect(await registry.lookup('__proto__')).toBeUndefined();
  });
});

describe('stripPrefix: false', () => {
  it('is kept per port, replaced by a new registration of the port, forgotten with it', async () => {
    const registry = createInMemoryRegistry();
    expect(registry.keepsPrefix('a', 3000)).toBe(false);
    expect(await registry.register('a', 3000, { stripPrefix: false })).toEqual({
      sessionId: 'a',
      port: 3000,
      stripPrefix: false,
      visibility: 'public',
    });
    expect(registry.keepsPrefix('a', 3000)).toBe(true);
    expect(await registry.lookup('a')).toBe(3000);
    await registry.register('a', 4000);
    expect(registry.keepsPrefix('a', 3000)).toBe(true);
    expect(registry.keepsPrefix('a', 4000)).toBe(false);
    expect(await registry.ports('a')).toEqual([3000, 4000]);
    // Registered again without the option, the port strips its prefix again (the last write wins).
    await registry.register('a', 3000);
    expect(registry.keepsPrefix('a', 3000)).toBe(false);
    await registry.register('a', 4000, { stripPrefix: false });
    expect(await registry.unregisterPort('a', 4000)).toBe(true);
    expect(registry.keepsPrefix('a', 4000)).toBe(false);
    expect(await registry.lookup('a')).toBe(3000);
    await registry.register('b', 5000, { stripPrefix: false });
    await registry.unregister('b');
    expect(registry.keepsPrefix('b', 5000)).toBe(false);
  });

  it('is taken from initial registrations', () => {
    const registry = createInMemoryRegistry({
      initial: [
        { sessionId: 'a', port: 3000, stripPrefix: false },
        { sessionId: 'a', port: 4000 },
      ],
    });
    expect(registry.keepsPrefix('a', 3000)).toBe(true);
    expect(registry.keepsPrefix('a', 4000)).toBe(false);
  });
});

describe('withPortRegistered', () => {
  it.each([
    [[], 3000, [3000]],
    [[3000], 4000, [3000, 4000]],
    [[3000, 4000], 3000, [4000, 3000]],
    [[3000, 4000], 4000, [3000, 4000]],
  ])('%j + %i -> %j', (ports, port, expected) => {
    const before = [...ports];
    expect(withPortRegistered(ports, port)).toEqual(expected);
    expect(ports).toEqual(before);
  });
});

describe('session ids', () => {
  it.each(['a', 'A1', 'abc-DEF_1.2', '0', 'a'.repeat(128)])('accepts %s', (id) => {
    expect(isValidSessionId(id)).toBe(true);
  });
  it.each(['', '-a', '_a', '.a', 'a/b', '..', 'a b', 'a%2Fb', 'a\u0000', 'é', 'a'.repeat(129), 'a\n'])(
    'rejects %j',
    (id) => {
      expect(isValidSessionId(id)).toBe(false);
    },
  );
  it('rejects non-strings', () => {
    expect(isValidSessionId(42)).toBe(false);
    expect(isValidSessionId(undefined)).toBe(false);
  });
});

describe('previewPortSchema', () => {
  it.each([1024, 3000, 65535])('accepts %i', (port) => {
    expect(previewPortSchema.safeParse(port).success).toBe(true);
  });
  it.each([1023, 65536, 0, -1, 3000.5, Number.NaN, Number.POSITIVE_INFINITY, '3000', null, true])(
    'rejects %p',
    (port) => {
      expect(previewPortSchema.safeParse(port).success).toBe(false);
    },
  );
});

describe('private ports', () => {
  it('a port is public unless registered private; a private one counts tokens from its registration', async () => {
    const registry = createInMemoryRegistry();
    const before = Date.now();
    await registry.register('abc', 3000);
    expect(await registry.register('abc', 4000, { visibility: 'private' })).toEqual({
      sessionId: 'abc',
      port: 4000,
      stripPrefix: true,
      visibility: 'private',
    });
    expect(registry.accessOf('abc', 3000)).toEqual({ visibility: 'public' });
    const access = registry.accessOf('abc', 4000);
    expect(access?.visibility === 'private' && access.tokensNotBefore).toBeGreaterThanOrEqual(before);
    expect(registry.accessOf('abc', 5000)).toBeUndefined();
    expect((await registry.registrations('abc')).map((r) => r.visibility)).toEqual(['public', 'private']);
  });

  it('registering a private port again keeps its tokens; revoking, or removing it, does not', async () => {
    const registry = createInMemoryRegistry();
    await registry.register('abc', 4000, { visibility: 'private' });
    const first = registry.accessOf('abc', 4000);
    await registry.register('abc', 4000, { visibility: 'private', stripPrefix: false });
    expect(registry.accessOf('abc', 4000)).toEqual(first);
    expect(registry.keepsPrefix('abc', 4000)).toBe(true);
    expect(await registry.revokeTokens('abc', 4000)).toBe(true);
    const revoked = registry.accessOf('abc', 4000);
    expect(revoked?.visibility === 'private' && first?.visibility === 'private').toBe(true);
    if (revoked?.visibility === 'private' && first?.visibility === 'private')
      expect(revoked.tokensNotBefore).toBeGreaterThan(first.tokensNotBefore);
    expect(await registry.revokeTokens('abc', 9999)).toBe(false);
    // Public in between: its tokens start over when it is private again.
    await registry.register('abc', 4000);
    expect(registry.accessOf('abc', 4000)).toEqual({ visibility: 'public' });
  });
});
