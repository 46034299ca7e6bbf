import { describe, expect, it } from 'vitest';
import {
  containerCreateOptions,
  portSpecsFromLabels,
  portSpecsOf,
  previewEnvironment,
  previewUrlsOf,
  SESSION_PORTS_LABEL,
} from './session-spec.js';

const urls = {
  publicUrl: 'https://dev.example.com',
  publicPrefix: '/previews',
  previewDomain: 'p.example.com',
};

describe('portSpecsOf / portSpecsFromLabels', () => {
  it('spells out the defaults, drops duplicates and reads back what it wrote', () => {
    const specs = portSpecsOf([3000, { port: 5173, stripPrefix: false, visibility: 'private' }, 3000]);
    expect(specs).toEqual([
      { port: 3000, stripPrefix: true, visibility: 'public' },
      { port: 5173, stripPrefix: false, visibility: 'private' },
    ]);
    expect(portSpecsFromLabels({ [SESSION_PORTS_LABEL]: JSON.stringify(specs) })).toEqual(specs);
  });

  it.each([
    [undefined, []],
    [{}, []],
    [{ [SESSION_PORTS_LABEL]: 'not json' }, []],
    [{ [SESSION_PORTS_LABEL]: '{"port":3000}' }, []],
    [{ [SESSION_PORTS_LABEL]: '[{"port":80},{"port":3000.5},{"port":"3000"},null,{"port":4000}]' }, [4000]],
  ])('ignores what it did not write: %j', (labels, ports) => {
    expect(portSpecsFromLabels(labels).map((spec) => spec.port)).toEqual(ports);
  });
});

describe('previewUrlsOf', () => {
  it("gives the path URL to the primary port only, and a host URL with the origin's scheme and port", () => {
    expect(previewUrlsOf('abc', 3000, true, urls)).toEqual({
      path: 'https://dev.example.com/previews/abc/',
      host: 'https://3000-abc.p.example.com/',
    });
    expect(
      previewUrlsOf('abc', 3001, false, { ...urls, publicUrl: 'http://localhost:4002/ignored' }),
    ).toEqual({
      path: null,
      host: 'http://3001-abc.p.example.com:4002/',
    });
  });

  it('has no host URL for an id that cannot be a DNS label, and none without a domain or route', () => {
    expect(previewUrlsOf('a_b', 3000, true, urls).host).toBeNull();
    expect(previewUrlsOf('x'.repeat(60), 3000, true, urls).host).toBeNull();
    expect(previewUrlsOf('abc', 3000, true, { publicUrl: 'http://h' })).toEqual({ path: null, host: null });
  });
});

describe('previewEnvironment', () => {
  it('tells the app its id, and with ports where the primary one is served', () => {
    expect(previewEnvironment('abc', [], urls)).toEqual({ SANDBOX_SESSION_ID: 'abc' });
    expect(previewEnvironment('abc', portSpecsOf([5173, 3000]), urls)).toEqual({
      SANDBOX_SESSION_ID: 'abc',
      PREVIEW_PORT: '5173',
      PREVIEW_PATH_PREFIX: '/previews/abc',
      PREVIEW_BASE_PATH: '/previews/abc/',
      PREVIEW_URL: 'https://dev.example.com/previews/abc/',
      PREVIEW_HOST_URL: 'https://5173-abc.p.example.com/',
      PREVIEW_HOST_URL_5173: 'https://5173-abc.p.example.com/',
      PREVIEW_HOST_URL_3000: 'https://3000-abc.p.example.com/',
    });
  });
});

describe('containerCreateOptions', () => {
  it("names, labels and limits the container; the caller's variables come last", () => {
    const options = containerCreateOptions(
      'abc',
      { image: 'img:1', cmd: ['npm', 'run', 'dev'], env: { PREVIEW_PORT: 'mine', X: '1' }, workdir: '/app' },
      portSpecsOf([3000]),
      { SANDBOX_SESSION_ID: 'abc', PREVIEW_PORT: '3000' },
      { network: 'previews', limits: { memoryBytes: 512 * 1024 * 1024, cpus: 1.5, pidsLimit: 256 } },
    );
    expect(options).toEqual({
      name: 'sandbox-session-abc',
      Image: 'img:1',
      Cmd: ['npm', 'run', 'dev'],
      WorkingDir: '/app',
      Env: ['SANDBOX_SESSION_ID=abc', 'PREVIEW_PORT=mine', 'X=1'],
      Labels: {
        'sandbox.session.managed': 'true',
        'sandbox.session.ports': '[{"port":3000,"stripPrefix":true,"visibility":"public"}]',
      },
      HostConfig: {
        NetworkMode: 'previews',
        Memory: 536870912,
        MemorySwap: 536870912,
        NanoCpus: 1_500_000_000,
        PidsLimit: 256,
        SecurityOpt: ['no-new-privileges'],
        Init: true,
      },
    });
  });

  it('refuses an id that is not a container-name tail before it reaches Docker', () => {
    expect(() => containerCreateOptions('../x', { image: 'i' }, [], {})).toThrow(/Session id must match/);
  });
});
