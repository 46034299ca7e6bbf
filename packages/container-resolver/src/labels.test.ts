import { describe, expect, it } from 'vitest';
import {
  PREVIEW_NETWORK_LABEL,
  PREVIEW_PORT_LABEL,
  PREVIEW_STRIP_PREFIX_LABEL,
  previewNetworkFromLabels,
  previewPortFromLabels,
  previewStripPrefixFromLabels,
} from './labels.js';

describe('previewPortFromLabels', () => {
  it.each<[string, string | undefined, number | undefined]>([
    ['a port', '3000', 3000],
    ['the lowest port', '1024', 1024],
    ['the highest port', '65535', 65535],
    ['a leading zero (still plain decimal)', '03000', 3000],
    ['a privileged port', '80', undefined],
    ['just below the range', '1023', undefined],
    ['just above the range', '65536', undefined],
    ['six digits', '100000', undefined],
    ['zero', '0', undefined],
    ['exponent notation', '3e3', undefined],
    ['a leading space', ' 3000', undefined],
    ['a trailing space', '3000 ', undefined],
    ['a trailing newline', '3000\n', undefined],
    ['a decimal point', '3000.0', undefined],
    ['a sign', '+3000', undefined],
    ['negative', '-3000', undefined],
    ['hexadecimal', '0xbb8', undefined],
    ['full-width digits', '３０００', undefined],
    ['empty', '', undefined],
    ['letters', 'abc', undefined],
    ['missing', undefined, undefined],
  ])('%s (%j) -> %j', (_case, raw, port) => {
    const labels: Record<string, string> = { other: '4000' };
    if (raw !== undefined) labels[PREVIEW_PORT_LABEL] = raw;
    expect(previewPortFromLabels(labels)).toBe(port);
  });

  it('reads the sandbox.preview.port label only', () => {
    expect(PREVIEW_PORT_LABEL).toBe('sandbox.preview.port');
    expect(previewPortFromLabels({ 'sandbox.preview.ports': '3000', port: '3000' })).toBeUndefined();
  });
});

describe('previewStripPrefixFromLabels', () => {
  it.each<[string | undefined, boolean | undefined]>([
    ['false', false],
    ['true', true],
    [undefined, undefined],
    // Anything else is not guessed at: the default applies.
    ['False', undefined],
    ['0', undefined],
    ['no', undefined],
    [' false', undefined],
    ['', undefined],
  ])('%j -> %j', (raw, expected) => {
    const labels: Record<string, string> = { 'sandbox.preview.port': '3000' };
    if (raw !== undefined) labels[PREVIEW_STRIP_PREFIX_LABEL] = raw;
    expect(previewStripPrefixFromLabels(labels)).toBe(expected);
  });

  it('reads the sandbox.preview.strip-prefix label', () => {
    expect(PREVIEW_STRIP_PREFIX_LABEL).toBe('sandbox.preview.strip-prefix');
  });
});

describe('previewNetworkFromLabels', () => {
  it.each<[string, string | undefined, string | undefined]>([
    ['a network', 'crls-zeta', 'crls-zeta'],
    ['surrounding spaces are trimmed', '  crls-zeta \n', 'crls-zeta'],
    ['empty', '', undefined],
    ['only spaces', '   ', undefined],
    ['missing', undefined, undefined],
  ])('%s (%j) -> %j', (_case, raw, network) => {
    const labels: Record<string, string> = { 'sandbox.preview.port': '3000' };
    if (raw !== undefined) labels[PREVIEW_NETWORK_LABEL] = raw;
    expect(previewNetworkFromLabels(labels)).toBe(network);
  });

  it('reads the sandbox.preview.network label only', () => {
    expect(PREVIEW_NETWORK_LABEL).toBe('sandbox.preview.network');
    expect(previewNetworkFromLabels({ network: 'x', 'com.docker.network': 'y' })).toBeUndefined();
  });
});
