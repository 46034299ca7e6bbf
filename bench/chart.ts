// The benchmark's figures as an SVG chart (plain text, no dependency): for each case, one bar per path of
// its req/s, and beside it the CPU time per request, each bar labelled with its value. Pure: data in, SVG out.

/** One bar group: a case and each path's figures. */
export interface ChartCase {
  label: string;
  paths: Array<{ name: string; requestsPerSecond: number; cpuUsPerRequest?: number }>;
}

const COLORS: Readonly<Record<string, string>> = {
  direct: '#9e9e9e',
  nginx: '#2e7d32',
  haproxy: '#1565c0',
  caddy: '#6a1b9a',
  bare: '#ef6c00',
  ours: '#c62828',
  lean: '#e57373',
  edge: '#ad1457',
};

const xmlText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(
  cases: readonly ChartCase[],
  value: (path: ChartCase['paths'][number]) => number | undefined,
  title: string,
  format: (value: number) => string,
  top: number,
): { svg: string; height: number } {
  const barHeight = 14;
  const gap = 10;
  const labelWidth = 150;
  const width = 520;
  const max = Math.max(1, ...cases.flatMap((c) => c.paths.map((p) => value(p) ?? 0)));
  const parts = [`<text x="10" y="${top + 16}" font-weight="bold">${xmlText(title)}</text>`];
  let y = top + 30;
  for (const c of cases) {
    parts.push(`<text x="10" y="${y + 11}" font-weight="bold">${xmlText(c.label)}</text>`);
    y += barHeight + 4;
    for (const path of c.paths) {
      const v = value(path);
      if (v === undefined) continue;
      const w = Math.max(1, (v / max) * width);
      parts.push(
        `<text x="${labelWidth - 6}" y="${y + 11}" text-anchor="end">${xmlText(path.name)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLORS[path.name] ?? '#607d8b'}"/>`,
        `<text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + 11}">${xmlText(format(v))}</text>`,
      );
      y += barHeight + 2;
    }
    y += gap;
  }
  return { svg: parts.join('\n'), height: y - top };
}

/** The chart: req/s per case and path, then CPU µs per request (where the proxy's CPU was read). */
export function benchmarkChart(cases: readonly ChartCase[], caption: string): string {
  const rps = panel(
    cases,
    (p) => p.requestsPerSecond,
    'Requests per second (more is better)',
    (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : `${Math.round(v)}`),
    0,
  );
  const cpu = panel(
    cases.map((c) => ({ ...c, paths: c.paths.filter((p) => p.cpuUsPerRequest !== undefined) })),
    (p) => p.cpuUsPerRequest,
    'Proxy CPU per request, µs (less is better)',
    (v) => `${Math.round(v)}`,
    rps.height + 10,
  );
  const height = rps.height + cpu.height + 40;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${height}" font-family="sans-serif" font-size="12">
<title>Requests per second and proxy CPU per request, side by side: ${xmlText(caption)}</title>
<rect width="100%" height="100%" fill="white"/>
${rps.svg}
${cpu.svg}
<text x="10" y="${height - 12}" fill="#555">${xmlText(caption)}</text>
</svg>
`;
}
