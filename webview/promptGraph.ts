/**
 * The prompt graph panel app (its own bundle, dist/promptGraph.js). Draws one prompt's
 * position-resolved attribution graph Neuronpedia-style: token positions left to right (the
 * token text is the x axis), layers bottom to top (embeddings at the bottom, then each layer's
 * heads and its MLP block, the logit on top), heads offset within their layer cell by head
 * index, error nodes in a column of their own on the right. Edge width ∝ |relevance|, colour by
 * sign (theme colours). A click on a node opens its side card: its strongest inputs and outputs,
 * for a head its attention pattern with each key's OV and QK relevance, and "Ablate at this
 * position & rerun", which the host runs in the engine worker.
 *
 * Every incoming message is validated with the shared protocol; model-derived text (tokens,
 * ids) is set with `textContent`, never as HTML.
 */
import './main.css';
import { parseWith } from '../src/protocol/schema';
import type { PromptAblationResult, PromptGraphWire } from '../src/protocol/promptGraph';
import { FromPromptPanel, type FromPromptPanelType, type PromptPanelState, promptPanelStateSchema, ToPromptPanel, toPromptPanelMessages } from '../src/protocol/webview';
import { button, el, progressRing, select } from './controls';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
const api: VsCodeApi = typeof acquireVsCodeApi === 'function' ? acquireVsCodeApi() : { postMessage: (m) => console.log('→ host', m), getState: () => undefined, setState: () => undefined };

function send<P>(type: FromPromptPanelType & { create(p: P): { method: string; params: P } }, params: P): void {
  api.postMessage(type.create(params));
}

type Node = PromptGraphWire['nodes'][number];
type Edge = PromptGraphWire['edges'][number];
const SVG = 'http://www.w3.org/2000/svg';

let state: PromptPanelState = { graph: null, title: '', selected: null, ablations: [], lens: null, steers: [] };
let scale = -3;
let busy = false;
let ablation: 'zero' | 'mean' = 'zero';

// ── layout of the page ──
const app = document.getElementById('app')!;
app.classList.add('pg-app');
const header = el('header', { class: 'toolbar' });
const title = el('h2', { class: 'title', 'data-testid': 'pg-title' }, 'Prompt Graph');
const summary = el('div', { class: 'summary', 'data-testid': 'pg-summary', 'aria-live': 'polite' });
const ring = progressRing();
ring.hidden = true;
const lensBtn = button('Logit lens', () => send(FromPromptPanel.lens, undefined), { secondary: true, testId: 'pg-lens-button', title: 'Top token read from the residual stream after each layer, per position (circuit-lens lens)' });
header.append(title, summary, el('span', { class: 'spacer' }), ring, lensBtn.element);
const legend = el('div', { class: 'pg-legend muted' });
legend.append(
  legendItem('pg-swatch pos', 'raises the target'),
  legendItem('pg-swatch neg', 'lowers it'),
  legendItem('pg-key head', 'head'),
  legendItem('pg-key mlp', 'MLP'),
  legendItem('pg-key input', 'embedding'),
  legendItem('pg-key error', 'error (not conserved)'),
  legendItem('pg-key outlined', 'negative relevance'),
);
const main = el('main', { class: 'main' });
const graphBox = el('div', { class: 'pg-graph', 'data-testid': 'pg-graph' });
const card = el('aside', { class: 'inspector pg-card', 'data-testid': 'pg-card', 'aria-label': 'Selected node' });
main.append(graphBox, card);
const lensBox = el('section', { class: 'pg-lens', 'data-testid': 'pg-lens', 'aria-label': 'Logit lens' });
const status = el('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'pg-status' });
const empty = el('p', { class: 'empty', 'data-testid': 'pg-empty' }, 'No prompt graph yet. Select a prompt and run “Circuit Lens: Open Prompt Graph”.');
app.append(header, legend, empty, main, lensBox, status);

function legendItem(cls: string, text: string): HTMLElement {
  const item = el('span', { class: 'pg-legend-item' });
  item.append(el('span', { class: cls }), el('span', {}, text));
  return item;
}

// ── helpers ──
function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(3) : x.toExponential(2);
}
const signed = (x: number) => `${x >= 0 ? '+' : ''}${fmt(x)}`;
/** Token text made visible: a leading space as ␣, newlines as ↵. */
const visible = (t: string | null | undefined) => (t ?? '?').replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥');

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function commit(next: Partial<PromptPanelState>): void {
  state = { ...state, ...next };
  api.setState(state);
  render();
}

function select_(id: string | null): void {
  if (state.selected === id) return;
  commit({ selected: id });
  send(FromPromptPanel.select, { id });
}

// ── the graph ──
interface Placed {
  readonly node: Node;
  readonly x: number;
  readonly y: number;
  readonly r: number;
}

const MARGIN = { left: 64, right: 56, top: 28, bottom: 92 };
const ROW = 46;

/** Rows bottom to top: 0 embeddings, then per layer its heads and its MLP block, then the logit. */
function rowOf(n: Node, layers: number): number {
  switch (n.kind) {
    case 'input':
      return 0;
    case 'head':
      return 1 + 2 * n.layer;
    case 'mlp':
      return 2 + 2 * n.layer;
    case 'error':
      // err{l} sits between layer l's MLP and the next layer; err{L} (the final norm) below the logit.
      return Math.min(2 + 2 * n.layer, 1 + 2 * layers);
    default:
      return 1 + 2 * layers;
  }
}

function layout(graph: PromptGraphWire, width: number): { placed: Map<string, Placed>; colW: number; T: number; height: number; width: number } {
  const T = graph.prompt.ids.length;
  const L = graph.model.nLayers;
  const H = Math.max(1, graph.model.nHeads);
  const colW = Math.max(34, Math.min(90, (width - MARGIN.left - MARGIN.right) / T));
  const rows = 2 + 2 * L;
  const height = MARGIN.top + MARGIN.bottom + (rows - 1) * ROW;
  const y = (row: number) => MARGIN.top + (rows - 1 - row) * ROW;
  const maxAbs = Math.max(1e-12, ...graph.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').map((n) => Math.abs(n.relevance)));
  const placed = new Map<string, Placed>();
  for (const n of graph.nodes) {
    const row = rowOf(n, L);
    let x: number;
    if (n.kind === 'error') x = MARGIN.left + T * colW + MARGIN.right / 2;
    else if (n.kind === 'head') x = MARGIN.left + n.position! * colW + (colW * (n.head! + 1)) / (H + 1);
    else x = MARGIN.left + (n.position! + 0.5) * colW;
    const r = n.kind === 'head' || n.kind === 'mlp' ? 3 + 5 * Math.sqrt(Math.abs(n.relevance) / maxAbs) : n.kind === 'logits' ? 8 : 5;
    placed.set(n.id, { node: n, x, y: y(row), r });
  }
  return { placed, colW, T, height, width: MARGIN.left + T * colW + MARGIN.right };
}

function renderGraph(graph: PromptGraphWire): void {
  const { placed, colW, T, height, width } = layout(graph, graphBox.clientWidth || 900);
  const L = graph.model.nLayers;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'pg-svg', role: 'group', 'aria-label': `Prompt graph: ${graph.nodes.length} nodes, ${graph.edges.length} edges` });
  const rows = 2 + 2 * L;
  const y = (row: number) => MARGIN.top + (rows - 1 - row) * ROW;

  // Grid: one column per token position, one band per layer; row labels on the left.
  const grid = svg('g', { class: 'pg-grid' });
  for (let t = 0; t <= T; t++) grid.append(svg('line', { x1: MARGIN.left + t * colW, x2: MARGIN.left + t * colW, y1: MARGIN.top - ROW / 2, y2: height - MARGIN.bottom + ROW / 2 }));
  for (let l = 0; l <= L; l++) {
    const yy = y(2 * l) - ROW / 2;
    grid.append(svg('line', { x1: MARGIN.left, x2: MARGIN.left + T * colW, y1: yy, y2: yy }));
  }
  const rowLabel = (row: number, text: string) => {
    const t = svg('text', { x: MARGIN.left - 6, y: y(row) + 4, 'text-anchor': 'end', class: 'pg-axis' });
    t.textContent = text;
    grid.append(t);
  };
  rowLabel(0, 'embed');
  for (let l = 0; l < L; l++) {
    rowLabel(1 + 2 * l, `L${l} attn`);
    rowLabel(2 + 2 * l, `L${l} mlp`);
  }
  rowLabel(1 + 2 * L, 'logit');
  const errLabel = svg('text', { x: MARGIN.left + T * colW + MARGIN.right / 2, y: height - MARGIN.bottom + ROW / 2 + 14, 'text-anchor': 'middle', class: 'pg-axis' });
  errLabel.textContent = 'error';
  grid.append(errLabel);
  // The x axis: the prompt's tokens, in order.
  const tokens = graph.prompt.tokens ?? graph.prompt.ids.map(String);
  for (let t = 0; t < T; t++) {
    const x = MARGIN.left + (t + 0.5) * colW;
    const yy = height - MARGIN.bottom + ROW / 2 + 8;
    const label = svg('text', { x, y: yy, transform: `rotate(-45 ${x} ${yy})`, 'text-anchor': 'end', class: `pg-token${t === graph.target.position ? ' target' : ''}`, 'data-testid': 'pg-token', 'data-position': t });
    label.textContent = visible(tokens[t]);
    const tip = svg('title');
    tip.textContent = `position ${t}: ${JSON.stringify(tokens[t] ?? '')}`;
    label.append(tip);
    grid.append(label);
  }
  root.append(grid);

  // Edges, weakest first so the strongest are drawn on top.
  const maxEdge = Math.max(1e-12, ...graph.edges.map((e) => Math.abs(e.relevance)));
  const selected = state.selected;
  const edges = [...graph.edges].sort((a, b) => Math.abs(a.relevance) - Math.abs(b.relevance));
  const edgeLayer = svg('g', { class: 'pg-edges' });
  for (const e of edges) {
    const s = placed.get(e.source);
    const t = placed.get(e.target);
    if (!s || !t) continue;
    const touches = selected !== null && (e.source === selected || e.target === selected);
    const dy = Math.max(12, (s.y - t.y) / 2);
    const path = svg('path', {
      d: `M${s.x},${s.y - s.r} C${s.x},${s.y - dy} ${t.x},${t.y + dy} ${t.x},${t.y + t.r}`,
      class: `pg-edge ${e.relevance >= 0 ? 'pos' : 'neg'}${selected === null ? '' : touches ? ' hot' : ' dim'}`,
      'stroke-width': (0.4 + 5.6 * (Math.abs(e.relevance) / maxEdge)).toFixed(2),
      'data-edge': e.id,
    });
    const tip = svg('title');
    tip.textContent = `${e.source} → ${e.target}: ${signed(e.relevance)}${e.paths ? ` (OV ${fmt(e.paths.ov)}, QK key ${fmt(e.paths.qkKey)}, QK query ${fmt(e.paths.qkQuery)})` : ''}`;
    path.append(tip);
    edgeLayer.append(path);
  }
  root.append(edgeLayer);

  // Nodes.
  const nodeLayer = svg('g', { class: 'pg-nodes' });
  for (const p of placed.values()) {
    const n = p.node;
    const g = svg('g', {
      class: `pg-node ${n.kind}${n.id === selected ? ' selected' : ''}${n.relevance < 0 ? ' negative' : ''}`,
      'data-node': n.id,
      'data-testid': 'pg-node',
      tabindex: 0,
      role: 'button',
      'aria-label': `${n.id}, relevance ${signed(n.relevance)}`,
    });
    let shape: SVGElement;
    if (n.kind === 'mlp' || n.kind === 'input' || n.kind === 'logits') shape = svg('rect', { x: p.x - p.r, y: p.y - p.r, width: 2 * p.r, height: 2 * p.r, rx: n.kind === 'mlp' ? 1 : 3 });
    else if (n.kind === 'error') shape = svg('path', { d: `M${p.x},${p.y - p.r - 1} L${p.x + p.r + 1},${p.y} L${p.x},${p.y + p.r + 1} L${p.x - p.r - 1},${p.y} Z` });
    else shape = svg('circle', { cx: p.x, cy: p.y, r: p.r });
    const tip = svg('title');
    tip.textContent = `${n.id}: ${signed(n.relevance)}`;
    g.append(shape, tip);
    if (n.kind === 'head' || n.kind === 'mlp' || n.kind === 'error' || n.kind === 'logits') {
      const label = svg('text', { x: p.x, y: p.y - p.r - 3, 'text-anchor': 'middle', class: 'pg-label' });
      label.textContent = n.kind === 'head' ? `h${n.head}` : n.kind === 'mlp' ? `m${n.layer}` : n.kind === 'error' ? n.id : 'logit';
      g.append(label);
    }
    g.addEventListener('click', (ev) => {
      ev.stopPropagation();
      select_(n.id);
    });
    g.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        select_(n.id);
      }
    });
    nodeLayer.append(g);
  }
  root.append(nodeLayer);
  root.addEventListener('click', () => select_(null));
  graphBox.replaceChildren(root);
}

// ── the side card ──
function edgeList(testId: string, edges: Edge[], other: (e: Edge) => string): HTMLElement {
  const list = el('ul', { class: 'pg-edges-list', 'data-testid': testId });
  const top = [...edges].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance)).slice(0, 8);
  if (top.length === 0) list.append(el('li', { class: 'muted' }, 'none kept'));
  for (const e of top) {
    const li = el('li');
    const link = el('a', { href: '#', 'data-node-link': other(e) }, other(e));
    link.addEventListener('click', (ev) => {
      ev.preventDefault();
      select_(other(e));
    });
    li.append(link, el('span', { class: `pg-num ${e.relevance >= 0 ? 'pos' : 'neg'}` }, ` ${signed(e.relevance)}`));
    if (e.paths) li.append(el('span', { class: 'muted' }, ` OV ${fmt(e.paths.ov)} · QK k ${fmt(e.paths.qkKey)} · QK q ${fmt(e.paths.qkQuery)}`));
    list.append(li);
  }
  return list;
}

function attentionTable(graph: PromptGraphWire, id: string): HTMLElement {
  const box = el('section', { class: 'pg-attention', 'data-testid': 'pg-attention' });
  const a = graph.attention[id];
  box.append(el('h4', {}, 'Attention pattern'));
  if (!a) {
    box.append(el('p', { class: 'muted' }, 'Not recorded for this head.'));
    return box;
  }
  const tokens = graph.prompt.tokens ?? graph.prompt.ids.map(String);
  box.append(el('p', { class: 'muted' }, `Query at ${id.split('@')[1]}; QK relevance through the query: ${signed(a.qkQuery)}`));
  const table = el('table', { class: 'nodes pg-attn-table' });
  const head = el('tr');
  for (const h of ['key', 'token', 'p', 'OV', 'QK key']) head.append(el('th', {}, h));
  table.append(head);
  const maxOv = Math.max(1e-12, ...a.ov.map(Math.abs), ...a.qkKey.map(Math.abs));
  // Keys by attention, strongest first; the weakest (p < 1 %, no relevance) are left out.
  const order = a.keys.map((_, i) => i).sort((i, j) => a.pattern[j]! - a.pattern[i]!);
  let shown = 0;
  for (const i of order) {
    if (shown >= 12 || (a.pattern[i]! < 0.01 && Math.abs(a.ov[i]!) < 0.01 * maxOv && Math.abs(a.qkKey[i]!) < 0.01 * maxOv)) continue;
    shown++;
    const tr = el('tr', { 'data-testid': 'pg-attention-row', 'data-key': String(a.keys[i]) });
    const bar = el('span', { class: 'pg-bar' });
    bar.style.width = `${Math.round(40 * a.pattern[i]!)}px`;
    const p = el('td', { class: 'num' });
    p.append(bar, el('span', {}, ` ${a.pattern[i]!.toFixed(2)}`));
    tr.append(el('td', { class: 'num' }, String(a.keys[i])), el('td', {}, visible(tokens[a.keys[i]!])), p, el('td', { class: `num ${a.ov[i]! >= 0 ? 'pos' : 'neg'}` }, signed(a.ov[i]!)), el('td', { class: `num ${a.qkKey[i]! >= 0 ? 'pos' : 'neg'}` }, signed(a.qkKey[i]!)));
    table.append(tr);
  }
  box.append(table);
  return box;
}

function ablationBox(graph: PromptGraphWire, n: Node): HTMLElement {
  const box = el('section', { class: 'pg-ablate' });
  box.append(el('h4', {}, 'Ablate at this position'));
  const pick = select(
    [
      { value: 'zero', label: 'zero' },
      { value: 'mean', label: 'mean over positions' },
    ] as const,
    ablation,
    (v) => (ablation = v),
    'Ablation',
  );
  const run = button('Ablate at this position & rerun', () => send(FromPromptPanel.ablate, { node: n.id, ablation }), { testId: 'pg-ablate', title: `Re-run the prompt with ${n.id} replaced at position ${n.position}` });
  run.setDisabled(busy);
  const actions = el('div', { class: 'actions' });
  actions.append(pick, run.element);
  box.append(actions);
  const results = state.ablations.filter((a) => a.node === n.id);
  for (const r of results) box.append(ablationResult(graph, n, r));
  return box;
}

function ablationResult(graph: PromptGraphWire, n: Node, r: PromptAblationResult): HTMLElement {
  const what = graph.target.foil !== undefined ? `logit(${visible(graph.target.text)}) − logit(${visible(graph.target.foilText)})` : `logit(${visible(graph.target.text)})`;
  const box = el('div', { class: 'pg-result', 'data-testid': 'pg-ablation-result', 'data-ablation': r.ablation });
  box.append(el('p', { class: 'muted' }, `${what} with ${n.id} ${r.ablation}-ablated`));
  const dl = el('dl');
  const row = (k: string, v: string, testId?: string) => dl.append(el('dt', {}, k), el('dd', testId ? { 'data-testid': testId } : {}, v));
  row('before', fmt(r.full), 'pg-before');
  row('after', fmt(r.ablated), 'pg-after');
  row('measured drop', signed(r.full - r.ablated));
  row('predicted', `${signed(n.relevance)} (relevance)`);
  box.append(dl);
  return box;
}

function steerBox(n: Node): HTMLElement {
  const box = el('section', { class: 'pg-steer' });
  box.append(el('h4', {}, 'Steer and continue'));
  const input = el('input', { type: 'number', step: '0.5', value: String(scale), 'aria-label': 'Scale', 'data-testid': 'pg-scale', class: 'pg-scale' });
  input.addEventListener('change', () => {
    const v = Number(input.value);
    if (Number.isFinite(v)) scale = v;
  });
  const run = button('Scale & continue', () => send(FromPromptPanel.steer, { node: n.id, scale }), { secondary: true, testId: 'pg-steer', title: `Multiply ${n.id} by the scale (0 ablates) and continue the prompt greedily` });
  run.setDisabled(busy);
  const actions = el('div', { class: 'actions' });
  actions.append(el('span', { class: 'muted' }, '×'), input, run.element);
  box.append(actions);
  for (const r of (state.steers ?? []).filter((x) => `${x.node}@${x.position}` === n.id)) {
    const dl = el('dl', { class: 'pg-result', 'data-testid': 'pg-steer-result' });
    dl.append(el('dt', {}, 'clean'), el('dd', { 'data-testid': 'pg-clean' }, visible(r.clean.text ?? r.clean.ids.join(','))));
    dl.append(el('dt', {}, `× ${r.scale}`), el('dd', { 'data-testid': 'pg-steered' }, visible(r.steered.text ?? r.steered.ids.join(','))));
    box.append(dl);
  }
  return box;
}

function renderLens(graph: PromptGraphWire): void {
  const lens = state.lens;
  lensBox.hidden = !lens;
  if (!lens) return;
  const tokens = graph.prompt.tokens ?? graph.prompt.ids.map(String);
  const table = el('table', { class: 'nodes pg-lens-table' });
  const head = el('tr');
  head.append(el('th', {}, 'logit lens'));
  for (const t of lens.positions) head.append(el('th', {}, visible(tokens[t])));
  table.append(head);
  // The last layer on top, as in the graph.
  for (let l = lens.layers.length - 1; l >= 0; l--) {
    const tr = el('tr', { 'data-testid': 'pg-lens-row', 'data-layer': lens.layers[l]! });
    tr.append(el('th', {}, lens.layers[l]!));
    lens.positions.forEach((t, i) => {
      const top = lens.top[l]![i]!;
      const cell = el('td', { 'data-position': String(t), title: top.map((x) => `${JSON.stringify(x.token ?? x.id)} ${(100 * x.probability).toFixed(1)} %`).join('\n') }, visible(top[0]?.token ?? String(top[0]?.id)));
      cell.style.opacity = String(0.45 + 0.55 * (top[0]?.probability ?? 0));
      tr.append(cell);
    });
    table.append(tr);
  }
  lensBox.replaceChildren(table);
}

function renderCard(graph: PromptGraphWire): void {
  const id = state.selected;
  const n = id ? graph.nodes.find((x) => x.id === id) : undefined;
  if (!n) {
    card.replaceChildren(el('p', { class: 'muted' }, 'Click a node to see its inputs and outputs, a head’s attention pattern, and to ablate it at its position.'));
    return;
  }
  const tokens = graph.prompt.tokens ?? graph.prompt.ids.map(String);
  const dl = el('dl');
  const row = (k: string, v: string) => dl.append(el('dt', {}, k), el('dd', {}, v));
  row('kind', n.kind);
  if (n.position !== null) row('position', `${n.position} (${visible(tokens[n.position])})`);
  row(n.kind === 'logits' ? 'explained' : 'relevance', signed(n.relevance));
  if (n.inflow !== undefined) row('inflow', signed(n.inflow));
  if (n.error !== undefined) row('absorbed', signed(n.error));
  if (n.influence !== undefined) row('cumulative share', `${(100 * n.influence).toFixed(1)} %`);
  const children: HTMLElement[] = [el('h3', { 'data-testid': 'pg-card-title' }, n.id), dl];
  children.push(el('h4', {}, 'Inputs (strongest kept edges in)'), edgeList('pg-inputs', graph.edges.filter((e) => e.target === n.id), (e) => e.source));
  children.push(el('h4', {}, 'Outputs (strongest kept edges out)'), edgeList('pg-outputs', graph.edges.filter((e) => e.source === n.id), (e) => e.target));
  if (n.kind === 'head') children.push(attentionTable(graph, n.id));
  if (n.kind === 'head' || n.kind === 'mlp') children.push(ablationBox(graph, n), steerBox(n));
  card.replaceChildren(...children);
}

function render(): void {
  const graph = state.graph;
  empty.hidden = graph !== null;
  main.hidden = graph === null;
  legend.hidden = graph === null;
  lensBox.hidden = graph === null || !state.lens;
  ring.hidden = !busy;
  lensBtn.setDisabled(graph === null || busy);
  if (!graph) {
    title.textContent = 'Prompt Graph';
    summary.textContent = '';
    return;
  }
  title.textContent = state.title || 'Prompt Graph';
  const t = graph.target;
  const target = t.foil !== undefined ? `${visible(t.text)} − ${visible(t.foilText)}` : visible(t.text);
  const s = graph.selection;
  summary.textContent = `${graph.method.name} · target ${target} at ${t.position} = ${fmt(t.value)} · ${s.keptNodes} of ${s.candidates} nodes · ${s.keptEdges} edges · completeness ${graph.metrics.completeness.toFixed(2)} · conservation error ${graph.conservation.relativeError.toExponential(1)}`;
  renderGraph(graph);
  renderCard(graph);
  renderLens(graph);
}

// ── messages ──
window.addEventListener('message', (event: MessageEvent) => {
  const checked = toPromptPanelMessages.validate(event.data);
  if (!checked.ok) {
    status.textContent = `Ignored a malformed message: ${checked.reason}`;
    return;
  }
  const msg = checked.message;
  if (ToPromptPanel.state.is(msg)) {
    status.textContent = '';
    const last = msg.params.ablations.at(-1);
    const before = state.ablations.length;
    commit(msg.params);
    if (last && msg.params.ablations.length > before) status.textContent = `${last.node} (${last.ablation}): ${fmt(last.full)} → ${fmt(last.ablated)}`;
  } else if (ToPromptPanel.busy.is(msg)) {
    busy = msg.params.busy;
    render();
  } else if (ToPromptPanel.rejected.is(msg)) {
    status.textContent = `The host rejected a message: ${msg.params.reason}`;
  }
});

let resizeTimer: number | undefined;
new ResizeObserver(() => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => state.graph && renderGraph(state.graph), 100);
}).observe(graphBox);

// A reloaded webview shows its last state at once; the host replays the authoritative one.
try {
  const saved = api.getState();
  if (saved) state = parseWith(promptPanelStateSchema, saved, 64 << 20);
} catch {
  /* stale or foreign state: wait for the host */
}
render();
send(FromPromptPanel.ready, undefined);
