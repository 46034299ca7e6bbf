import { describe, expect, it } from 'vitest';
import { type ContainerInspectNetwork, selectNetworkAddress } from './select-network.js';

describe('selectNetworkAddress', () => {
  it.each<
    [
      string,
      Record<string, ContainerInspectNetwork>,
      string | undefined,
      { network: string; ip: string } | undefined,
    ]
  >([
    ['empty map', {}, undefined, undefined],
    ['empty address', { bridge: { IPAddress: '' } }, undefined, undefined],
    ['null address', { bridge: { IPAddress: null } }, undefined, undefined],
    ['not IPv4', { a: { IPAddress: 'fd00::2' }, b: { IPAddress: 'garbage' } }, undefined, undefined],
    [
      'skips empty, then by name',
      { z: { IPAddress: '10.0.0.3' }, a: { IPAddress: '' }, m: { IPAddress: '10.0.0.2' } },
      undefined,
      { network: 'm', ip: '10.0.0.2' },
    ],
    [
      'code-unit order, not locale',
      { b: { IPAddress: '10.0.0.1' }, B: { IPAddress: '10.0.0.2' } },
      undefined,
      { network: 'B', ip: '10.0.0.2' },
    ],
    [
      'preferred wins',
      { a: { IPAddress: '10.0.0.1' }, z: { IPAddress: '10.0.0.9' } },
      'z',
      { network: 'z', ip: '10.0.0.9' },
    ],
    [
      'preferred without address',
      { a: { IPAddress: '10.0.0.1' }, z: { IPAddress: '' } },
      'z',
      { network: 'a', ip: '10.0.0.1' },
    ],
    [
      'preferred names a prototype key',
      { a: { IPAddress: '10.0.0.1' } },
      'constructor',
      { network: 'a', ip: '10.0.0.1' },
    ],
  ])('%s', (_case, networks, preferred, expected) => {
    expect(selectNetworkAddress(networks, preferred)).toEqual(expected);
  });
});
