import { previewNetworkFromLabels } from './labels.js';
import { CONTAINER_STATES, type ContainerState, type ParsedContainer } from './parse-inspect.js';
import { type ContainerInspectNetwork, selectNetworkAddress } from './select-network.js';

/** One entry of Docker's `GET /containers/json` (list): only the fields read here. */
export interface ContainerListEntry {
  Id: string;
  Names?: readonly string[] | null | undefined;
  State?: string | null | undefined;
  Labels?: Readonly<Record<string, string>> | null | undefined;
  NetworkSettings?:
    | { Networks?: Readonly<Record<string, ContainerInspectNetwork>> | null | undefined }
    | null
    | undefined;
}

/**
 * The container's own name among a list entry's `Names`: legacy `--link` aliases appear there too, as
 * `/linker/alias`, and may come first.
 */
export function primaryContainerName(names: readonly string[] | null | undefined): string {
  const own = names?.find((name) => name.lastIndexOf('/') === 0) ?? names?.[0] ?? '';
  return own.replace(/^\//, '');
}

/**
 * Parses a list entry into the same {@link ParsedContainer} an inspect gives (pure). The list carries state,
 * labels and addresses, so one list call resyncs every session container without an inspect each.
 */
export function parseContainerListEntry(
  entry: ContainerListEntry,
  options: { network?: string | undefined } = {},
): ParsedContainer | undefined {
  const state = entry.State;
  if (typeof state !== 'string' || !(CONTAINER_STATES as readonly string[]).includes(state)) return undefined;
  const labels = { ...(entry.Labels ?? {}) };
  const preferred = previewNetworkFromLabels(labels) ?? options.network;
  const address = selectNetworkAddress(entry.NetworkSettings?.Networks ?? {}, preferred);
  return {
    state: state as ContainerState,
    // The list's State is 'paused' or 'restarting' for those cases, so 'running' alone means serving.
    running: state === 'running',
    ip: address?.ip,
    network: address?.network,
    id: entry.Id,
    name: primaryContainerName(entry.Names),
    labels,
  };
}
