import type { ContainerResolver, ResolvedContainer } from '@sandbox/error-contract';
import { createInMemoryRegistry, type PreviewRegistry } from '@sandbox/preview-registry';
import { describe, expect, it } from 'vitest';
import { createPreviewTargetResolver } from './target.js';

const running = (ip: string): ResolvedContainer => ({ ip, network: 'bridge', containerId: 'c', labels: {} });

/** A fake behind the ContainerResolver interface: fixed answers, `peek` only when asked for. */
function fakeResolver(answers: Record<string, ResolvedContainer>, withPeek = true): ContainerResolver {
  const resolver: ContainerResolver = {
    async resolve(sessionId) {
      const answer = answers[sessionId];
      if (!answer) throw new Error(`no container for ${sessionId}`);
      return answer;
    },
  };
  if (withPeek) resolver.peek = (sessionId) => answers[sessionId];
  return resolver;
}

describe('createPreviewTargetResolver: peek', () => {
  const registry = createInMemoryRegistry({
    initial: [
      { sessionId: 'up', port: 3000 },
      { sessionId: 'refused', port: 3000 },
      { sessionId: 'no-container', port: 3000 },
    ],
  });
  const targets = createPreviewTargetResolver({
    registry,
    resolver: fakeResolver({ up: running('172.17.0.2'), refused: running('127.0.0.1') }),
  });

  it('gives what resolve gives when both the registry and the resolver know it now', async () => {
    expect(targets.peek?.('up')).toEqual(await targets.resolve('up'));
    expect(targets.peek?.('up')).toEqual({ host: '172.17.0.2', port: 3000 });
  });

  it('leaves what only resolve can answer (and every error) to resolve', async () => {
    expect(targets.peek?.('nobody')).toBeUndefined();
    await expect(targets.resolve('nobody')).rejects.toMatchObject({ code: 'PREVIEW_NOT_REGISTERED' });
    await expect(targets.resolve('refused')).rejects.toMatchObject({ code: 'CONTAINER_ADDRESS_REFUSED' });
    expect(targets.peek?.('no-container')).toBeUndefined();
    await expect(targets.resolve('no-container')).rejects.toThrow('no container for no-container');
  });

  it('throws the refusal of a known address itself, so the lookup is counted once', () => {
    expect(() => targets.peek?.('refused')).toThrow(
      expect.objectContaining({ code: 'CONTAINER_ADDRESS_REFUSED', status: 500 }),
    );
  });

  it('without peek on the registry or the resolver, always leaves it to resolve', async () => {
    const { peek: _unused, ...asyncOnly } = registry;
    const noRegistryPeek = createPreviewTargetResolver({
      registry: asyncOnly as PreviewRegistry,
      resolver: fakeResolver({ up: running('172.17.0.2') }),
    });
    const noResolverPeek = createPreviewTargetResolver({
      registry,
      resolver: fakeResolver({ up: running('172.17.0.2') }, false),
    });
    for (const resolver of [noRegistryPeek, noResolverPeek]) {
      expect(resolver.peek?.('up')).toBeUndefined();
      await expect(resolver.resolve('up')).resolves.toEqual({ host: '172.17.0.2', port: 3000 });
    }
  });
});
