import { isIPv4 } from 'node:net';

/** One entry of `NetworkSettings.Networks`: only the fields the resolver reads. */
export interface ContainerInspectNetwork {
  IPAddress?: string | null | undefined;
  NetworkID?: string | null | undefined;
}

/** An address the container can be reached at, and the network it is on. */
export interface NetworkAddress {
  network: string;
  ip: string;
}

/**
 * Picks the network to reach a container on: the preferred one if it has an IPv4 address there, else the
 * first by name that has one. Sorting by name (code units, not locale) keeps the choice stable across
 * engines and reconnects instead of depending on the map's order.
 */
export function selectNetworkAddress(
  networks: Readonly<Record<string, ContainerInspectNetwork>>,
  preferred?: string,
): NetworkAddress | undefined {
  const ipOn = (name: string): string | undefined => {
    const ip = Object.hasOwn(networks, name) ? networks[name]?.IPAddress : undefined;
    return typeof ip === 'string' && isIPv4(ip) ? ip : undefined;
  };
  if (preferred !== undefined) {
    const ip = ipOn(preferred);
    if (ip !== undefined) return { network: preferred, ip };
  }
  const names = Object.keys(networks).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const network of names) {
    const ip = ipOn(network);
    if (ip !== undefined) return { network, ip };
  }
  return undefined;
}
