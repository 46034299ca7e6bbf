import type { AccessRecord, AccessRecorder } from '@sandbox/preview-routes';

// Each preview's recent traffic, as its user sees it: the access records of the session's requests and
// WebSockets, in a bounded ring per session, read back or followed live (request-log-api.ts). Pure: no I/O,
// no timers. `record` runs once per request on the hot path: a map lookup and a slot assignment, and a
// call per live follower; the record object the access path already built is kept as it is.

/**
 * One request or WebSocket of a preview, as the request log returns it: its access record, without the
 * session (the log is the session's), numbered and timed.
 */
export interface RequestLogEntry extends Omit<AccessRecord, 'sessionId'> {
  /** 1 for the session's first entry, then one more for each: resume a follow after it. */
  seq: number;
  /** When it ended (ISO 8601). */
  time: string;
}

/** What a follower is told: each new entry, and the end when the log is closed. */
export interface RequestLogFollower {
  entry(entry: RequestLogEntry): void;
  end(): void;
}

/** Options of {@link createRequestLog}. */
export interface RequestLogOptions {
  /** Entries kept per session (the oldest go first). Default 100. */
  perSession?: number;
  /**
   * Sessions with a log (the one written to least recently goes first, unless followed). Default 500.
   * The two bounds bound the memory: about 0.5 KiB per entry.
   */
  maxSessions?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** The request logs of a service's previews. */
export interface RequestLog {
  readonly perSession: number;
  readonly maxSessions: number;
  /**
   * Records an access record of a session that has a log, or that reached one of its ports (it then gets
   * one); a record without a session (the internal API's own requests, say) is not kept. Never throws.
   */
  record: AccessRecorder;
  /** Gives a session a log (a registration does): its errors before any request got through are kept. */
  open(sessionId: string): void;
  /** The session's entries after `after` (a `seq`), oldest first; empty when it has no log. */
  entries(sessionId: string, after?: number): RequestLogEntry[];
  /**
   * Calls `follower` with each entry recorded from now on until the returned function is called (or the log
   * is closed). Opens the session's log.
   */
  follow(sessionId: string, follower: RequestLogFollower): () => void;
  /** Ends every follower; records are still kept. */
  close(): void;
}

interface Stored {
  seq: number;
  at: number;
  record: AccessRecord;
}

interface Ring {
  items: (Stored | undefined)[];
  /** The last seq given; the entry of seq n is at (n - 1) % perSession. */
  seq: number;
  followers: Set<RequestLogFollower> | undefined;
}

/** Longest path an entry keeps; a longer one is cut there and ends with `…`. */
export const REQUEST_LOG_MAX_PATH = 1024;

// A record whose path is longer than an entry keeps, with the path cut: anyone may send a 16 KiB path, and
// 50,000 of them would be 800 MiB. Copied through a buffer, since a slice of a string can keep the whole.
function bounded(record: AccessRecord): AccessRecord {
  if (record.path.length <= REQUEST_LOG_MAX_PATH) return record;
  const cut = Buffer.from(`${record.path.slice(0, REQUEST_LOG_MAX_PATH)}…`, 'utf8').toString('utf8');
  return { ...record, path: cut };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

function toEntry({ seq, at, record }: Stored): RequestLogEntry {
  const { sessionId: _session, ...fields } = record;
  return { seq, time: new Date(at).toISOString(), ...fields };
}

/** A request log per session, bounded in entries per session and in sessions. */
export function createRequestLog(options: RequestLogOptions = {}): RequestLog {
  const perSession = positiveInteger('perSession', options.perSession ?? 100);
  const maxSessions = positiveInteger('maxSessions', options.maxSessions ?? 500);
  const now = options.now ?? Date.now;
  // In the order of their last write (Map keeps insertion order): the first is the one to evict.
  const rings = new Map<string, Ring>();
  let lastWritten: Ring | undefined;

  function ringOf(sessionId: string): Ring {
    const found = rings.get(sessionId);
    if (found !== undefined) return found;
    if (rings.size >= maxSessions) {
      // The least recently written log that nobody follows; a followed one stays while it is watched.
      for (const [id, ring] of rings) {
        if (ring.followers !== undefined) continue;
        rings.delete(id);
        if (lastWritten === ring) lastWritten = undefined;
        break;
      }
    }
    const ring: Ring = { items: [], seq: 0, followers: undefined };
    rings.set(sessionId, ring);
    // The last written is no longer last in the map: its next write must move it there again.
    lastWritten = undefined;
    return ring;
  }

  function record(accessRecord: AccessRecord): void {
    const sessionId = accessRecord.sessionId;
    if (sessionId === undefined) return;
    let ring = rings.get(sessionId);
    if (ring === undefined) {
      // A request that never reached a port of a session without a log (an unknown id, say) makes none:
      // anyone could otherwise push the real sessions' logs out with made-up ids.
      if (accessRecord.port === undefined) return;
      ring = ringOf(sessionId);
    } else if (ring !== lastWritten) {
      rings.delete(sessionId);
      rings.set(sessionId, ring);
    }
    lastWritten = ring;
    const stored: Stored = { seq: ++ring.seq, at: now(), record: bounded(accessRecord) };
    ring.items[(stored.seq - 1) % perSession] = stored;
    if (ring.followers === undefined) return;
    const entry = toEntry(stored);
    for (const follower of ring.followers) {
      try {
        follower.entry(entry);
      } catch {
        // A follower's failure is its own (its connection is gone); the request is not to suffer from it.
      }
    }
  }

  return {
    perSession,
    maxSessions,
    record,
    open(sessionId) {
      ringOf(sessionId);
    },
    entries(sessionId, after = 0) {
      const ring = rings.get(sessionId);
      if (ring === undefined) return [];
      // An `after` past the last seq comes from before a restart (seqs start again at 1): all of it is new.
      const from = after > ring.seq ? 0 : after;
      const first = Math.max(from + 1, ring.seq - perSession + 1, 1);
      const entries: RequestLogEntry[] = [];
      for (let seq = first; seq <= ring.seq; seq++) {
        const stored = ring.items[(seq - 1) % perSession];
        if (stored !== undefined) entries.push(toEntry(stored));
      }
      return entries;
    },
    follow(sessionId, follower) {
      const ring = ringOf(sessionId);
      ring.followers ??= new Set();
      ring.followers.add(follower);
      return () => {
        ring.followers?.delete(follower);
        if (ring.followers?.size === 0) ring.followers = undefined;
      };
    },
    close() {
      for (const ring of rings.values()) {
        const followers = ring.followers;
        ring.followers = undefined;
        if (followers) for (const follower of followers) follower.end();
      }
    },
  };
}

/** One recorder that calls each of those given, in order; `undefined` when none is given. */
export function combineRecorders(...recorders: (AccessRecorder | undefined)[]): AccessRecorder | undefined {
  const present = recorders.filter((recorder): recorder is AccessRecorder => recorder !== undefined);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return (record) => {
    for (const recorder of present) recorder(record);
  };
}
