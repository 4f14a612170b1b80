/**
 * The plots on Chart.js: for a run, L(ε) on log-log axes (the paper's Fig. 7: local bound, global
 * bound, lower bounds found by search, the certification threshold δ/(√2·ε) and the certified
 * radius) and the per-layer local bounds as bars beside each layer's global bound; for a dataset
 * run, the certified-accuracy curve as the step function it is and a histogram of the radii.
 * Only the Chart.js parts used here are registered, so the bundle carries no more.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LineElement,
  LinearScale,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
  type ChartConfiguration,
  type Plugin,
} from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';
import { QUALITY_LABEL, num } from '../format';
import type { CertifyResult, DatasetImage, LayerBound, LowerBoundEntry, Quality } from '../queries';

Chart.register(ScatterController, BarController, LineElement, PointElement, BarElement, LinearScale, LogarithmicScale, CategoryScale, Tooltip, Legend);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'system-ui, sans-serif';
Chart.defaults.font.size = 12;
Chart.defaults.color = '#52606d';
Chart.defaults.borderColor = '#e4e7eb';

const COLORS = {
  local: '#2156c9',
  global: '#c2410c',
  lower: '#15803d',
  threshold: '#7b8794',
  radius: '#7c3aed',
};
const EPS_SHADES = ['#2156c9', '#5b8def', '#93b4f5', '#1e3a8a', '#3b82f6', '#bfd3fb'];

/** Marks the canvas once drawn, with its point count, for tests and for screen readers' summaries. */
const drawnMarker: Plugin = {
  id: 'drawnMarker',
  afterRender(chart) {
    const points = chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
    chart.canvas.dataset.drawn = 'true';
    chart.canvas.dataset.points = String(points);
  },
};

function useChart(config: () => ChartConfiguration, deps: unknown[]) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, config());
    return () => chart.destroy();
  }, deps);
  return canvas;
}

const SUPERSCRIPT = '⁰¹²³⁴⁵⁶⁷⁸⁹';
/** Ticks at powers of ten only: 0.001 … 1000 written out, 10⁻⁵ and 10⁵ beyond. */
const powerOfTenTicks = (value: string | number) => {
  const log = Math.log10(Number(value));
  const k = Math.round(log);
  if (Math.abs(log - k) > 1e-9) return '';
  if (k >= -3 && k <= 3) return String(Number((10 ** k).toPrecision(1)));
  return `10${k < 0 ? '⁻' : ''}${String(Math.abs(k)).split('').map((d) => SUPERSCRIPT[Number(d)]).join('')}`;
};

export function LipschitzChart({ result, lower }: { result: CertifyResult; lower: LowerBoundEntry[] }) {
  const canvas = useChart(() => {
    const local = [...result.local].sort((a, b) => a.eps - b.eps);
    const xs = [...local.map((l) => l.eps), ...lower.map((l) => l.eps)];
    if (result.radius?.local) xs.push(result.radius.local);
    if (result.radius?.global) xs.push(result.radius.global);
    const positive = xs.filter((x) => x > 0);
    if (positive.length === 0) positive.push(1e-3, 1e-1);
    const lo = Math.min(...positive) / 2;
    const hi = Math.max(...positive) * 2;
    const ys = [...local.map((l) => l.bound), ...lower.map((l) => l.bound)].filter((y) => y > 0);
    if (result.globalBound) ys.push(result.globalBound.bound);
    if (ys.length === 0) ys.push(1);
    const yLo = Math.min(...ys) / 3;
    const yHi = Math.max(...ys) * 3;

    const datasets: ChartConfiguration<'scatter'>['data']['datasets'] = [
      {
        label: `local bound L(x₀, ε) (${[...new Set(local.map((l) => QUALITY_LABEL[l.quality]))].join(', ')})`,
        data: local.map((l) => ({ x: l.eps, y: l.bound })),
        borderColor: COLORS.local,
        backgroundColor: COLORS.local,
        showLine: true,
        pointRadius: 4,
        borderWidth: 2,
      },
    ];
    if (result.globalBound) {
      datasets.push({
        label: `global bound (${QUALITY_LABEL[result.globalBound.quality]})`,
        data: [
          { x: lo, y: result.globalBound.bound },
          { x: hi, y: result.globalBound.bound },
        ],
        borderColor: COLORS.global,
        backgroundColor: COLORS.global,
        borderDash: [6, 4],
        showLine: true,
        pointRadius: 0,
        borderWidth: 2,
      });
    }
    const byMethod = new Map<string, LowerBoundEntry[]>();
    for (const entry of lower) byMethod.set(entry.method ?? 'search', [...(byMethod.get(entry.method ?? 'search') ?? []), entry]);
    [...byMethod].forEach(([method, entries], i) => {
      datasets.push({
        label: `lower bound, found by search (${method})`,
        data: [...entries].sort((a, b) => a.eps - b.eps).map((e) => ({ x: e.eps, y: e.bound })),
        borderColor: i === 0 ? COLORS.lower : '#65a30d',
        backgroundColor: i === 0 ? COLORS.lower : '#65a30d',
        showLine: true,
        pointStyle: 'triangle',
        pointRadius: 5,
        borderWidth: 1.5,
      });
    });
    if (result.margin > 0) {
      // ε·L(ε) < δ/√2 certifies (Proposition 6): below this line, the class cannot change.
      const threshold = (x: number) => result.margin / (Math.SQRT2 * x);
      datasets.push({
        label: 'certification threshold δ/(√2·ε)',
        data: [
          { x: lo, y: threshold(lo) },
          { x: hi, y: threshold(hi) },
        ],
        borderColor: COLORS.threshold,
        backgroundColor: COLORS.threshold,
        borderDash: [2, 3],
        showLine: true,
        pointRadius: 0,
        borderWidth: 1.5,
      });
      if (result.radius && result.radius.global > 0 && result.globalBound) {
        const r = result.radius.global;
        datasets.push({
          label: `radius from the global bound ${num(r)}`,
          data: [
            { x: r, y: yLo },
            { x: r, y: threshold(r) },
          ],
          borderColor: '#e8a27f',
          backgroundColor: '#e8a27f',
          showLine: true,
          pointRadius: [0, 4],
          pointStyle: 'rectRot',
          borderWidth: 1.5,
        });
      }
      if (result.radius && result.radius.local > 0) {
        const r = result.radius.local;
        datasets.push({
          label: `certified radius (local bound) ${num(r)}`,
          data: [
            { x: r, y: yLo },
            { x: r, y: threshold(r) },
          ],
          borderColor: COLORS.radius,
          backgroundColor: COLORS.radius,
          showLine: true,
          pointRadius: [0, 5],
          pointStyle: 'rectRot',
          borderWidth: 1.5,
        });
      }
    }
    return {
      type: 'scatter',
      data: { datasets },
      plugins: [drawnMarker],
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: {
            type: 'logarithmic',
            min: lo,
            max: hi,
            title: { display: true, text: 'ε (radius of the input ball, ℓ₂)' },
            ticks: { callback: powerOfTenTicks },
          },
          y: {
            type: 'logarithmic',
            min: yLo,
            max: yHi,
            title: { display: true, text: 'Lipschitz bound' },
            ticks: { callback: powerOfTenTicks },
          },
        },
        plugins: {
          legend: { position: 'bottom', labels: { usePointStyle: true, boxHeight: 7, padding: 14 } },
          tooltip: {
            callbacks: {
              label: (item) => `${item.dataset.label}: ε = ${num(item.parsed.x)}, L = ${num(item.parsed.y)}`,
            },
          },
        },
      },
    } as ChartConfiguration;
  }, [result, lower]);
  return (
    <div class="chart chart-tall">
      <canvas ref={canvas} data-testid="lipschitz-chart" role="img" aria-label="Local and global Lipschitz bounds against epsilon, log-log" />
    </div>
  );
}

const layerLabel = (l: LayerBound) => `${l.index} ${l.kind}${l.relu && l.kind !== 'relu' ? '+ReLU' : ''}${l.activation ? `+${l.activation}` : ''}`;

/** Which ε to show as bars: all of up to 4, otherwise the smallest, two between and the largest. */
function pickEps(count: number): number[] {
  if (count <= 4) return Array.from({ length: count }, (_, i) => i);
  return [0, Math.round((count - 1) / 3), Math.round((2 * (count - 1)) / 3), count - 1];
}

export function LayerChart({ result }: { result: CertifyResult }) {
  const canvas = useChart(() => {
    const local = [...result.local].sort((a, b) => a.eps - b.eps);
    const layers = local[0]?.layers ?? result.globalBound?.layers ?? [];
    const labels = layers.map(layerLabel);
    const datasets: ChartConfiguration<'bar'>['data']['datasets'] = pickEps(local.length).map((i, k) => {
      const entry = local[i]!;
      const byIndex = new Map(entry.layers.map((l) => [l.index, l.bound]));
      return {
        label: `local, ε = ${num(entry.eps)} (${QUALITY_LABEL[entry.quality]})`,
        data: layers.map((l) => byIndex.get(l.index) ?? null) as number[],
        backgroundColor: EPS_SHADES[k % EPS_SHADES.length],
        borderRadius: 2,
      };
    });
    if (result.globalBound) {
      const byIndex = new Map(result.globalBound.layers.map((l) => [l.index, l.bound]));
      datasets.push({
        label: `global (${QUALITY_LABEL[result.globalBound.quality]})`,
        data: layers.map((l) => byIndex.get(l.index) ?? null) as number[],
        backgroundColor: '#f0b69a',
        borderColor: COLORS.global,
        borderWidth: 1,
        borderRadius: 2,
      });
    }
    return {
      type: 'bar',
      data: { labels, datasets },
      plugins: [drawnMarker],
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: 'layer' }, grid: { display: false } },
          y: { type: 'logarithmic', title: { display: true, text: 'layer bound' }, ticks: { callback: powerOfTenTicks } },
        },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 12, padding: 14 } },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${num(item.parsed.y)}` } },
        },
      },
    } as ChartConfiguration;
  }, [result]);
  return (
    <div class="chart">
      <canvas ref={canvas} data-testid="layer-chart" role="img" aria-label="Per-layer local bounds against the global layer bounds" />
    </div>
  );
}

/**
 * Certified accuracy against the radius r: the server's points {r_j, a_j} (r_0 = 0, the clean
 * accuracy) drawn as the step function they define: a_j on (r_{j−1}, r_j], 0 beyond the last radius.
 */
export function AccuracyChart({ curve, quality }: { curve: { radius: number; accuracy: number }[]; quality: Quality | null }) {
  const canvas = useChart(() => {
    const last = curve.at(-1)?.radius ?? 0;
    const end = last > 0 ? last * 1.15 : 1;
    // Chart.js's stepped 'after' goes up or down at point i, then across to i+1: a_{i+1} on (r_i, r_{i+1}].
    const points = [...curve.map((p) => ({ x: p.radius, y: 100 * p.accuracy })), { x: last, y: 0 }, { x: end, y: 0 }];
    return {
      type: 'scatter',
      data: {
        datasets: [
          {
            label: `certified accuracy (${quality ? QUALITY_LABEL[quality] : 'no positive radius'} radii)`,
            data: points,
            borderColor: COLORS.radius,
            backgroundColor: COLORS.radius,
            showLine: true,
            stepped: 'after',
            pointRadius: curve.length > 60 ? 0 : 2.5,
            borderWidth: 2,
          },
        ],
      },
      plugins: [drawnMarker],
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { type: 'linear', min: 0, max: end, title: { display: true, text: 'radius r (ℓ₂)' } },
          y: { min: 0, max: 100, title: { display: true, text: '% of all images: correct and certified at r' } },
        },
        plugins: {
          legend: { position: 'bottom' },
          tooltip: { callbacks: { label: (item) => `r ≤ ${num(item.parsed.x)}: ${num(item.parsed.y, 3)}%` } },
        },
      },
    } as ChartConfiguration;
  }, [curve, quality]);
  return (
    <div class="chart">
      <canvas ref={canvas} data-testid="accuracy-chart" role="img" aria-label="Certified accuracy against the radius, a step function" />
    </div>
  );
}

/** How many images have a radius in each of `bins` equal ranges, and the misclassified ones (radius 0). */
export function radiusBins(images: Pick<DatasetImage, 'radius' | 'predictedClass' | 'label'>[], bins = 12): { labels: string[]; counts: number[] } {
  const radii = images.filter((im) => im.predictedClass === im.label && (im.radius ?? 0) > 0).map((im) => im.radius as number);
  const misclassified = images.filter((im) => im.predictedClass !== null && im.predictedClass !== im.label).length;
  const labels = ['misclassified (0)'];
  const counts = [misclassified];
  if (radii.length === 0) return { labels, counts };
  const top = Math.max(...radii);
  const width = top / bins;
  for (let b = 0; b < bins; b++) {
    labels.push(`${num(b * width, 2)}–${num((b + 1) * width, 2)}`);
    counts.push(radii.filter((r) => Math.min(bins - 1, Math.floor(r / width)) === b).length);
  }
  return { labels, counts };
}

export function RadiusHistogram({ images }: { images: Pick<DatasetImage, 'radius' | 'predictedClass' | 'label'>[] }) {
  const canvas = useChart(() => {
    const { labels, counts } = radiusBins(images);
    return {
      type: 'bar',
      data: {
        labels,
        datasets: [{ label: 'images', data: counts, backgroundColor: labels.map((_, i) => (i === 0 ? '#cbd2d9' : '#8b5cf6')), borderRadius: 2 }],
      },
      plugins: [drawnMarker],
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: 'certified radius (ℓ₂)' }, grid: { display: false } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'images' } },
        },
        plugins: { legend: { display: false } },
      },
    } as ChartConfiguration;
  }, [images]);
  return (
    <div class="chart">
      <canvas ref={canvas} data-testid="radius-histogram" role="img" aria-label="Histogram of the certified radii" />
    </div>
  );
}
