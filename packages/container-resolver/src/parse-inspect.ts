import { previewNetworkFromLabels } from './labels.js';
import { type ContainerInspectNetwork, selectNetworkAddress } from './select-network.js';

/** Docker's container status strings (`State.Status`), in the engine's own spelling. */
export const CONTAINER_STATES = [
  'created',
  'running',
  'paused',
  'restarting',
  'removing',
  'exited',
  'dead',
] as const;

/** One of {@link CONTAINER_STATES}. */
export type ContainerState = (typeof CONTAINER_STATES)[number];

/**
 * The fields of Docker's `GET /containers/{id}/json` document this package reads. Structural, so both
 * dockerode's `ContainerInspectInfo` and a recorded JSON file fit; nullable where the engine sends `null`.
 */
export interface ContainerInspect {
  Id: string;
  Name?: string | null | undefined;
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    Dead?: boolean | undefined;
  };
  Config?: { Labels?: Readonly<Record<string, string>> | null | undefined } | null | undefined;
  NetworkSettings?:
    | { Networks?: Readonly<Record<string, ContainerInspectNetwork>> | null | undefined }
    | null
    | undefined;
}

/** What the resolver needs to know about a container, parsed from its inspect document. */
export interface ParsedContainer {
  /** Docker's status string. */
  state: ContainerState;
  /** True only when the process runs and is neither paused nor between restarts: it can take traffic. */
  running: boolean;
  /** IPv4 address on {@link ParsedContainer.network}; undefined with `--network none`/`host` or when stopped. */
  ip: string | undefined;
  /** Name of the network the address belongs to. */
  network: string | undefined;
  /** Full container id. */
  id: string;
  /** Container name without Docker's leading `/`. */
  name: string;
  /** Container labels (`Config.Labels`). */
  labels: Readonly<Record<string, string>>;
}

/** Options of {@link parseContainerInspect}. */
export interface ParseInspectOptions {
  /** Preferred network name (a container's `sandbox.preview.network` label wins over it). */
  network?: string | undefined;
}

function isContainerState(value: string): value is ContainerState {
  return (CONTAINER_STATES as readonly string[]).includes(value);
}

/**
 * Parses an inspect document into a {@link ParsedContainer}. Pure; throws only for a status outside
 * Docker's set, which means the engine speaks a dialect this code was not written for.
 */
export function parseContainerInspect(
  inspect: ContainerInspect,
  options: ParseInspectOptions = {},
): ParsedContainer {
  const { State: s } = inspect;
  if (!isContainerState(s.Status)) throw new Error(`Unknown container status "${s.Status}"`);
  const labels = { ...(inspect.Config?.Labels ?? {}) };
  // A container's own label beats the service-wide preference: it knows which of its networks serves.
  const preferred = previewNetworkFromLabels(labels) ?? options.network;
  const address = selectNetworkAddress(inspect.NetworkSettings?.Networks ?? {}, preferred);
  return {
    state: s.Status,
    running: s.Running && !s.Paused && !s.Restarting,
    ip: address?.ip,
    network: address?.network,
    id: inspect.Id,
    name: (inspect.Name ?? '').replace(/^\//, ''),
    labels,
  };
}
