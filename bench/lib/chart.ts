// The bench chart: added latency per percentile, one panel per profile (a line per rate) and
// one for streaming time to first token (a line per route), on a log scale so 0.1 ms and 15 ms
// both read, with the 2 ms and 15 ms lines the seed articles quote. Plain SVG, no fonts or
// scripts, so it renders anywhere (GitHub, a browser, rsvg-convert).
import type { BenchResult } from './result.ts';
import type { Percentiles } from './stats.ts';

const H = 420;
const PANEL_W = 300;
const PANEL_H = 250;
const TOP = 70;
const LEFT = 60;
const GAP = 40;
const FLOOR = 0.01;
const KEYS: [keyof Percentiles, string][] = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p99_9', 'p99.9'],
];
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b'];

export interface Series {
  label: string;
  values: Percentiles;
  /** Default: the palette, in order. */
  color?: string;
}
export interface Panel {
  title: string;
  series: Series[];
}

export function renderChart(r: BenchResult): string {
  const panels: Panel[] = [];
  for (const profile of [...new Set(r.openLoop.map((o) => o.profile))]) {
    panels.push({
      title: `${profile}: added latency`,
      series: r.openLoop
        .filter((o) => o.profile === profile)
        .map((o) => ({ label: `${o.rateRps} req/s`, values: o.addedMs })),
    });
  }
  panels.push({
    title: `streaming: time to first token added`,
    series: r.streaming.routes
      .filter((s) => s.ttftAddedMs !== null)
      .map((s) => ({ label: s.route, values: s.ttftAddedMs! })),
  });
  return renderPanels(
    `LM Gate: latency added to Envoy alone (${r.kind} run, ${r.startedAt.slice(0, 10)})`,
    `${r.environment.cores} cores, ${r.environment.cpuModel}; Node ${r.environment.node}; Envoy ${envoyShort(r.environment.envoy)}; commit ${r.commit}.`,
    panels,
  );
}

/** Envoy's version from its build string (<sha>/<version>/Clean/RELEASE/BoringSSL). */
export function envoyShort(envoy: string): string {
  return envoy.split('/')[1] ?? envoy;
}

/** Panels of percentile lines on one log scale, with the 2 ms and 15 ms reference lines. */
export function renderPanels(title: string, subtitle: string, panels: Panel[]): string {
  const all = panels.flatMap((p) => p.series.flatMap((s) => KEYS.map(([k]) => s.values[k])));
  const top = 10 ** Math.ceil(Math.log10(Math.max(20, ...all.filter(Number.isFinite))));
  // Wide enough for the title and subtitle (about 9.5 and 6.6 px a character) with few panels.
  const W = Math.max(
    LEFT + panels.length * (PANEL_W + GAP + 10),
    LEFT + 20 + Math.ceil(Math.max(title.length * 9.5, (subtitle.length + 50) * 6.6)),
  );
  const y = (v: number) => TOP + PANEL_H - (Math.log10(Math.max(v, FLOOR) / FLOOR) / Math.log10(top / FLOOR)) * PANEL_H;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="${LEFT}" y="44" fill="#555">${esc(`${subtitle} Values at or below ${FLOOR} ms are drawn on the floor.`)}</text>`,
  );
  panels.forEach((panel, i) => {
    const x0 = LEFT + i * (PANEL_W + GAP + 10);
    const x = (j: number) => x0 + 20 + (j * (PANEL_W - 40)) / (KEYS.length - 1);
    out.push(`<text x="${x0}" y="${TOP - 10}" font-weight="bold">${esc(panel.title)}</text>`);
    out.push(`<rect x="${x0}" y="${TOP}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
    for (let d = FLOOR; d <= top; d *= 10) {
      for (const m of [1, 2, 5]) {
        const v = d * m;
        if (v > top) break;
        const yy = y(v).toFixed(1);
        out.push(
          `<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${yy}" y2="${yy}" stroke="${m === 1 ? '#ddd' : '#f0f0f0'}"/>`,
        );
        if (i === 0 && m === 1)
          out.push(`<text x="${x0 - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${fmt(v)} ms</text>`);
      }
    }
    for (const [ms, label] of [
      [2, '2 ms'],
      [15, '15 ms'],
    ] as const) {
      const yy = y(ms).toFixed(1);
      out.push(
        `<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${yy}" y2="${yy}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 4"/>`,
        `<text x="${x0 + PANEL_W - 4}" y="${Number(yy) - 4}" text-anchor="end" fill="#d62728">${label}</text>`,
      );
    }
    KEYS.forEach(([, label], j) => {
      out.push(`<text x="${x(j)}" y="${TOP + PANEL_H + 16}" text-anchor="middle">${label}</text>`);
    });
    panel.series.forEach((s, k) => {
      const color = s.color ?? COLORS[k % COLORS.length]!;
      const pts = KEYS.map(([key], j) => [x(j), y(s.values[key]), s.values[key]] as const);
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>`,
      );
      for (const [a, b, v] of pts) {
        const hollow = !(v > FLOOR);
        out.push(
          `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3.5" fill="${hollow ? '#fff' : color}" stroke="${color}"><title>${esc(s.label)}: ${v} ms</title></circle>`,
        );
      }
      const ly = TOP + PANEL_H + 36 + k * 16;
      out.push(
        `<line x1="${x0}" x2="${x0 + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`,
        `<text x="${x0 + 24}" y="${ly}">${esc(s.label)}</text>`,
      );
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function fmt(v: number): string {
  return v >= 1 ? String(Math.round(v)) : String(Number(v.toPrecision(1)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
