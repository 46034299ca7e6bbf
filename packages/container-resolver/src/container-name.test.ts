import { isPreviewError } from '@sandbox/error-contract';
import { describe, expect, it } from 'vitest';
import { containerNameFor } from './container-name.js';

describe('containerNameFor', () => {
  it.each([
    ['abc', 'sandbox-session-abc'],
    ['A1', 'sandbox-session-A1'],
    ['s_1.2-3', 'sandbox-session-s_1.2-3'],
    ['a'.repeat(128), `sandbox-session-${'a'.repeat(128)}`],
  ])('names session %s', (sessionId, expected) => {
    expect(containerNameFor(sessionId)).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['leading dash', '-abc'],
    ['leading dot', '.abc'],
    ['path traversal', '../etc'],
    ['slash', 'a/b'],
    ['space', 'a b'],
    ['query', 'a?x=1'],
    ['too long', 'a'.repeat(129)],
    ['unicode', 'café'],
  ])('rejects an invalid id (%s) with INVALID_SESSION_ID', (_case, sessionId) => {
    let thrown: unknown;
    try {
      containerNameFor(sessionId);
    } catch (error) {
      thrown = error;
    }
    expect(isPreviewError(thrown)).toBe(true);
    expect(thrown).toMatchObject({ code: 'INVALID_SESSION_ID', status: 400 });
  });
});
