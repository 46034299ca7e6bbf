import { describe, expect, it } from 'vitest';
import { createTrustedProxyMatcher, normalizeRemoteAddress, parseIpAddress } from './trusted-proxies.js';

describe('parseIpAddress', () => {
  it.each<[string, bigint]>([
    ['0.0.0.0', 0xffff_0000_0000n],
    ['127.0.0.1', 0xffff_7f00_0001n],
    ['255.255.255.255', 0xffff_ffff_ffffn],
    ['::ffff:127.0.0.1', 0xffff_7f00_0001n],
    ['::FFFF:7f00:1', 0xffff_7f00_0001n],
    ['::', 0n],
    ['::1', 1n],
    ['1::', 1n << 112n],
    ['2001:db8::1', 0x2001_0db8_0000_0000_0000_0000_0000_0001n],
    ['2001:DB8:0:0:0:0:0:1', 0x2001_0db8_0000_0000_0000_0000_0000_0001n],
    ['1:2:3:4:5:6:7:8', 0x0001_0002_0003_0004_0005_0006_0007_0008n],
    ['1:2:3:4:5:6:1.2.3.4', 0x0001_0002_0003_0004_0005_0006_0102_0304n],
    ['::1.2.3.4', 0x0102_0304n],
    ['fe80::1%eth0', 0xfe80_0000_0000_0000_0000_0000_0000_0001n],
  ])('%s', (address, value) => {
    expect(parseIpAddress(address)).toBe(value);
  });

  it.each([
    '',
    'localhost',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '01.2.3.4',
    '1.2.3.-4',
    ' 1.2.3.4',
    '1.2.3.4:80',
    ':::',
    '1:::2',
    '1::2::3',
    ':1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4::5:6:7:8',
    '12345::',
    'g::1',
    '1.2.3.4::',
    '::1.2.3.4:5',
    '::1.2.3',
    '[::1]',
  ])('rejects %j', (address) => {
    expect(parseIpAddress(address)).toBeUndefined();
  });
});

describe('normalizeRemoteAddress', () => {
  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['::ffff:7f00:1', '::ffff:7f00:1'],
    ['::ffff:999.0.0.1', '::ffff:999.0.0.1'],
    ['fe80::1%eth0', 'fe80::1%eth0'],
  ])('%s -> %s', (address, expected) => {
    expect(normalizeRemoteAddress(address)).toBe(expected);
  });
});

describe('createTrustedProxyMatcher', () => {
  const cases: Array<[string, string[], string | undefined, boolean]> = [
    ['an exact IPv4', ['10.0.0.5'], '10.0.0.5', true],
    ['another IPv4', ['10.0.0.5'], '10.0.0.6', false],
    ['an IPv4 CIDR, inside', ['172.16.0.0/12'], '172.31.255.255', true],
    ['an IPv4 CIDR, just outside', ['172.16.0.0/12'], '172.32.0.0', false],
    ['an IPv4 CIDR, mapped peer', ['172.16.0.0/12'], '::ffff:172.17.0.1', true],
    ['a mapped entry, plain IPv4 peer', ['::ffff:127.0.0.1'], '127.0.0.1', true],
    ['a mapped entry, mapped peer', ['::ffff:127.0.0.1'], '::ffff:127.0.0.1', true],
    ['a mapped CIDR', ['::ffff:10.0.0.0/104'], '10.200.0.1', true],
    ['a /32', ['192.0.2.1/32'], '192.0.2.1', true],
    ['a /0 IPv4 trusts every IPv4', ['0.0.0.0/0'], '203.0.113.9', true],
    ['a /0 IPv4 does not trust IPv6', ['0.0.0.0/0'], '2001:db8::1', false],
    ['a /0 IPv6 trusts everything', ['::/0'], '203.0.113.9', true],
    ['host bits in a CIDR are cleared', ['10.0.0.1/8'], '10.9.9.9', true],
    ['an exact IPv6', ['::1'], '::1', true],
    ['an IPv6 written differently', ['2001:db8:0:0::1'], '2001:DB8::1', true],
    ['an IPv6 CIDR, inside', ['2001:db8::/32'], '2001:db8:ffff::1', true],
    ['an IPv6 CIDR, outside', ['2001:db8::/32'], '2001:db9::1', false],
    ['a link-local peer with a zone', ['fe80::/10'], 'fe80::1%eth0', true],
    ['IPv4 loopback is not ::1', ['127.0.0.1'], '::1', false],
    ['IPv4-compatible is not IPv4', ['127.0.0.1'], '::127.0.0.1', false],
    ['several entries', ['10.0.0.1', '::1', '192.168.0.0/16'], '192.168.4.4', true],
    ['spaces around an entry', [' 10.0.0.1 '], '10.0.0.1', true],
    ['an unknown peer', ['0.0.0.0/0', '::/0'], undefined, false],
    ['an unparsable peer', ['0.0.0.0/0', '::/0'], 'not-an-ip', false],
    ['an empty list', [], '127.0.0.1', false],
  ];
  it.each(cases)('%s: %j trusts %s -> %s', (_name, list, address, expected) => {
    expect(createTrustedProxyMatcher(list)(address)).toBe(expected);
  });

  it.each([
    ['', 'expected an IPv4 or IPv6 address'],
    ['localhost', 'expected an IPv4 or IPv6 address'],
    ['10.0.0.256', 'expected an IPv4 or IPv6 address'],
    ['010.0.0.1', 'expected an IPv4 or IPv6 address'],
    ['[::1]', 'expected an IPv4 or IPv6 address'],
    ['fe80::1%eth0', 'expected an IPv4 or IPv6 address'],
    ['10.0.0.0/33', 'prefix length must be an integer from 0 to 32'],
    ['10.0.0.0/', 'prefix length must be an integer from 0 to 32'],
    ['10.0.0.0/-1', 'prefix length must be an integer from 0 to 32'],
    ['10.0.0.0/8/8', 'prefix length must be an integer from 0 to 32'],
    ['10.0.0.0/ 8', 'prefix length must be an integer from 0 to 32'],
    ['::/129', 'prefix length must be an integer from 0 to 128'],
    ['::/1e2', 'prefix length must be an integer from 0 to 128'],
  ])('refuses %j, naming it', (entry, reason) => {
    expect(() => createTrustedProxyMatcher(['127.0.0.1', entry])).toThrow(
      `Invalid trusted proxy entry ${JSON.stringify(entry)}: ${reason}`,
    );
  });
});
