import type { EngineState, SessionContainerState, StoredPort } from '@sandbox/preview-registry';
import { z } from 'zod';

/** The kinds of entries the shared state holds; the engine is a single entry, with the id ''. */
export type EntryKind = 'registration' | 'container' | 'engine';

/** The value type of each kind of entry. */
export interface EntryValues {
  registration: StoredPort[];
  container: SessionContainerState;
  engine: EngineState;
}

/** One change as the write scripts publish it: `value` undefined is a deletion. */
export type Change = {
  [K in EntryKind]: { kind: K; id: string; seq: number; value: EntryValues[K] | undefined };
}[EntryKind];

/**
 * A message on the changes channel: a change, or `resync`, which the writer sends after a full push,
 * telling readers to take a fresh snapshot (the store may have been emptied and refilled meanwhile).
 */
export type StoreMessage = Change | { kind: 'resync'; seq: number };

// Any TCP port: the registry's callers validate the range, so a reader must not be stricter than they are.
const tcpPortSchema = z.number().int().min(1).max(65535);
// `[3000, {"port":5173,"stripPrefix":false}, {"port":8888,"visibility":"private","tokensNotBefore":...}]`:
// a bare number is the default (public, the prefix stripped). A reader older than an option rejects the
// entry and skips it (its logs say so): a private port then answers 404 on that edge, never unguarded.
// Upgrade readers (edge proxies) before the writer when registrations use a new option.
const portEntrySchema = z
  .object({
    port: tcpPortSchema,
    stripPrefix: z.literal(false).exactOptional(),
    visibility: z.literal('private').exactOptional(),
    tokensNotBefore: z.number().int().nonnegative().exactOptional(),
  })
  .strict()
  // Only what differs from the default is spelled out: an entry that says nothing is not ours.
  .refine((entry) => entry.stripPrefix !== undefined || entry.visibility !== undefined, {
    message: 'a port with no option is stored as a bare number',
  })
  .refine((entry) => (entry.visibility === 'private') === (entry.tokensNotBefore !== undefined), {
    message: 'a private port has a tokensNotBefore, and only a private one',
  });
const portsSchema = z.array(z.union([tcpPortSchema, portEntrySchema])).min(1);

const containerStateSchema = z.discriminatedUnion('state', [
  z.object({
    state: z.literal('running'),
    ip: z.string(),
    network: z.string(),
    containerId: z.string().exactOptional(),
  }),
  z.object({ state: z.literal('no-ip') }),
  z.object({ state: z.literal('not-running') }),
  z.object({ state: z.literal('missing'), reason: z.string() }),
]);

const engineStateSchema = z.discriminatedUnion('connected', [
  z.object({ connected: z.literal(true) }),
  z.object({ connected: z.literal(false), reason: z.string() }),
]);

const valueSchemas = {
  registration: portsSchema,
  container: containerStateSchema,
  engine: engineStateSchema,
} satisfies { [K in EntryKind]: z.ZodType<EntryValues[K]> };

const seqSchema = z.number().int().nonnegative();

/** Thrown (and caught by the callers, which log and skip) for anything in Redis this code did not write. */
export class MalformedStoreDataError extends Error {
  override name = 'MalformedStoreDataError';
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MalformedStoreDataError(`${what}: not JSON`, { cause });
  }
}

function parseValue<K extends EntryKind>(kind: K, value: unknown, what: string): EntryValues[K] {
  const parsed = valueSchemas[kind].safeParse(value);
  if (!parsed.success) throw new MalformedStoreDataError(`${what}: ${parsed.error.message}`);
  return parsed.data as EntryValues[K];
}

/** A stored entry (`{"seq":n,"value":...}`, as the scripts write it) of a kind; throws MalformedStoreDataError. */
export function parseStoredEntry<K extends EntryKind>(
  kind: K,
  text: string,
): { seq: number; value: EntryValues[K] } {
  const what = `stored ${kind}`;
  const parsed = z.object({ seq: seqSchema, value: z.unknown() }).safeParse(parseJson(text, what));
  if (!parsed.success) throw new MalformedStoreDataError(`${what}: ${parsed.error.message}`);
  return { seq: parsed.data.seq, value: parseValue(kind, parsed.data.value, what) };
}

const messageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('resync'), seq: seqSchema }),
  z.object({
    kind: z.enum(['registration', 'container', 'engine']),
    id: z.string(),
    seq: seqSchema,
    value: z.unknown(),
  }),
]);

/** A message of the changes channel; throws MalformedStoreDataError. */
export function parseStoreMessage(text: string): StoreMessage {
  const parsed = messageSchema.safeParse(parseJson(text, 'message'));
  if (!parsed.success) throw new MalformedStoreDataError(`message: ${parsed.error.message}`);
  const message = parsed.data;
  if (message.kind === 'resync') return message;
  const { kind, id, seq } = message;
  // null is how the scripts spell a deletion.
  const value = message.value === null ? undefined : message.value;
  const what = `message ${kind} ${JSON.stringify(id)}`;
  switch (kind) {
    case 'registration':
      return { kind, id, seq, value: value === undefined ? undefined : parseValue(kind, value, what) };
    case 'container':
      return { kind, id, seq, value: value === undefined ? undefined : parseValue(kind, value, what) };
    case 'engine':
      return { kind, id, seq, value: value === undefined ? undefined : parseValue(kind, value, what) };
  }
}
