import type { SessionContainerState } from '@sandbox/preview-registry';
import { portOf } from '@sandbox/preview-registry';
import type { Change, EntryKind, EntryValues } from './redis-state-codec.js';

/** An entry of a replica with the seq of the write that produced it; `value` undefined is a tombstone. */
export interface VersionedEntry<T> {
  seq: number;
  value: T | undefined;
}

/** A table of a replica: the registrations, the container states, or the engine state (id ''). */
export type ReplicaTable<K extends EntryKind> = Map<string, VersionedEntry<EntryValues[K]>>;

/** What a proxied request needs of a session: its active port and its container's state. */
export interface SessionView {
  port: number | undefined;
  /** Whether the active port was registered with `stripPrefix: false`. */
  keepPrefix: boolean;
  container: SessionContainerState | undefined;
}

/** A reader's replica of the store, with what it needs to order messages against snapshots. */
export interface Replica {
  tables: { [K in EntryKind]: ReplicaTable<K> };
  /**
   * Views of the sessions requests asked for, built from the two tables on first use and dropped when
   * either entry changes: a request then reads one object instead of two tables, which matters once
   * many sessions take turns and their entries are no longer in the CPU's caches.
   */
  views: Map<string, SessionView>;
  /** The seq of the last snapshot applied: a message at or below it is already part of the replica. */
  floor: number;
  /** The highest seq applied; a snapshot below it comes from a store that lost its data (or was flushed). */
  highest: number;
}

/** What one MULTI read from the store: every entry (with its seq), the store's seq, the writer marker. */
export interface Snapshot {
  seq: number;
  tables: { [K in EntryKind]: Map<string, { seq: number; value: EntryValues[K] }> };
  /** Whether a writer has pushed its full state to this store since it was last emptied. */
  writerSynced: boolean;
}

/** An empty replica. */
export function createReplica(): Replica {
  return {
    tables: { registration: new Map(), container: new Map(), engine: new Map() },
    views: new Map(),
    floor: 0,
    highest: 0,
  };
}

/** The live value of an entry, skipping tombstones. */
export function replicaValue<K extends EntryKind>(
  replica: Replica,
  kind: K,
  id: string,
): EntryValues[K] | undefined {
  return replica.tables[kind].get(id)?.value;
}

const NO_SESSION: SessionView = Object.freeze({ port: undefined, keepPrefix: false, container: undefined });

/**
 * A session's port and container state, as `replicaValue` gives them. Only sessions the replica knows
 * are kept, so ids nobody registered cannot grow the views.
 */
export function replicaSession(replica: Replica, id: string): SessionView {
  const kept = replica.views.get(id);
  if (kept !== undefined) return kept;
  const active = replicaValue(replica, 'registration', id)?.at(-1);
  const container = replicaValue(replica, 'container', id);
  if (active === undefined && container === undefined) return NO_SESSION;
  const view = {
    port: active === undefined ? undefined : portOf(active),
    keepPrefix: active !== undefined && typeof active !== 'number' && active.stripPrefix === false,
    container,
  };
  replica.views.set(id, view);
  return view;
}

/** Ids of the live entries of a table. */
export function replicaIds(replica: Replica, kind: EntryKind): string[] {
  const ids: string[] = [];
  for (const [id, entry] of replica.tables[kind]) if (entry.value !== undefined) ids.push(id);
  return ids;
}

/**
 * Applies one published change unless the replica already knows something as new: a change at or below
 * the last snapshot is in it, and one at or below the entry's own seq is older than what it holds.
 * `keepTombstone`: whether a snapshot taken before this change may still arrive; only then must a
 * deletion be remembered, so that the snapshot cannot bring the entry back. Returns whether it applied.
 */
export function applyChange(replica: Replica, change: Change, keepTombstone: boolean): boolean {
  const table = replica.tables[change.kind] as Map<string, VersionedEntry<unknown>>;
  const current = table.get(change.id);
  if (change.seq <= replica.floor || (current !== undefined && change.seq <= current.seq)) return false;
  if (change.value !== undefined || keepTombstone)
    table.set(change.id, { seq: change.seq, value: change.value });
  else table.delete(change.id);
  replica.views.delete(change.id);
  replica.highest = Math.max(replica.highest, change.seq);
  return true;
}

/**
 * Whether a reader should keep serving its cache rather than take this snapshot: the store holds no
 * full push of a writer (it was emptied, by a restart say) while the replica knows sessions. Taking it
 * would drop every route until the container-manager re-publishes; its `resync` message ends the wait.
 */
export function shouldAwaitWriter(replica: Replica, snapshot: Snapshot): boolean {
  if (snapshot.writerSynced) return false;
  return Object.values(replica.tables).some((table) =>
    [...table.values()].some((e) => e.value !== undefined),
  );
}

/**
 * Replaces the replica by a snapshot, except for entries (and deletions) newer than the snapshot, which
 * came by message after it was taken. A snapshot older than what the replica had seen when it was
 * requested (`highestWhenRequested`, the replica's `highest` then) means the store lost its data: seqs
 * started again, so nothing local can be compared with it and everything is replaced (the caller then
 * replays the messages received since the request). Messages arriving while the snapshot is in flight
 * legitimately carry higher seqs, hence the seq at request time rather than now. Tombstones the snapshot
 * covers are dropped. Returns which of the two it did.
 */
export function applySnapshot(
  replica: Replica,
  snapshot: Snapshot,
  highestWhenRequested: number,
): 'merged' | 'replaced' {
  const reset = snapshot.seq < highestWhenRequested;
  for (const kind of Object.keys(replica.tables) as EntryKind[]) {
    const local = replica.tables[kind] as Map<string, VersionedEntry<unknown>>;
    const next = new Map<string, VersionedEntry<unknown>>(snapshot.tables[kind]);
    if (!reset) for (const [id, entry] of local) if (entry.seq > snapshot.seq) next.set(id, entry);
    local.clear();
    for (const [id, entry] of next) local.set(id, entry);
  }
  replica.views.clear();
  replica.floor = snapshot.seq;
  replica.highest = reset ? snapshot.seq : Math.max(replica.highest, snapshot.seq);
  return reset ? 'replaced' : 'merged';
}

/** Forgets every deletion: once no older snapshot can arrive, a tombstone guards nothing. */
export function dropTombstones(replica: Replica): void {
  for (const table of Object.values(replica.tables)) {
    for (const [id, entry] of table) if (entry.value === undefined) table.delete(id);
  }
}
