import { describe, expect, it } from 'vitest';
import {
  childNameOf,
  fileTypeOfMode,
  parseContainerPath,
  parsePathStat,
  statOfTarEntry,
} from './file-paths.js';

describe('parseContainerPath', () => {
  it.each([
    ['/', '/'],
    ['/app', '/app'],
    ['/app/', '/app'],
    ['//app//src/./x.ts', '/app/src/x.ts'],
    ['/a b/ü.txt', '/a b/ü.txt'],
  ])('accepts %j as %j', (raw, parsed) => {
    expect(parseContainerPath(raw)).toBe(parsed);
  });

  it.each([
    undefined,
    '',
    'app',
    './app',
    '/app/../etc',
    '/..',
    '/a/..',
    '/a\0b',
    ['/a'],
    `/${'a'.repeat(4096)}`,
  ])('refuses %j with INVALID_FILE_PATH', (raw) => {
    expect(() => parseContainerPath(raw)).toThrow(expect.objectContaining({ code: 'INVALID_FILE_PATH' }));
  });
});

describe('what Docker says of a path', () => {
  it.each([
    [0o644, 'file'],
    [2 ** 31 + 0o755, 'directory'],
    [2 ** 27 + 0o777, 'symlink'],
    [2 ** 26 + 2 ** 21 + 0o666, 'other'],
    [2 ** 25 + 0o600, 'other'],
  ])('mode %i is a %s', (mode, type) => {
    expect(fileTypeOfMode(mode)).toBe(type);
  });

  it('reads the stat header', () => {
    const header = Buffer.from(
      JSON.stringify({
        name: 'link',
        size: 8,
        mode: 134218239,
        mtime: '2026-12-05T07:23:17.01Z',
        linkTarget: '/d/a',
      }),
    ).toString('base64');
    expect(parsePathStat('/d/link', header)).toEqual({
      path: '/d/link',
      name: 'link',
      type: 'symlink',
      size: 8,
      mode: '0777',
      modifiedAt: '2026-12-05T07:23:17.010Z',
      linkTarget: '/d/a',
    });
  });

  it('names the direct children of a directory archive, for a named directory and for the root', () => {
    expect(childNameOf('app/', 'app/')).toBeUndefined();
    expect(childNameOf('app/', 'app/x.ts')).toBe('x.ts');
    expect(childNameOf('app/', 'app/src/')).toBe('src');
    expect(childNameOf('app/', 'app/src/deep.ts')).toBeUndefined();
    expect(childNameOf('app/', 'application/x')).toBeUndefined();
    expect(childNameOf('/', '/bin/')).toBe('bin');
    expect(childNameOf('/', '/bin/sh')).toBeUndefined();
  });

  it('describes a tar entry', () => {
    const mtime = new Date('2026-01-01T00:00:00Z');
    expect(statOfTarEntry('/', 'x', { type: 'file', size: 3, mode: 0o100644, mtime })).toEqual({
      path: '/x',
      name: 'x',
      type: 'file',
      size: 3,
      mode: '0644',
      modifiedAt: '2026-01-01T00:00:00.000Z',
    });
    expect(
      statOfTarEntry('/d', 'l', { type: 'symlink', size: 0, mode: 0o777, linkname: '/t' }),
    ).toMatchObject({
      path: '/d/l',
      type: 'symlink',
      linkTarget: '/t',
    });
    expect(statOfTarEntry('/d', 'p', { type: 'fifo' }).type).toBe('other');
  });
});
