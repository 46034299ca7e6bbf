import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createUpstreamAddressPolicy, routeGateways } from './upstream-address.js';

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

describe('routeGateways', () => {
  it('reads the gateways of both routing tables, skipping direct routes', () => {
    const ipv4 = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    ].join('\n');
    const ipv6 = [
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0',
      'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0',
    ].join('\n');
    expect(routeGateways(ipv4, ipv6)).toEqual(['172.17.0.1', 'fe80:0000:0000:0000:0000:0000:0000:0001']);
  });

  it("refuses this machine's real default gateway", () => {
    const [gateway] = routeGateways(readFileSync('/proc/net/route', 'utf8'), '');
    if (gateway === undefined) throw new Error('this machine has no IPv4 default gateway to check against');
    expect(createUpstreamAddressPolicy({ networks: ['0.0.0.0/0'] })(gateway)).toBe(false);
  });
});
