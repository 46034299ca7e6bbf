import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { chooseUpstreamEngine, createPreviewProxy } from './proxy.js';
import { nativeUpstreamClientAvailable } from './upstream-client.js';

describe('chooseUpstreamEngine', () => {
  it('takes a given dispatcher first, then the configured engine', () => {
    const dispatcher = new Agent();
    expect(chooseUpstreamEngine('native', dispatcher)).toEqual({ engine: 'undici', reason: 'dispatcher' });
    expect(chooseUpstreamEngine('undici', undefined)).toEqual({ engine: 'undici', reason: 'configured' });
    expect(chooseUpstreamEngine('native', undefined)).toEqual({ engine: 'native', reason: 'configured' });
    void dispatcher.close();
  });

  it('defaults to the native client on a Node that has its parser, and says so', () => {
    // Every Node this package supports has it; a fallback would show as `native-unavailable`.
    expect(nativeUpstreamClientAvailable()).toBe(true);
    expect(chooseUpstreamEngine(undefined, undefined)).toEqual({ engine: 'native', reason: 'default' });
    expect(createPreviewProxy().upstream).toEqual({ engine: 'native', reason: 'default' });
    expect(createPreviewProxy({ engine: 'undici' }).upstream).toEqual({
      engine: 'undici',
      reason: 'configured',
    });
  });
});
