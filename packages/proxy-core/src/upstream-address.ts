import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { type Network, parseIpAddress, parseNetwork } from './trusted-proxies.js';

/**
 * Where containers of a default Docker engine get their addresses: the private ranges (RFC 1918, RFC 6598
 * shared space, RFC 4193 unique-local). An address outside them is not a container's, whatever a registry
 * or a shared state says.
 */
export const DEFAULT_UPSTREAM_NETWORKS: readonly string[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  'fc00::/7',
];

// Never a container's address on any network, whatever is allowed: the proxy's own host (loopback,
// "this host"), link-local (cloud metadata endpoints live at 169.254.169.254), multicast and broadcast.
const NEVER = [
  '127.0.0.0/8',
  '0.0.0.0/8',
  '169.254.0.0/16',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::1/128',
  '::/128',
  'fe80::/10',
  'ff00::/8',
].map((entry) => parseNetwork(entry, 'built-in'));

const HOST_ADDRESSES_TTL_MS = 10_000;

/** Options of {@link createUpstreamAddressPolicy}. */
export interface UpstreamAddressPolicyOptions {
  /** Addresses and CIDRs a container may have. Default {@link DEFAULT_UPSTREAM_NETWORKS}. */
  networks?: readonly string[];
  /**
   * The host's own addresses, which are never forwarded to (a container's bridge gateway is one). Default:
   * every interface address of this network namespace and every gateway of its routing tables (in a
   * container, the host), read again at most every 10 s. A proxy run in a container cannot see the host's
   * other addresses: narrow `networks` to the preview network's subnet there.
   */
  hostAddresses?: () => Iterable<string>;
}

function inAny(value: bigint, networks: readonly Network[]): boolean {
  return networks.some(({ base, mask }) => (value & mask) === base);
}

/**
 * The gateways of the routing tables (`/proc/net/route`, `/proc/net/ipv6_route` text): run in a container,
 * the proxy's own interfaces do not include the host, but its default gateway is the host's address on the
 * container's network (Docker's bridge gateway).
 */
export function routeGateways(ipv4Table: string, ipv6Table: string): string[] {
  const gateways = new Set<string>();
  for (const line of ipv4Table.split('\n').slice(1)) {
    const hex = line.trim().split(/\s+/)[2];
    if (hex === undefined || !/^[0-9A-Fa-f]{8}$/.test(hex) || /^0+$/.test(hex)) continue;
    // Host byte order (little-endian): 010200C0 is 192.0.2.1.
    const octets = [6, 4, 2, 0].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
    gateways.add(octets.join('.'));
  }
  for (const line of ipv6Table.split('\n')) {
    const hex = line.trim().split(/\s+/)[4];
    if (hex === undefined || !/^[0-9a-f]{32}$/i.test(hex) || /^0+$/.test(hex)) continue;
    gateways.add((hex.match(/.{4}/g) ?? []).join(':'));
  }
  return [...gateways];
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function localHostAddresses(): string[] {
  const interfaces = Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).map((entry) => entry.address),
  );
  return [
    ...interfaces,
    ...routeGateways(readOrEmpty('/proc/net/route'), readOrEmpty('/proc/net/ipv6_route')),
  ];
}

/**
 * Whether an address may be forwarded to: an IP literal inside the allowed networks, and never loopback,
 * unspecified, link-local, multicast, broadcast or one of the host's own addresses. Throws at creation on
 * an invalid network entry. Verdicts are cached per address (containers are few), and the cache is
 * dropped whenever the host's addresses are read again.
 */
export function createUpstreamAddressPolicy({
  networks = DEFAULT_UPSTREAM_NETWORKS,
  hostAddresses = localHostAddresses,
}: UpstreamAddressPolicyOptions = {}): (address: string) => boolean {
  const allowed = networks.map((entry) => parseNetwork(entry, 'upstream network'));
  let host = new Set<bigint>();
  let readAt = Number.NEGATIVE_INFINITY;
  const verdicts = new Map<string, boolean>();
  const judge = (address: string): boolean => {
    // A zone would name an interface of this host, and a name could resolve anywhere.
    if (address.includes('%')) return false;
    const value = parseIpAddress(address);
    if (value === undefined) return false;
    return inAny(value, allowed) && !inAny(value, NEVER) && !host.has(value);
  };
  return (address) => {
    const now = performance.now();
    if (now - readAt > HOST_ADDRESSES_TTL_MS) {
      readAt = now;
      host = new Set();
      for (const own of hostAddresses()) {
        const value = parseIpAddress(own);
        if (value !== undefined) host.add(value);
      }
      verdicts.clear();
    }
    let verdict = verdicts.get(address);
    if (verdict === undefined) {
      verdict = judge(address);
      // Bounded: a shared state full of junk must not grow this without end.
      if (verdicts.size >= 10_000) verdicts.clear();
      verdicts.set(address, verdict);
    }
    return verdict;
  };
}
