/**
 * Charts: faithfulness vs circuit size, per-layer relevance, the head heatmap (a grid of cells
 * with the numbers as text, so it reads without colour) and sparsity vs perplexity. Chart.js
 * with only the parts we register; colours from the theme's `--vscode-charts-*` variables.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import type { Circuit } from '../src/protocol';
import { el } from './controls';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Tooltip, Legend);

const css = (name: string, fallback: string) => getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;

export class ChartsView {
  private charts: Chart[] = [];

  constructor(private readonly container: HTMLElement) {
    new MutationObserver(() => this.lastCircuit && this.render(this.lastCircuit)).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  private lastCircuit: Circuit | null = null;

  render(circuit: Circuit): void {
    this.lastCircuit = circuit;
    for (const c of this.charts) c.destroy();
    this.charts = [];
    this.container.replaceChildren();
    Chart.defaults.color = css('--vscode-foreground', '#cccccc');
    Chart.defaults.borderColor = css('--vscode-panel-border', '#80808059');
    Chart.defaults.font.family = css('--vscode-font-family', 'sans-serif');
    Chart.defaults.animation = false;
    const blue = css('--vscode-charts-blue', '#3794ff');
    const green = css('--vscode-charts-green', '#89d185');
    const purple = css('--vscode-charts-purple', '#b180d7');
    const orange = css('--vscode-charts-orange', '#d18616');

    if (circuit.task === 'pruning') {
      this.sparsity(circuit, orange);
      return;
    }

    // Faithfulness vs size.
    const faith = this.section('Faithfulness vs circuit size', 'chart-faithfulness');
    if (circuit.faithfulnessCurve?.length) {
      this.line(faith, circuit.faithfulnessCurve, 'components kept', 'faithfulness', blue);
    } else faith.append(el('p', { class: 'empty' }, 'No curve for this circuit.'));

    // Per-layer relevance.
    const layers = this.section('Relevance per layer', 'chart-layers');
    const lr = circuit.layerRelevance ?? perLayer(circuit);
    this.charts.push(
      new Chart(this.canvas(layers, 'Relevance per layer: attention and MLP bars for each layer'), {
        type: 'bar',
        data: {
          labels: lr.attn.map((_, i) => `L${i}`),
          datasets: [
            { label: 'attention', data: lr.attn, backgroundColor: purple },
            { label: 'MLP', data: lr.mlp, backgroundColor: green },
          ],
        },
        options: { responsive: true, maintainAspectRatio: false, scales: { y: { title: { display: true, text: 'relevance' } } } },
      }),
    );

    // Head heatmap: a grid with values as text; tint by CSSOM (allowed under our CSP).
    const heat = this.section('Head relevance (layer × head)', 'chart-heads');
    const hr = circuit.headRelevance ?? headMatrix(circuit);
    const maxAbs = Math.max(1e-12, ...hr.flat().map(Math.abs));
    const grid = el('table', { class: 'heatmap', 'data-testid': 'head-heatmap' });
    const head = el('tr');
    head.append(el('th', { scope: 'col' }, ''));
    for (let h = 0; h < (hr[0]?.length ?? 0); h++) head.append(el('th', { scope: 'col' }, `H${h}`));
    grid.append(head);
    for (let l = hr.length - 1; l >= 0; l--) {
      const row = el('tr');
      row.append(el('th', { scope: 'row' }, `L${l}`));
      for (const v of hr[l]!) {
        const cell = el('td', { title: `a${l}: ${v}` }, `${v >= 0 ? '+' : '−'}${Math.abs(v).toPrecision(2)}`);
        const a = Math.min(1, Math.abs(v) / maxAbs);
        cell.style.backgroundColor = `color-mix(in srgb, ${v >= 0 ? 'var(--vscode-charts-red)' : 'var(--vscode-charts-blue)'} ${Math.round(a * 70)}%, transparent)`;
        row.append(cell);
      }
      grid.append(row);
    }
    heat.append(grid);

    this.sparsity(circuit, orange);
  }

  /** Sparsity vs perplexity, with the numbers as a table too (the chart is a canvas). */
  private sparsity(circuit: Circuit, color: string): void {
    const p = circuit.pruning;
    const sp = this.section(p ? `Sparsity vs perplexity (${p.method}, ${p.scope === 'rowwise' ? 'row-wise' : 'global'})` : 'Sparsity vs perplexity', 'chart-sparsity');
    const curve = circuit.sparsityCurve ?? [];
    if (curve.length === 0) {
      sp.append(el('p', { class: 'empty' }, 'No pruning run yet (Circuit Lens: Prune Model…).'));
      return;
    }
    const pct = (x: number) => `${Math.round(x * 100)} %`;
    this.line(sp, curve.map((q) => ({ x: pct(q.x), y: q.y })), 'fraction of weights pruned', 'perplexity', color);
    const table = el('table', { class: 'curve', 'data-testid': 'sparsity-table', 'aria-label': 'Perplexity at each sparsity' });
    const head = el('tr');
    const row = el('tr');
    head.append(el('th', { scope: 'row' }, 'sparsity'));
    row.append(el('th', { scope: 'row' }, 'perplexity'));
    for (const q of curve) {
      head.append(el('th', { scope: 'col' }, pct(q.x)));
      row.append(el('td', { class: 'num' }, Number.isFinite(q.y) ? (q.y >= 1000 ? q.y.toExponential(2) : q.y.toFixed(3)) : String(q.y)));
    }
    table.append(head, row);
    sp.append(table);
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

  private line(parent: HTMLElement, points: readonly { x: number | string; y: number }[], xLabel: string, yLabel: string, color: string): void {
    this.charts.push(
      new Chart(this.canvas(parent, `${yLabel} against ${xLabel}`), {
        type: 'line',
        data: { labels: points.map((p) => String(p.x)), datasets: [{ label: yLabel, data: points.map((p) => p.y), borderColor: color, backgroundColor: color }] },
        options: { responsive: true, maintainAspectRatio: false, scales: { x: { title: { display: true, text: xLabel } }, y: { title: { display: true, text: yLabel } } } },
      }),
    );
  }
}

function perLayer(c: Circuit): { attn: number[]; mlp: number[] } {
  const attn = new Array<number>(c.layers).fill(0);
  const mlp = new Array<number>(c.layers).fill(0);
  for (const n of c.nodes) {
    if (n.kind === 'head' && n.layer < c.layers) attn[n.layer]! += n.relevance;
    if (n.kind === 'mlp' && n.layer < c.layers) mlp[n.layer]! += n.relevance;
  }
  return { attn, mlp };
}

function headMatrix(c: Circuit): number[][] {
  const m = Array.from({ length: c.layers }, () => new Array<number>(c.heads).fill(0));
  for (const n of c.nodes) if (n.kind === 'head' && n.head !== undefined && m[n.layer]) m[n.layer]![n.head] = n.relevance;
  return m;
}
