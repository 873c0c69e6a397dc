/**
 * Charts: faithfulness against circuit size (log-scaled size axis), relevance per layer and the
 * head heatmap from the circuit's candidate scores, and the runs of this session — sparsity
 * against perplexity for the selected pruning runs on a true numeric axis, before/after for
 * correction runs. Every chart has its numbers as a table too (a canvas does not read out).
 * Chart.js with only the parts we register; colours from the theme's `--vscode-charts-*`.
 */
import {
  Filler,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
} from 'chart.js';
import type { CircuitCurvePoint, CircuitGraph } from '../src/circuits/discovery/graph';
import type { CorrectRun, PruneCurveRun, PruneRun, Run, VerificationSummary } from '../src/protocol/shapes';
import { el } from './controls';
import { candidateScores } from './graph';

Chart.register(Filler, BarController, BarElement, CategoryScale, LinearScale, LogarithmicScale, LineController, LineElement, PointElement, ScatterController, Tooltip, Legend);

const css = (name: string, fallback: string) => getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
const PALETTE = ['--vscode-charts-orange', '--vscode-charts-blue', '--vscode-charts-green', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'];

export interface ChartsInput {
  readonly circuit: CircuitGraph | null;
  readonly verification: VerificationSummary | null;
  readonly runs: readonly Run[];
  readonly shownRuns: readonly string[];
}

function num(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1000 ? x.toExponential(2) : x.toFixed(3);
}

/**
 * The faithfulness curve as drawn: points with a positive size (a log axis has no 0), one per
 * size (several fractions can round to the same number of components; the first is kept).
 */
export function curvePoints(curve: readonly CircuitCurvePoint[]): { x: number; y: number }[] {
  const seen = new Set<number>();
  const out: { x: number; y: number }[] = [];
  for (const p of [...curve].sort((a, b) => a.size - b.size || a.fraction - b.fraction)) {
    if (p.size <= 0 || seen.has(p.size) || !Number.isFinite(p.faithfulness)) continue;
    seen.add(p.size);
    out.push({ x: p.size, y: p.faithfulness });
  }
  return out;
}

export class ChartsView {
  private charts: Chart[] = [];
  private last: ChartsInput | null = null;

  constructor(
    private readonly container: HTMLElement,
    private readonly onShowRuns: (ids: string[]) => void,
  ) {
    new MutationObserver(() => this.last && this.render(this.last)).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  render(input: ChartsInput): void {
    this.last = input;
    for (const c of this.charts) c.destroy();
    this.charts = [];
    this.container.replaceChildren();
    Chart.defaults.color = css('--vscode-foreground', '#cccccc');
    Chart.defaults.borderColor = css('--vscode-panel-border', '#80808059');
    Chart.defaults.font.family = css('--vscode-font-family', 'sans-serif');
    Chart.defaults.animation = false;
    if (input.circuit) this.circuitCharts(input.circuit, input.verification);
    this.runCharts(input);
  }

  private circuitCharts(graph: CircuitGraph, verification: VerificationSummary | null): void {
    const blue = css('--vscode-charts-blue', '#3794ff');
    const green = css('--vscode-charts-green', '#89d185');
    const purple = css('--vscode-charts-purple', '#b180d7');

    // Faithfulness against size; the latest verification's curve when there is one.
    const faith = this.section('Faithfulness vs circuit size', 'chart-faithfulness');
    const curve = curvePoints(verification?.curve ?? graph.metrics?.curve ?? []);
    if (curve.length > 0) {
      this.charts.push(
        new Chart(this.canvas(faith, 'Faithfulness against the number of components kept (log scale)'), {
          type: 'scatter',
          data: { datasets: [{ label: 'faithfulness', data: curve, borderColor: blue, backgroundColor: blue, showLine: true }] },
          options: {
            responsive: true,
            maintainAspectRatio: false,
            scales: {
              x: { type: 'logarithmic', title: { display: true, text: 'components kept (log scale)' }, ticks: { callback: (v) => String(v) } },
              y: { title: { display: true, text: 'faithfulness' } },
            },
          },
        }),
      );
      this.table(faith, 'curve-table', 'Faithfulness at each circuit size', null, [
        ['components', curve.map((p) => String(p.x))],
        ['faithfulness', curve.map((p) => num(p.y))],
      ]);
    } else faith.append(el('p', { class: 'empty' }, 'No curve for this circuit yet: press Verify.'));

    // Per-layer relevance of every candidate (not only the kept ones).
    const scores = candidateScores(graph);
    const layers = graph.model.nLayers;
    const attn = new Array<number>(layers).fill(0);
    const mlp = new Array<number>(layers).fill(0);
    const heads = Array.from({ length: layers }, () => new Array<number | null>(graph.model.nHeads).fill(null));
    for (const [id, v] of scores) {
      const head = /^a(\d+)\.h(\d+)$/.exec(id);
      const m = /^m(\d+)(?:\.n\d+)?$/.exec(id);
      if (head) {
        const l = Number(head[1]);
        const h = Number(head[2]);
        if (l < layers) {
          attn[l]! += v;
          if (h < graph.model.nHeads) heads[l]![h] = v;
        }
      } else if (m && Number(m[1]) < layers) mlp[Number(m[1])]! += v;
    }
    const perLayer = this.section('Relevance per layer (all candidates)', 'chart-layers');
    const datasets = [
      ...(attn.some((x) => x !== 0) ? [{ label: 'attention heads', data: attn, backgroundColor: purple }] : []),
      ...(mlp.some((x) => x !== 0) ? [{ label: 'MLP', data: mlp, backgroundColor: green }] : []),
    ];
    this.charts.push(
      new Chart(this.canvas(perLayer, 'Relevance per layer: attention and MLP bars for each layer'), {
        type: 'bar',
        data: { labels: attn.map((_, i) => `L${i}`), datasets },
        options: { responsive: true, maintainAspectRatio: false, scales: { y: { title: { display: true, text: 'summed relevance' } } } },
      }),
    );

    // Head heatmap: a grid with values as text; tint by CSSOM (allowed under our CSP).
    if (heads.some((row) => row.some((v) => v !== null))) {
      const heat = this.section('Head relevance (layer × head)', 'chart-heads');
      const all = heads.flat().filter((v): v is number => v !== null);
      const maxAbs = Math.max(1e-12, ...all.map(Math.abs));
      const grid = el('table', { class: 'heatmap', 'data-testid': 'head-heatmap' });
      const head = el('tr');
      head.append(el('th', { scope: 'col' }, ''));
      for (let h = 0; h < graph.model.nHeads; h++) head.append(el('th', { scope: 'col' }, `H${h}`));
      grid.append(head);
      const kept = new Set(graph.nodes.map((n) => n.id));
      for (let l = layers - 1; l >= 0; l--) {
        const row = el('tr');
        row.append(el('th', { scope: 'row' }, `L${l}`));
        heads[l]!.forEach((v, h) => {
          const id = `a${l}.h${h}`;
          const cell = el('td', { title: `${id}: ${v ?? 'not scored'}${kept.has(id) ? ' (in the circuit)' : ''}` }, v === null ? '' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toPrecision(2)}`);
          if (kept.has(id)) cell.classList.add('kept');
          if (v !== null) {
            const a = Math.min(1, Math.abs(v) / maxAbs);
            cell.style.backgroundColor = `color-mix(in srgb, ${v >= 0 ? 'var(--vscode-charts-red)' : 'var(--vscode-charts-blue)'} ${Math.round(a * 70)}%, transparent)`;
          }
          row.append(cell);
        });
        grid.append(row);
      }
      heat.append(grid, el('p', { class: 'muted' }, 'Outlined cells are in the circuit.'));
    }
  }

  private runCharts(input: ChartsInput): void {
    const section = this.section('Runs of this session', 'runs');
    if (input.runs.length === 0) {
      section.append(el('p', { class: 'empty' }, 'No pruning or correction run yet (Circuit Lens: Prune Model…, Correct Model…).'));
      return;
    }
    const shown = new Set(input.shownRuns);
    const list = el('ul', { class: 'run-list' });
    for (const run of input.runs) {
      const li = el('li');
      const label = el('label');
      const cb = el('input', { type: 'checkbox', 'data-testid': 'run-toggle', 'data-run': run.id, 'aria-label': `Show ${run.title}` });
      cb.checked = shown.has(run.id);
      cb.addEventListener('change', () => {
        const next = input.runs.filter((r) => (r.id === run.id ? cb.checked : shown.has(r.id))).map((r) => r.id);
        this.onShowRuns(next);
      });
      label.append(cb, el('span', {}, ` ${run.title}`));
      li.append(label);
      list.append(li);
    }
    section.append(list);
    const selected = input.runs.filter((r) => shown.has(r.id));
    const prunes = selected.filter((r): r is PruneRun => r.kind === 'prune');
    const corrects = selected.filter((r): r is CorrectRun => r.kind === 'correct');
    if (prunes.length > 0) this.sparsity(prunes);
    const curves = selected.filter((r): r is PruneCurveRun => r.kind === 'prune-curve');
    for (const mode of ['structured', 'unstructured'] as const) {
      if (curves.some((r) => r.series.some((x) => x.mode === mode))) this.pruneCurves(curves, mode);
    }
    for (const run of corrects) this.beforeAfter(run);
    if (selected.length === 0) section.append(el('p', { class: 'muted' }, 'Tick runs to overlay them.'));
  }

  /** Sparsity against perplexity for every selected pruning run, on a numeric sparsity axis. */
  private sparsity(runs: readonly PruneRun[]): void {
    const sp = this.section('Sparsity vs perplexity', 'chart-sparsity');
    const summary = el('div', { class: 'metrics-row' });
    const first = runs[0]!;
    // With several runs, each pruned perplexity is named by its run (the first keeps the test ids).
    const named = (r: PruneRun) => (runs.length > 1 ? `perplexity, ${r.title}` : 'perplexity, pruned');
    summary.append(
      metric('perplexity, dense', num(first.perplexityBefore), 'perplexity-before'),
      metric(named(first), num(first.perplexityAfter), 'perplexity-after'),
      ...runs.slice(1).map((r) => metric(named(r), num(r.perplexityAfter), 'perplexity-after-other')),
      metric('sparsity', `${(first.achievedSparsity * 100).toFixed(1)} %`, 'pruning-sparsity'),
      el('span', { class: 'muted' }, `${first.evalTokens.toLocaleString('en-US')} tokens of ${(first.settings.evalText ?? '').split(/[\\/]/).pop() ?? ''}`),
    );
    sp.append(summary);
    const withCurve = runs.filter((r) => r.curve.length > 0);
    if (withCurve.length === 0) {
      sp.append(el('p', { class: 'empty' }, 'These runs measured no perplexity (no evaluation text).'));
      return;
    }
    const all = withCurve.flatMap((r) => r.curve.map((p) => p.perplexity)).filter((y) => Number.isFinite(y) && y > 0);
    const spread = all.length ? Math.max(...all) / Math.min(...all) : 1;
    this.charts.push(
      new Chart(this.canvas(sp, 'Perplexity against the fraction of weights pruned'), {
        type: 'scatter',
        data: {
          datasets: withCurve.map((r, i) => {
            const color = css(PALETTE[i % PALETTE.length]!, '#d18616');
            return { label: r.title, data: r.curve.map((p) => ({ x: p.sparsity, y: p.perplexity })), borderColor: color, backgroundColor: color, showLine: true };
          }),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          scales: {
            x: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'fraction of weights pruned' } },
            // Perplexity explodes at high sparsity: a log axis keeps the low end readable.
            y: { type: spread > 20 ? 'logarithmic' : 'linear', title: { display: true, text: `perplexity${spread > 20 ? ' (log scale)' : ''}` } },
          },
        },
      }),
    );
    for (const r of withCurve) {
      this.table(sp, 'sparsity-table', `${r.title}: perplexity at each sparsity`, r.title, [
        ['sparsity', r.curve.map((p) => `${Math.round(p.sparsity * 100)} %`)],
        ['perplexity', r.curve.map((p) => num(p.perplexity))],
      ]);
    }
  }

  /**
   * SparC³'s circuit protocol (Hatefi et al. 2025, Fig. 2, 11, 12): IOI accuracy against the
   * fraction pruned on a true numeric axis, one line per method (colour = method, dash = run when
   * runs are overlaid), the mean ± SEM over reference seeds as a band, the dense accuracy × keep as
   * a dashed threshold, and per method the circuit — the sparsest model keeping that share — as a
   * marker. The same numbers are in a table below.
   */
  private pruneCurves(runs: readonly PruneCurveRun[], mode: 'structured' | 'unstructured'): void {
    const sec = this.section(`SparC³ prune curves (${mode})`, 'chart-prune-curve');
    sec.dataset['mode'] = mode;
    const what = mode === 'structured' ? 'fraction of heads and neurons pruned' : 'fraction of MLP weights pruned';
    const methods = [...new Set(runs.flatMap((r) => r.series.filter((x) => x.mode === mode).map((x) => x.method)))];
    const colorOf = (m: (typeof methods)[number]) => css(PALETTE[methods.indexOf(m) % PALETTE.length]!, '#d18616');
    const named = (r: PruneCurveRun, method: string) => (runs.length > 1 ? `${method} · ${r.title}` : method);
    // Chart.js datasets: per series a lower bound (hidden), an upper bound filled down to it (the
    // band), the mean line and the circuit marker; `role` tells them apart for the legend and tests.
    type Role = 'band-low' | 'band-high' | 'line' | 'circuit' | 'threshold';
    const datasets: ({ role: Role } & Record<string, unknown>)[] = [];
    runs.forEach((r, ri) => {
      for (const x of r.series.filter((s) => s.mode === mode)) {
        const color = colorOf(x.method);
        const points = x.rates.map((rate, i) => ({ x: rate, y: x.mean[i]!, sem: x.sem[i] ?? 0 }));
        datasets.push({ role: 'band-low', label: `${named(r, x.method)} − SEM`, data: points.map((p) => ({ x: p.x, y: p.y - p.sem })), borderWidth: 0, pointRadius: 0, showLine: true, fill: false });
        datasets.push({ role: 'band-high', label: `${named(r, x.method)} + SEM`, data: points.map((p) => ({ x: p.x, y: p.y + p.sem })), borderWidth: 0, pointRadius: 0, showLine: true, fill: '-1', backgroundColor: translucent(color, 0.18) });
        datasets.push({ role: 'line', label: named(r, x.method), data: points.map((p) => ({ x: p.x, y: p.y })), borderColor: color, backgroundColor: color, showLine: true, borderDash: ri === 0 ? [] : [6, 3], pointRadius: 2 });
        const at = x.rates.indexOf(x.circuitRate);
        datasets.push({
          role: 'circuit',
          label: `circuit: ${named(r, x.method)} (${Math.round(x.circuitRate * 100)} %)`,
          data: [{ x: x.circuitRate, y: at >= 0 ? x.mean[at]! : r.dense }],
          borderColor: color,
          backgroundColor: color,
          pointStyle: 'triangle',
          pointRadius: 8,
          showLine: false,
        });
      }
      datasets.push({ role: 'threshold', label: `${Math.round(r.settings.keep * 100)} % of dense${runs.length > 1 ? ` · ${r.title}` : ''}`, data: [{ x: 0, y: r.settings.keep * r.dense }, { x: 1, y: r.settings.keep * r.dense }], borderColor: css('--vscode-descriptionForeground', '#888'), borderDash: [2, 4], borderWidth: 1, pointRadius: 0, showLine: true, fill: false });
    });
    const canvas = this.canvas(sec, `IOI accuracy against the ${what}, mean ± SEM over reference seeds, one line per method`);
    const chart = new Chart(canvas, {
      type: 'scatter',
      data: { datasets: datasets.map(({ role: _role, ...d }) => d) as never },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { type: 'linear', min: 0, max: 1, title: { display: true, text: what } },
          y: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'IOI accuracy (logit IO > logit S)' } },
        },
        plugins: {
          // Bands have no legend entry of their own: the line's entry stands for both.
          legend: { labels: { usePointStyle: true, filter: (item) => datasets[item.datasetIndex ?? 0]?.role !== 'band-low' && datasets[item.datasetIndex ?? 0]?.role !== 'band-high' } },
        },
      },
    });
    this.charts.push(chart);
    // What was drawn, read back from the chart itself (the e2e test checks one line per method).
    canvas.dataset['lines'] = JSON.stringify(chart.data.datasets.filter((_, i) => datasets[i]!.role === 'line').map((d) => d.label));
    canvas.dataset['circuits'] = String(datasets.filter((d) => d.role === 'circuit').length);
    canvas.dataset['testid'] = 'prune-curve-canvas';
    for (const r of runs) {
      const series = r.series.filter((x) => x.mode === mode);
      if (series.length === 0) continue;
      const table = el('table', { class: 'curve', 'data-testid': 'prune-curve-table', 'aria-label': `${r.title}: IOI accuracy (mean ± SEM) at each sparsity, ${mode}` });
      table.append(el('caption', {}, `${r.title}: dense accuracy ${num(r.dense)}; ${r.settings.seeds} seed(s) × ${r.settings.reference} reference prompts, ${r.settings.evaluation} evaluation prompts`));
      const head = el('tr');
      for (const h of ['method', ...series[0]!.rates.map((x) => `${Math.round(x * 100)} %`), `circuit (≥ ${Math.round(r.settings.keep * 100)} % of dense)`]) head.append(el('th', { scope: 'col' }, h));
      table.append(head);
      for (const x of series) {
        const tr = el('tr', { 'data-testid': 'prune-curve-row', 'data-method': x.method });
        tr.append(el('th', { scope: 'row' }, `${x.method}${x.scope === 'rowwise' ? ' (row-wise)' : ''}`));
        x.mean.forEach((m, i) => tr.append(el('td', { class: 'num' }, `${num(m)} ± ${num(x.sem[i])}`)));
        tr.append(el('td', { class: 'num', 'data-testid': 'prune-curve-circuit' }, `${Math.round(x.circuitRate * 100)} % pruned (${x.circuitSize.toLocaleString('en-US')} of ${x.total.toLocaleString('en-US')} left)`));
        table.append(tr);
      }
      sec.append(table);
    }
  }

  /** A correction run: each metric before and after, and the relative change as bars. */
  private beforeAfter(run: CorrectRun): void {
    const s = this.section(`Before / after: ${run.title}`, 'chart-correction');
    s.dataset['run'] = run.id;
    const keys = Object.keys(run.before);
    const table = el('table', { class: 'curve', 'data-testid': 'correction-table', 'aria-label': 'Metrics before and after the correction' });
    const head = el('tr');
    for (const h of ['metric', 'before', 'after', 'change']) head.append(el('th', { scope: 'col' }, h));
    table.append(head);
    const change: number[] = [];
    for (const k of keys) {
      const b = run.before[k]!;
      const a = run.after[k] ?? Number.NaN;
      const rel = b !== 0 ? (a / b - 1) * 100 : Number.NaN;
      change.push(rel);
      const tr = el('tr', { 'data-metric': k });
      tr.append(el('th', { scope: 'row' }, k.replace(/_/g, ' ')), el('td', { class: 'num' }, num(b)), el('td', { class: 'num' }, num(a)), el('td', { class: 'num' }, Number.isFinite(rel) ? `${rel >= 0 ? '+' : '−'}${Math.abs(rel).toFixed(1)} %` : '—'));
      table.append(tr);
    }
    s.append(el('p', { class: 'muted' }, `${run.removed.length} of ${run.totalComponents} ${run.settings.unit} removed (${run.settings.mode}).`), table);
    const color = css('--vscode-charts-orange', '#d18616');
    this.charts.push(
      new Chart(this.canvas(s, 'Relative change of each metric after the correction'), {
        type: 'bar',
        data: { labels: keys.map((k) => k.replace(/_/g, ' ')), datasets: [{ label: 'change after correction (%)', data: change.map((x) => (Number.isFinite(x) ? x : 0)), backgroundColor: color }] },
        options: { responsive: true, maintainAspectRatio: false, indexAxis: 'y', scales: { x: { title: { display: true, text: 'change (%)' } } } },
      }),
    );
  }

  private table(parent: HTMLElement, testId: string, label: string, caption: string | null, rows: [string, string[]][]): void {
    const table = el('table', { class: 'curve', 'data-testid': testId, 'aria-label': label });
    if (caption) table.append(el('caption', {}, caption));
    for (const [name, cells] of rows) {
      const tr = el('tr');
      tr.append(el('th', { scope: 'row' }, name));
      for (const c of cells) tr.append(el(name === rows[0]![0] ? 'th' : 'td', name === rows[0]![0] ? { scope: 'col' } : { class: 'num' }, c));
      table.append(tr);
    }
    parent.append(table);
  }

  private section(title: string, testId: string): HTMLElement {
    const s = el('section', { class: 'chart', 'data-testid': testId });
    s.append(el('h3', {}, title));
    this.container.append(s);
    return s;
  }

  private canvas(parent: HTMLElement, label: string): HTMLCanvasElement {
    const box = el('div', { class: 'chart-box' });
    const c = el('canvas', { role: 'img', 'aria-label': label });
    box.append(c);
    parent.append(box);
    return c;
  }
}

/** A theme colour with transparency, for a canvas fill (hex or rgb() from the theme). */
export function translucent(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})([0-9a-f]{2})?$/i.exec(color.trim());
  if (hex) {
    const h = hex[1]!.length === 3 ? [...hex[1]!].map((c) => c + c).join('') : hex[1]!;
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(color.trim());
  if (rgb) {
    const [r, g, b] = rgb[1]!.split(/[\s,/]+/).filter(Boolean);
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  return color;
}

function metric(label: string, value: string, testId: string): HTMLElement {
  const d = el('div', { class: 'metric' });
  d.append(el('span', { class: 'metric-label' }, label), el('span', { class: 'metric-value', 'data-testid': testId }, value));
  return d;
}
