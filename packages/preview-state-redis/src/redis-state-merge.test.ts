import type { StoredPort } from '@sandbox/preview-registry';
import { describe, expect, it } from 'vitest';
import type { Change, EntryKind, EntryValues } from './redis-state-codec.js';
import {
  applyChange,
  applySnapshot,
  createReplica,
  dropTombstones,
  type Replica,
  replicaIds,
  replicaSession,
  replicaValue,
  type Snapshot,
  shouldAwaitWriter,
} from './redis-state-merge.js';

const reg = (id: string, seq: number, value: StoredPort[] | undefined): Change => ({
  kind: 'registration',
  id,
  seq,
  value,
});

function snapshot(
  seq: number,
  registrations: Record<string, [number, number[]]> = {},
  extra: Partial<{ [K in EntryKind]: Record<string, [number, EntryValues[K]]> }> = {},
  writerSynced = true,
): Snapshot {
  const table = <T>(entries: Record<string, [number, T]> = {}) =>
    new Map(Object.entries(entries).map(([id, [s, value]]) => [id, { seq: s, value }]));
  return {
    seq,
    tables: {
      registration: table(registrations),
      container: table(extra.container),
      engine: table(extra.engine),
    },
    writerSynced,
  };
}

function replicaWith(...changes: Change[]): Replica {
  const replica = createReplica();
  for (const change of changes) applyChange(replica, change, false);
  return replica;
}

describe('applyChange', () => {
  it('applies changes in seq order and ignores older or repeated ones', () => {
    const replica = createReplica();
    expect(applyChange(replica, reg('a', 2, [3000]), false)).toBe(true);
    expect(applyChange(replica, reg('a', 1, [1111]), false)).toBe(false);
    expect(applyChange(replica, reg('a', 2, [2222]), false)).toBe(false);
    expect(replicaValue(replica, 'registration', 'a')).toEqual([3000]);
    expect(applyChange(replica, reg('a', 3, [3000, 4000]), false)).toBe(true);
    expect(replicaValue(replica, 'registration', 'a')).toEqual([3000, 4000]);
    expect(replica.highest).toBe(3);
  });

  it('ignores changes the last snapshot already contains', () => {
    const replica = createReplica();
    applySnapshot(replica, snapshot(10), 0);
    // Published at seq 7, before the snapshot: the snapshot, which lacks it, knows better (it was deleted).
    expect(applyChange(replica, reg('a', 7, [3000]), false)).toBe(false);
    expect(replicaValue(replica, 'registration', 'a')).toBeUndefined();
  });

  it('keeps a deletion as a tombstone only while an older snapshot may still arrive', () => {
    const kept = replicaWith(reg('a', 1, [3000]));
    applyChange(kept, reg('a', 2, undefined), true);
    expect(kept.tables.registration.get('a')).toEqual({ seq: 2, value: undefined });
    expect(replicaIds(kept, 'registration')).toEqual([]);
    dropTombstones(kept);
    expect(kept.tables.registration.size).toBe(0);

    const gone = replicaWith(reg('a', 1, [3000]));
    applyChange(gone, reg('a', 2, undefined), false);
    expect(gone.tables.registration.size).toBe(0);
  });
});

describe('applySnapshot', () => {
  it('never lets a snapshot overwrite a newer message, a deletion included', () => {
    const replica = replicaWith(reg('old', 1, [1000]), reg('other', 2, [2000]));
    // Requested at highest 2; meanwhile messages 6 (a new port) and 7 (a deletion) arrive first.
    applyChange(replica, reg('new', 6, [6000]), true);
    applyChange(replica, reg('other', 7, undefined), true);
    const how = applySnapshot(replica, snapshot(5, { old: [1, [1000]], other: [4, [2000, 2001]] }), 2);
    expect(how).toBe('merged');
    expect(replicaValue(replica, 'registration', 'new')).toEqual([6000]);
    expect(replicaValue(replica, 'registration', 'other')).toBeUndefined();
    expect(replicaValue(replica, 'registration', 'old')).toEqual([1000]);
    expect(replica.floor).toBe(5);
  });

  it('replaces everything at or below its seq, deletions included', () => {
    const replica = replicaWith(reg('a', 1, [3000]), reg('b', 2, [4000]));
    applySnapshot(
      replica,
      snapshot(9, { b: [8, [4001]] }, { container: { b: [9, { state: 'no-ip' }] }, engine: {} }),
      2,
    );
    expect(replicaIds(replica, 'registration')).toEqual(['b']);
    expect(replicaValue(replica, 'registration', 'b')).toEqual([4001]);
    expect(replicaValue(replica, 'container', 'b')).toEqual({ state: 'no-ip' });
  });

  it('drops the tombstones it covers and keeps newer ones', () => {
    const replica = replicaWith(reg('a', 1, [3000]), reg('b', 2, [4000]));
    applyChange(replica, reg('a', 3, undefined), true);
    applyChange(replica, reg('b', 8, undefined), true);
    applySnapshot(replica, snapshot(5, { b: [2, [4000]] }), 2);
    expect(replica.tables.registration.has('a')).toBe(false);
    expect(replica.tables.registration.get('b')).toEqual({ seq: 8, value: undefined });
  });

  it('replaces everything when the store lost its data (its seq went back)', () => {
    const replica = replicaWith(reg('a', 40, [3000]), reg('b', 41, [4000]));
    // A restarted, refilled store: seqs started again, so 'b' at 41 is not newer than this snapshot.
    const how = applySnapshot(replica, snapshot(3, { a: [1, [3000]], c: [2, [5000]] }), 41);
    expect(how).toBe('replaced');
    expect(replicaIds(replica, 'registration').sort()).toEqual(['a', 'c']);
    expect(replica.highest).toBe(3);
    // Messages of the new store now apply.
    expect(applyChange(replica, reg('b', 4, [4000]), false)).toBe(true);
  });

  it('compares with the seq seen when it was requested, not with messages that overtook it', () => {
    const replica = replicaWith(reg('a', 4, [3000]));
    applyChange(replica, reg('b', 12, [4000]), true);
    expect(applySnapshot(replica, snapshot(10, { a: [4, [3000]] }), 4)).toBe('merged');
    expect(replicaIds(replica, 'registration').sort()).toEqual(['a', 'b']);
  });
});

describe('shouldAwaitWriter', () => {
  it('waits only with a cache to serve and a store no writer has refilled', () => {
    const empty = createReplica();
    const known = replicaWith(reg('a', 3, [3000]));
    expect(shouldAwaitWriter(empty, snapshot(0, {}, {}, false))).toBe(false);
    expect(shouldAwaitWriter(known, snapshot(0, {}, {}, false))).toBe(true);
    expect(shouldAwaitWriter(known, snapshot(0, {}, {}, true))).toBe(false);
  });
});

describe('replicaSession', () => {
  const running = (ip: string): Change => ({
    kind: 'container',
    id: 'a',
    seq: 0,
    value: { state: 'running', ip, network: 'bridge' },
  });
  const container = (seq: number, ip: string): Change => ({ ...running(ip), seq });

  it('answers what the two tables hold, and follows every change to either', () => {
    const replica = replicaWith(reg('a', 1, [3000]), container(2, '172.17.0.2'));
    expect(replicaSession(replica, 'a')).toEqual({
      port: 3000,
      keepPrefix: false,
      container: { state: 'running', ip: '172.17.0.2', network: 'bridge' },
    });
    // A port registered with stripPrefix: false keeps the prefix while it is the active one.
    applyChange(replica, reg('a', 3, [3000, { port: 4000, stripPrefix: false }]), false);
    expect(replicaSession(replica, 'a')).toMatchObject({ port: 4000, keepPrefix: true });
    applyChange(replica, reg('a', 4, [3000, 4000]), false);
    expect(replicaSession(replica, 'a')).toMatchObject({ port: 4000, keepPrefix: false });
    // A private port that strips the prefix is an object too: it still strips.
    const privateReplica = replicaWith(
      reg('b', 1, [{ port: 4000, visibility: 'private', tokensNotBefore: 1 }]),
    );
    expect(replicaSession(privateReplica, 'b')).toMatchObject({ port: 4000, keepPrefix: false });
    const kept = {
      port: 4000,
      stripPrefix: false as const,
      visibility: 'private' as const,
      tokensNotBefore: 1,
    };
    applyChange(privateReplica, reg('b', 2, [kept]), false);
    expect(replicaSession(privateReplica, 'b')).toMatchObject({ port: 4000, keepPrefix: true });
    applyChange(replica, container(5, '172.17.0.3'), false);
    expect(replicaSession(replica, 'a').container).toMatchObject({ ip: '172.17.0.3' });
    // An older change is ignored by the table, and so by the view.
    applyChange(replica, reg('a', 2, [5000]), false);
    expect(replicaSession(replica, 'a').port).toBe(4000);
    applyChange(replica, reg('a', 6, undefined), false);
    expect(replicaSession(replica, 'a').port).toBeUndefined();
    for (const id of ['a', 'b'])
      expect(replicaSession(replica, id)).toEqual({
        port: replicaValue(replica, 'registration', id)?.at(-1),
        keepPrefix: false,
        container: replicaValue(replica, 'container', id),
      });
  });

  it('follows a snapshot, merged or replacing', () => {
    const replica = replicaWith(reg('a', 1, [3000]));
    expect(replicaSession(replica, 'a').port).toBe(3000);
    applySnapshot(replica, snapshot(5, { a: [4, [3001]] }), replica.highest);
    expect(replicaSession(replica, 'a').port).toBe(3001);
    applySnapshot(replica, snapshot(1, {}), 5);
    expect(replicaSession(replica, 'a').port).toBeUndefined();
  });

  it('keeps no view of a session the replica does not know', () => {
    const replica = replicaWith(reg('a', 1, [3000]));
    for (let i = 0; i < 100; i++) expect(replicaSession(replica, `nobody-${i}`).port).toBeUndefined();
    replicaSession(replica, 'a');
    expect(replica.views.size).toBe(1);
  });
});
