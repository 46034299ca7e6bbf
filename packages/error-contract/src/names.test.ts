import { describe, expect, it } from 'vitest';
import { isPreviewError } from './errors.js';
import {
  CONTAINER_NAME_PREFIX,
  containerNameFor,
  isValidSessionId,
  previewPortSchema,
  sessionIdFromContainerName,
} from './names.js';

describe('the names the contract fixes', () => {
  it('names a session container sandbox-session-{id}, and reads the id back', () => {
    expect(CONTAINER_NAME_PREFIX).toBe('sandbox-session-');
    expect(containerNameFor('abc-1')).toBe('sandbox-session-abc-1');
    expect(sessionIdFromContainerName('/sandbox-session-abc-1')).toBe('abc-1');
    expect(sessionIdFromContainerName('sandbox-session-abc-1')).toBe('abc-1');
    expect(sessionIdFromContainerName('/other-abc')).toBeUndefined();
    expect(sessionIdFromContainerName('/sandbox-session--bad')).toBeUndefined();
  });

  it('refuses to build a name from an id outside the pattern (it goes into a Docker API path)', () => {
    for (const id of ['../x', 'a/b', '', '-a']) {
      let thrown: unknown;
      try {
        containerNameFor(id);
      } catch (error) {
        thrown = error;
      }
      expect(isPreviewError(thrown) && thrown.code).toBe('INVALID_SESSION_ID');
    }
  });

  it('validates session ids and ports as the contract says', () => {
    expect(isValidSessionId('a'.repeat(128))).toBe(true);
    expect(isValidSessionId('a'.repeat(129))).toBe(false);
    expect(previewPortSchema.safeParse(1024).success).toBe(true);
    expect(previewPortSchema.safeParse('3000').success).toBe(false);
  });
});
