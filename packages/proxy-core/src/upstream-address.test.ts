import { describe, expect, it } from 'vitest';
import { createUpstreamAddressPolicy } from './upstream-address.js';

const policy = (options: Parameters<typeof createUpstreamAddressPolicy>[0] = {}) =>
  createUpstreamAddressPolicy({ hostAddresses: () => ['10.1.2.3', '172.17.0.1', 'fe80::1'], ...options });

describe('createUpstreamAddressPolicy', () => {
  it.each(['172.17.0.2', '172.31.255.254', '10.0.0.5', '192.168.1.9', '100.64.0.1', 'fd00::5'])(
    'allows the container address %s',
    (address) => {
      expect(policy()(address)).toBe(true);
    },
  );

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback, IPv4-mapped'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['fe80::2', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['10.1.2.3', "the host's own address"],
    ['172.17.0.1', "the host's bridge gateway"],
    ['::ffff:172.17.0.1', "the host's own, IPv4-mapped"],
    ['8.8.8.8', 'a public address'],
    ['2001:db8::1', 'a public IPv6 address'],
    ['localhost', 'a name'],
    ['172.17.0.2%eth0', 'a zoned address'],
    ['', 'empty'],
    ['172.17.0.256', 'not an address'],
  ])('refuses %s (%s)', (address) => {
    expect(policy()(address)).toBe(false);
  });

  it('never allows loopback or link-local, even inside an allowed network', () => {
    const everything = policy({ networks: ['0.0.0.0/0', '::/0'] });
    expect(everything('8.8.8.8')).toBe(true);
    expect(everything('127.0.0.1')).toBe(false);
    expect(everything('169.254.169.254')).toBe(false);
    expect(everything('10.1.2.3')).toBe(false);
  });

  it('keeps to the configured networks', () => {
    const only = policy({ networks: ['172.18.0.0/16'] });
    expect(only('172.18.0.7')).toBe(true);
    expect(only('172.17.0.7')).toBe(false);
  });

  it("reads the host's addresses again after 10 s, not on every call", () => {
    let reads = 0;
    const check = createUpstreamAddressPolicy({
      hostAddresses: () => {
        reads++;
        return [];
      },
    });
    for (let i = 0; i < 100; i++) check(`172.17.0.${i + 2}`);
    expect(reads).toBe(1);
  });

  it('throws on an invalid network entry, naming it', () => {
    expect(() => createUpstreamAddressPolicy({ networks: ['10.0.0.0/33'] })).toThrow(
      /Invalid upstream network entry "10.0.0.0\/33"/,
    );
  });

  it('reads the real interfaces by default, loopback among them', () => {
    expect(createUpstreamAddressPolicy({ networks: ['0.0.0.0/0'] })('127.0.0.1')).toBe(false);
  });
});
