import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ContainerInspect, type ContainerState, parseContainerInspect } from './parse-inspect.js';
import type { ContainerInspectNetwork } from './select-network.js';

// Documents recorded from a real engine by test/record-inspect.sh (dockerd 20.10, API 1.41).
type Recording =
  | 'bridge'
  | 'multi-network'
  | 'network-none'
  | 'network-host'
  | 'exited'
  | 'paused'
  | 'restarting'
  | 'created';

function recorded(name: Recording): ContainerInspect {
  return JSON.parse(readFileSync(new URL(`../test/recorded/${name}.json`, import.meta.url), 'utf8'));
}

function networksOf(doc: ContainerInspect): Record<string, ContainerInspectNetwork> {
  return { ...(doc.NetworkSettings?.Networks ?? {}) };
}

/** The recorded document with its networks replaced, e.g. reordered or with one left out. */
function withNetworks(
  doc: ContainerInspect,
  edit: (entries: [string, ContainerInspectNetwork][]) => [string, ContainerInspectNetwork][],
): ContainerInspect {
  const Networks = Object.fromEntries(edit(Object.entries(networksOf(doc))));
  return { ...doc, NetworkSettings: { ...doc.NetworkSettings, Networks } };
}

const multi = recorded('multi-network');
const reversed = withNetworks(multi, (entries) => entries.reverse());
const noBridge = withNetworks(multi, (entries) => entries.filter(([name]) => name !== 'bridge'));
const noBridgeReversed = withNetworks(noBridge, (entries) => entries.reverse());

interface Row {
  case: string;
  doc: ContainerInspect;
  network?: string;
  state: ContainerState;
  running: boolean;
  /** The network expected to be chosen; the address is read from the document. */
  chosen: string | undefined;
}

const rows: Row[] = [
  { case: 'running on bridge', doc: recorded('bridge'), state: 'running', running: true, chosen: 'bridge' },
  { case: 'several networks: first by name', doc: multi, state: 'running', running: true, chosen: 'bridge' },
  { case: 'several networks reordered', doc: reversed, state: 'running', running: true, chosen: 'bridge' },
  // zeta was created and connected first; name order still wins.
  {
    case: 'without bridge: alpha before zeta',
    doc: noBridge,
    state: 'running',
    running: true,
    chosen: 'crrec-alpha',
  },
  {
    case: 'without bridge, reordered',
    doc: noBridgeReversed,
    state: 'running',
    running: true,
    chosen: 'crrec-alpha',
  },
  {
    case: 'configured zeta',
    doc: multi,
    network: 'crrec-zeta',
    state: 'running',
    running: true,
    chosen: 'crrec-zeta',
  },
  {
    case: 'configured alpha',
    doc: reversed,
    network: 'crrec-alpha',
    state: 'running',
    running: true,
    chosen: 'crrec-alpha',
  },
  {
    case: 'configured but absent',
    doc: multi,
    network: 'other',
    state: 'running',
    running: true,
    chosen: 'bridge',
  },
  {
    case: '--network none',
    doc: recorded('network-none'),
    state: 'running',
    running: true,
    chosen: undefined,
  },
  {
    case: '--network none, configured',
    doc: recorded('network-none'),
    network: 'none',
    state: 'running',
    running: true,
    chosen: undefined,
  },
  {
    case: '--network host',
    doc: recorded('network-host'),
    state: 'running',
    running: true,
    chosen: undefined,
  },
  { case: 'stopped', doc: recorded('exited'), state: 'exited', running: false, chosen: undefined },
  // A paused container keeps its address but cannot answer.
  { case: 'paused', doc: recorded('paused'), state: 'paused', running: false, chosen: 'bridge' },
  // Docker reports Running: true between restarts.
  { case: 'restarting', doc: recorded('restarting'), state: 'restarting', running: false, chosen: undefined },
  {
    case: 'created, never started',
    doc: recorded('created'),
    state: 'created',
    running: false,
    chosen: undefined,
  },
];

describe('parseContainerInspect (recorded documents)', () => {
  it.each(rows)('$case', (row) => {
    const parsed = parseContainerInspect(row.doc, row.network === undefined ? {} : { network: row.network });
    const ip = row.chosen === undefined ? undefined : networksOf(row.doc)[row.chosen]?.IPAddress;
    if (row.chosen !== undefined) expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(parsed).toEqual({
      state: row.state,
      running: row.running,
      ip,
      network: row.chosen,
      id: row.doc.Id,
      name: row.doc.Name?.slice(1),
      labels: row.doc.Config?.Labels,
    });
  });

  it('keeps the labels', () => {
    expect(parseContainerInspect(recorded('bridge')).labels).toHaveProperty(['container-resolver.recording']);
  });

  it('tolerates null labels and networks', () => {
    const doc: ContainerInspect = {
      ...recorded('bridge'),
      Config: { Labels: null },
      NetworkSettings: { Networks: null },
    };
    expect(parseContainerInspect(doc)).toMatchObject({ labels: {}, ip: undefined, network: undefined });
  });

  it('rejects a status outside Docker set', () => {
    const doc = recorded('bridge');
    expect(() => parseContainerInspect({ ...doc, State: { ...doc.State, Status: 'zombie' } })).toThrow(
      'Unknown container status "zombie"',
    );
  });
});
