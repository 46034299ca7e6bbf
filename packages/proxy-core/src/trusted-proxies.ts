// Addresses are compared as 128-bit integers in one IPv6 space, IPv4 placed at ::ffff:0:0/96 (RFC 4291
// 2.5.5.2): a dual-stack socket reports an IPv4 peer as `::ffff:127.0.0.1`, and a trust list written with
// `127.0.0.1` (or `::ffff:127.0.0.1`) must match it either way.
const IPV4_MAPPED_BASE = 0xffffn << 32n;
const IPV4_MAPPED_PREFIX = 96;

/** A network in the shared 128-bit space: an address is in it when `(address & mask) === base`. */
export interface Network {
  base: bigint;
  mask: bigint;
}

const DECIMAL_OCTET = /^(0|[1-9]\d{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

// Leading zeros are refused: some parsers read `010` as octal (8), so such an entry has no single meaning.
function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

function parseGroups(text: string): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (const [index, part] of parts.entries()) {
    // An embedded dotted IPv4 address may only close the address (`::ffff:1.2.3.4`).
    if (index === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else if (HEX_GROUP.test(part)) {
      groups.push(Number.parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const [headText = '', tailText] = halves;
  // Only the tail may end with an embedded IPv4 when `::` splits the address.
  if (tailText !== undefined && headText.includes('.')) return undefined;
  const head = parseGroups(headText);
  const tail = tailText === undefined ? [] : parseGroups(tailText);
  if (!head || !tail) return undefined;
  const explicit = head.length + tail.length;
  if (tailText === undefined ? explicit !== 8 : explicit > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...tail];
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/** Parses an IPv4 or IPv6 address (zone id ignored) into the shared 128-bit space; `undefined` if invalid. */
export function parseIpAddress(address: string): bigint | undefined {
  // A zone (`fe80::1%eth0`) names the local interface, not part of the peer's identity for trust purposes.
  const zoneAt = address.indexOf('%');
  const bare = zoneAt === -1 ? address : address.slice(0, zoneAt);
  const v4 = parseIpv4(bare);
  if (v4 !== undefined) return IPV4_MAPPED_BASE | BigInt(v4);
  return bare.includes(':') ? parseIpv6(bare) : undefined;
}

/** The peer address as apps expect it: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) becomes `1.2.3.4`. */
export function normalizeRemoteAddress(address: string): string {
  // Only an IPv6 form starts with a colon; a plain IPv4 peer (the usual case) needs no regex per request.
  if (address.charCodeAt(0) !== 0x3a) return address;
  // The mapped form is an artifact of a dual-stack listening socket; the client really spoke IPv4.
  const match = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return match?.[1] !== undefined && parseIpv4(match[1]) !== undefined ? match[1] : address;
}

function maskOf(prefixLength: number): bigint {
  const hostBits = BigInt(128 - prefixLength);
  return ((1n << 128n) - 1n) ^ ((1n << hostBits) - 1n);
}

function invalidEntry(entry: string, reason: string, what: string): Error {
  return new Error(`Invalid ${what} entry ${JSON.stringify(entry)}: ${reason}`);
}

/** One address or CIDR, parsed; `what` names the list in the error thrown for an invalid entry. */
export function parseNetwork(entry: string, what: string): Network {
  const text = entry.trim();
  const slashAt = text.indexOf('/');
  const addressText = slashAt === -1 ? text : text.slice(0, slashAt);
  // A zone in configuration would silently match every interface (zones are ignored when matching).
  const address = addressText.includes('%') ? undefined : parseIpAddress(addressText);
  if (address === undefined) {
    throw invalidEntry(
      entry,
      'expected an IPv4 or IPv6 address, optionally followed by /prefix-length',
      what,
    );
  }
  const isV4 = parseIpv4(addressText) !== undefined;
  const maxLength = isV4 ? 32 : 128;
  let prefixLength = maxLength;
  if (slashAt !== -1) {
    const lengthText = text.slice(slashAt + 1);
    prefixLength = /^\d{1,3}$/.test(lengthText) ? Number(lengthText) : Number.NaN;
    if (!(prefixLength <= maxLength)) {
      throw invalidEntry(entry, `prefix length must be an integer from 0 to ${maxLength}`, what);
    }
  }
  const mask = maskOf(isV4 ? IPV4_MAPPED_PREFIX + prefixLength : prefixLength);
  // Host bits set in a CIDR (`10.0.0.1/8`) are tolerated and cleared, as most proxy configurations do.
  return { base: address & mask, mask };
}

/**
 * Parses a trust list (IPs and CIDRs, IPv4 and IPv6) once into a matcher for the direct peer's address.
 * Throws an Error naming the first invalid entry. An empty list trusts nobody.
 */
export function createTrustedProxyMatcher(list: readonly string[]): (address: string | undefined) => boolean {
  const networks = list.map((entry) => parseNetwork(entry, 'trusted proxy'));
  if (networks.length === 0) return () => false;
  return (address) => {
    if (address === undefined) return false;
    const value = parseIpAddress(address);
    if (value === undefined) return false;
    return networks.some(({ base, mask }) => (value & mask) === base);
  };
}
