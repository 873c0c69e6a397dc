/**
 * The circuit graph panel app. It holds a copy of the host's `PanelState`, renders the graph,
 * the table (accessible alternative), the inspector, metrics and charts, and tells the host about
 * every user change. Every incoming message is validated with the shared protocol; anything
 * model-derived (token text, labels) is set with `textContent`, never as HTML.
 */
import './main.css';
import type { CircuitGraph, CircuitNode } from '../src/circuits/discovery/graph';
import { parseWith } from '../src/protocol/schema';
import type { VerificationSummary } from '../src/protocol/shapes';
import { FromWebview, type PanelState, panelStateSchema, ToWebview, toWebviewMessages } from '../src/protocol/webview';
import { ChartsView } from './charts';
import { button, el, progressRing, select, slider } from './controls';
import { candidateScores, GraphView } from './graph';
import { loadState, saveState, send, sendReady } from './vscodeApi';

let state: PanelState = { circuit: null, title: '', verification: null, runs: [], shownRuns: [], ablated: [], pinned: [], selected: null, threshold: 0, topK: 1 << 17, view: 'graph' };
let busy = false;
let rejected = 0;

const app = document.getElementById('app')!;

// ── layout ──
const header = el('header', { class: 'toolbar' });
const title = el('h2', { class: 'title', 'data-testid': 'title' }, 'Circuit Graph');
const summary = el('div', { class: 'summary', 'aria-live': 'polite' });
const nodeCount = el('span', { 'data-testid': 'node-count' }, '0');
const edgeCount = el('span', { 'data-testid': 'edge-count' }, '0');
const ablatedCount = el('span', { 'data-testid': 'ablated-count' }, '0');
summary.append(el('span', {}, 'Nodes '), nodeCount, el('span', {}, ' · Edges '), edgeCount, el('span', {}, ' · Ablated '), ablatedCount);

const verifyBtn = button('Verify', () => verify(), { testId: 'verify', title: 'Re-run the metric with the circuit (and your ablations)' });
const ring = progressRing();
ring.hidden = true;
const resetBtn = button('Reset ablations', () => setAblated([]), { secondary: true, testId: 'reset' });
const exportSelect = select(
  [
    { value: 'none', label: 'Export…' },
    { value: 'circuit-lens', label: 'Circuit Lens JSON' },
    { value: 'eap-ig', label: 'EAP-IG JSON' },
    { value: 'neuronpedia', label: 'Neuronpedia JSON' },
    { value: 'png', label: 'PNG image' },
  ] as const,
  'none',
  (v) => exportAs(v),
  'Export the circuit',
);
const viewSelect = select(
  [
    { value: 'graph', label: 'Graph' },
    { value: 'table', label: 'Table' },
    { value: 'charts', label: 'Charts' },
  ] as const,
  'graph',
  (v) => setView(v),
  'View',
);
viewSelect.dataset['testid'] = 'view-select';
header.append(title, summary, el('span', { class: 'spacer' }), ring, verifyBtn.element, resetBtn.element, exportSelect, viewSelect);

const controls = el('div', { class: 'controls' });
const topK = slider('Top-k edges', { min: 1, max: 500, step: 1, value: 1, format: String, testId: 'topk' }, (v) => preview({ topK: v }), (v) => commitFilters({ topK: v }));
const threshold = slider('Threshold', { min: 0, max: 1, step: 0.01, value: 0, format: (v) => v.toFixed(2), testId: 'threshold' }, (v) => preview({ threshold: v }), (v) => commitFilters({ threshold: v }));
controls.append(topK.element, threshold.element);

const metrics = el('section', { class: 'metrics', 'data-testid': 'metrics', 'aria-label': 'Metrics' });
const main = el('main', { class: 'main' });
const graphBox = el('div', { class: 'graph', 'data-testid': 'graph', role: 'img', 'aria-label': 'Circuit graph; use the Table view for a keyboard-accessible list' });
const tableBox = el('div', { class: 'table-view', 'data-testid': 'table' });
const chartsBox = el('div', { class: 'charts', 'data-testid': 'charts' });
const inspector = el('aside', { class: 'inspector', 'data-testid': 'inspector', 'aria-label': 'Inspector' });
main.append(graphBox, tableBox, chartsBox, inspector);
const status = el('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'status' });
const empty = el('p', { class: 'empty', 'data-testid': 'empty' }, 'No circuit yet. Run “Circuit Lens: Discover Circuit…” or “Open Circuit Graph”.');
app.append(header, controls, metrics, empty, main, status);

const graph = new GraphView(graphBox, { select: (id) => selectNode(id), toggleAblation: (id) => toggleAblation(id) });
const charts = new ChartsView(chartsBox, (ids) => {
  commit({ shownRuns: ids });
  send(FromWebview.showRuns, { ids });
});

// ── state changes ──
function commit(next: Partial<PanelState>): void {
  state = { ...state, ...next };
  saveState(state);
  render();
}

/** Which circuit is shown (a different one clears the status line: no stale "Verified"). */
function circuitKey(s: PanelState): string {
  return s.circuit ? `${s.title}|${s.circuit.created ?? ''}|${s.circuit.nodes.length}` : '';
}

function isAblatable(n: Pick<CircuitNode, 'kind'>): boolean {
  return n.kind === 'head' || n.kind === 'mlp' || n.kind === 'neuron';
}

function selectNode(id: string | null): void {
  if (state.selected === id) return;
  commit({ selected: id });
  send(FromWebview.selectNode, { id });
}

function setAblated(ids: string[]): void {
  const before = new Set(state.ablated);
  commit({ ablated: ids });
  const removed = [...before].filter((x) => !ids.includes(x));
  if (removed.length) send(FromWebview.ablate, { ids: removed, ablated: false });
  const added = ids.filter((x) => !before.has(x));
  if (added.length) send(FromWebview.ablate, { ids: added, ablated: true });
}

function toggleAblation(id: string): void {
  const set = new Set(state.ablated);
  const on = !set.has(id);
  if (on) set.add(id);
  else set.delete(id);
  commit({ ablated: [...set] });
  send(FromWebview.ablate, { ids: [id], ablated: on });
}

function togglePin(id: string): void {
  const set = new Set(state.pinned);
  const on = !set.has(id);
  if (on) set.add(id);
  else set.delete(id);
  commit({ pinned: [...set] });
  send(FromWebview.pin, { id, pinned: on });
}

let previewTimer: number | undefined;
function preview(p: { topK?: number; threshold?: number }): void {
  state = { ...state, ...p };
  window.clearTimeout(previewTimer);
  previewTimer = window.setTimeout(render, 30);
}

function commitFilters(p: { topK?: number; threshold?: number }): void {
  commit(p);
  send(FromWebview.setThreshold, { threshold: state.threshold, topK: state.topK });
}

function setView(view: PanelState['view']): void {
  commit({ view });
  send(FromWebview.setView, { view });
}

function verify(): void {
  if (!state.circuit || busy) return;
  send(FromWebview.verify, { ablate: [...state.ablated] });
}

function exportAs(format: 'none' | 'circuit-lens' | 'eap-ig' | 'neuronpedia' | 'png'): void {
  (exportSelect as HTMLElement & { value: string }).value = 'none';
  if (format === 'none' || !state.circuit) return;
  if (format === 'png') {
    const dataUrl = graph.png();
    if (dataUrl) send(FromWebview.export, { format: 'png', dataUrl });
    return;
  }
  // The whole circuit, exactly as the CLI would write it.
  send(FromWebview.export, { format });
}

// ── rendering ──
function fmt(x: number | undefined | null): string {
  if (x === undefined || x === null) return '—';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(3);
}

const metricItem = (label: string, value: string, testId: string) => {
  const d = el('div', { class: 'metric' });
  d.append(el('span', { class: 'metric-label' }, label), el('span', { class: 'metric-value', 'data-testid': testId }, value));
  return d;
};

/** The latest verification, else the metrics measured when the circuit was discovered. */
function renderMetrics(c: CircuitGraph, v: VerificationSummary | null): void {
  metrics.replaceChildren();
  const m = v ?? c.metrics;
  if (!m || m.faithfulness === undefined) {
    metrics.append(el('span', { class: 'muted', 'data-testid': 'not-verified' }, 'Not verified yet — press Verify.'));
    return;
  }
  metrics.append(
    el('span', { class: 'metric-name' }, `${m.metric ?? c.task.metric}${m.ablation ? ` · ${m.ablation} ablation` : ''}`),
    metricItem('full model', fmt(m.full), 'metric-full'),
    metricItem('circuit', fmt(m.circuit), 'metric-circuit'),
    metricItem('with your ablations', fmt(v?.ablated?.circuit), 'metric-ablated'),
    metricItem('faithfulness', fmt(m.faithfulness), 'faithfulness'),
    metricItem('completeness', fmt(m.completeness), 'completeness'),
    metricItem('CPR', fmt(m.cpr), 'cpr'),
    metricItem('CMD', fmt(m.cmd), 'cmd'),
    el('span', { class: 'muted', 'data-testid': 'metrics-source' }, v ? 'verified in this session' : 'measured at discovery'),
  );
  if (v?.ablated?.nodes.length) metrics.append(el('span', { class: 'muted' }, `ablated: ${v.ablated.nodes.join(', ')} (faithfulness ${fmt(v.ablated.faithfulness)})`));
}

function renderInspector(c: CircuitGraph): void {
  inspector.replaceChildren();
  const n = c.nodes.find((x) => x.id === state.selected);
  if (!n) {
    inspector.append(el('p', { class: 'muted' }, 'Click a node to inspect it; double-click to toggle its ablation. Hover for numbers.'));
    return;
  }
  const ablated = state.ablated.includes(n.id);
  const pinned = state.pinned.includes(n.id);
  inspector.append(el('h3', { 'data-testid': 'inspector-id' }, n.id));
  const dl = el('dl');
  const row = (k: string, v: string) => dl.append(el('dt', {}, k), el('dd', {}, v));
  row('kind', n.kind);
  if (isAblatable(n)) row('layer', String(n.layer));
  if (n.head !== undefined) row('head', String(n.head));
  if (n.neuron !== undefined) row('neuron', String(n.neuron));
  row('relevance', fmt(n.relevance));
  row('state', `${ablated ? 'ablated' : 'active'}${pinned ? ', pinned' : ''}`);
  inspector.append(dl);
  const actions = el('div', { class: 'actions' });
  if (isAblatable(n)) actions.append(button(ablated ? 'Restore' : 'Ablate', () => toggleAblation(n.id), { testId: 'toggle-ablation' }).element);
  actions.append(button(pinned ? 'Unpin' : 'Pin', () => togglePin(n.id), { secondary: true, testId: 'toggle-pin' }).element);
  inspector.append(actions);
  const edgesOf = (dir: 'in' | 'out') =>
    c.edges
      .filter((e) => (dir === 'in' ? e.target === n.id : e.source === n.id))
      .sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance))
      .slice(0, 8);
  for (const [label, list, other] of [
    ['Strongest inputs', edgesOf('in'), 'source'],
    ['Strongest outputs', edgesOf('out'), 'target'],
  ] as const) {
    if (list.length === 0) continue;
    inspector.append(el('h4', {}, label));
    const ul = el('ul');
    for (const e of list) {
      const li = el('li');
      const link = el('a', { href: '#', role: 'button' }, e[other]);
      link.addEventListener('click', (ev) => {
        ev.preventDefault();
        selectNode(e[other]);
      });
      li.append(link, el('span', { class: 'muted' }, ` ${e.relevance >= 0 ? '+' : '−'}${fmt(Math.abs(e.relevance))}`));
      ul.append(li);
    }
    inspector.append(ul);
  }
}

function renderTable(c: CircuitGraph): void {
  tableBox.replaceChildren();
  const table = el('table', { class: 'nodes', 'aria-label': 'Circuit nodes' });
  const head = el('tr');
  for (const h of ['Node', 'Kind', 'Layer', 'Head / neuron', 'Relevance', 'Rank', 'Ablated', 'Pinned']) head.append(el('th', { scope: 'col' }, h));
  table.append(el('thead'), el('tbody'));
  table.tHead!.append(head);
  const scores = candidateScores(c);
  const ranked = [...scores.entries()].sort((a, b) => (c.selection.absolute ? Math.abs(b[1]) - Math.abs(a[1]) : b[1] - a[1])).map(([id]) => id);
  const rank = new Map(ranked.map((id, i) => [id, i + 1]));
  const sorted = [...c.nodes].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance));
  for (const n of sorted) {
    const tr = el('tr', { 'data-node': n.id, tabindex: '0' });
    if (n.id === state.selected) tr.setAttribute('aria-selected', 'true');
    const r = rank.get(n.id);
    tr.append(
      el('td', {}, n.id),
      el('td', {}, n.kind),
      el('td', {}, n.kind === 'input' || n.kind === 'logits' ? '' : String(n.layer)),
      el('td', {}, n.head !== undefined ? String(n.head) : n.neuron !== undefined ? String(n.neuron) : ''),
      el('td', { class: 'num' }, fmt(n.relevance)),
      el('td', { class: 'num' }, r !== undefined ? `${r} / ${scores.size}` : ''),
    );
    const ablateCell = el('td');
    if (isAblatable(n)) {
      const cb = el('input', { type: 'checkbox', 'aria-label': `Ablate ${n.id}` });
      cb.checked = state.ablated.includes(n.id);
      cb.addEventListener('change', () => toggleAblation(n.id));
      ablateCell.append(cb);
    }
    const pinCell = el('td');
    const pin = el('input', { type: 'checkbox', 'aria-label': `Pin ${n.id}` });
    pin.checked = state.pinned.includes(n.id);
    pin.addEventListener('change', () => togglePin(n.id));
    pinCell.append(pin);
    tr.append(ablateCell, pinCell);
    tr.addEventListener('click', (e) => {
      if ((e.target as HTMLElement).tagName !== 'INPUT') selectNode(n.id);
    });
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') selectNode(n.id);
      if (e.key === ' ' && isAblatable(n)) {
        e.preventDefault();
        toggleAblation(n.id);
      }
    });
    table.tBodies[0]!.append(tr);
  }
  tableBox.append(table);
}

let lastChartsKey = '';
let lastCircuitKey = '';
function render(): void {
  const c = state.circuit;
  const key = circuitKey(state);
  if (key !== lastCircuitKey) {
    // Another circuit: nothing said about the previous one stays on screen.
    if (lastCircuitKey !== '') setStatus('');
    lastCircuitKey = key;
  }
  // Without a circuit the panel can still show runs (Charts).
  const view: PanelState['view'] = c ? state.view : 'charts';
  const nothing = c === null && state.runs.length === 0;
  empty.hidden = !nothing;
  main.hidden = nothing;
  // The edge filters only matter when the circuit has scored edges.
  controls.hidden = c === null || view !== 'graph' || c.edges.length === 0;
  metrics.hidden = c === null;
  // Without a circuit (runs only) the circuit's tools are hidden, not just disabled.
  for (const e of [summary, verifyBtn.element, resetBtn.element, exportSelect, viewSelect]) e.hidden = c === null;
  verifyBtn.setDisabled(c === null || busy);
  resetBtn.setDisabled(state.ablated.length === 0);
  ring.hidden = !busy;
  ablatedCount.textContent = String(state.ablated.length);
  (viewSelect as HTMLElement & { value: string }).value = view;
  graphBox.hidden = view !== 'graph';
  tableBox.hidden = view !== 'table';
  chartsBox.hidden = view !== 'charts';
  inspector.hidden = view === 'charts' || c === null;
  if (!c) {
    title.textContent = state.runs.length ? 'Runs' : 'Circuit Graph';
    title.title = '';
    nodeCount.textContent = '0';
    edgeCount.textContent = '0';
    delete document.body.dataset['circuit'];
  } else {
    title.textContent = state.title || `${c.task.name} · ${c.method.name}`;
    title.title = `${c.task.name} (${c.task.metric}, ${c.task.examples} prompts) · ${c.method.name}${c.method.aggregation ? ` ${c.method.aggregation}` : ''} · ${c.granularity} · ${c.model.name}${c.created ? ` · ${c.created}` : ''}`;
    topK.set(Math.min(state.topK, Math.max(1, c.edges.length)), Math.max(1, c.edges.length));
    threshold.set(state.threshold);
    if (view === 'graph') {
      const shown = graph.render(c, { topK: state.topK, threshold: state.threshold, ablated: new Set(state.ablated), pinned: new Set(state.pinned), selected: state.selected });
      edgeCount.textContent = String(shown.edges);
    } else edgeCount.textContent = String(c.edges.length);
    nodeCount.textContent = String(c.nodes.length);
    renderMetrics(c, state.verification);
    renderInspector(c);
    if (view === 'table') renderTable(c);
    document.body.dataset['circuit'] = key;
  }
  const chartsKey = `${key}|${view}|${JSON.stringify(state.shownRuns)}|${state.runs.map((r) => r.id).join(',')}|${state.verification?.faithfulness ?? ''}`;
  if (view === 'charts' && chartsKey !== lastChartsKey) charts.render({ circuit: c, verification: state.verification, runs: state.runs, shownRuns: state.shownRuns });
  lastChartsKey = view === 'charts' ? chartsKey : '';
}

function setStatus(text: string): void {
  status.textContent = text;
}

// ── messages from the host ──
window.addEventListener('message', (event: MessageEvent) => {
  // Only the host may talk to the app: its messages come from VS Code's outer webview frame, which
  // has our origin (VS Code hides `window.parent` from webview content, so compare origins).
  const source = event.source === null ? 'null' : event.source === window ? 'self' : 'frame';
  const fromHost = source === 'frame' && event.origin === window.origin;
  const checked = fromHost ? toWebviewMessages.validate(event.data) : ({ ok: false, reason: `message not from the extension host (source ${source}, origin ${event.origin})` } as const);
  if (!checked.ok) {
    rejected++;
    document.body.dataset['rejected'] = String(rejected);
    setStatus(`Ignored a malformed message: ${checked.reason}`);
    console.warn('circuit-lens: rejected message', checked.reason);
    return;
  }
  const msg = checked.message;
  if (ToWebview.state.is(msg)) {
    state = msg.params;
    saveState(state);
    render();
  } else if (ToWebview.verification.is(msg)) {
    state = { ...state, verification: msg.params };
    saveState(state);
    render();
    setStatus(`Verified: faithfulness ${fmt(msg.params.faithfulness)}${msg.params.ablated ? `, ${fmt(msg.params.ablated.faithfulness)} with your ablations` : ''}`);
  } else if (ToWebview.verifying.is(msg)) {
    busy = msg.params.busy;
    document.body.dataset['busy'] = String(busy);
    if (busy) setStatus('Verifying…');
    else if (status.textContent === 'Verifying…') setStatus('');
    render();
  } else if (ToWebview.error.is(msg)) {
    setStatus(`Error: ${msg.params.message}`);
  } else if (ToWebview.rejected.is(msg)) {
    setStatus(`The extension ignored a message from this panel: ${msg.params.reason}`);
  }
});

// Restore what the panel showed before a reload, then ask the host for the authoritative state.
try {
  const saved = loadState();
  if (saved) state = parseWith(panelStateSchema, saved, 64 << 20);
} catch (err) {
  console.warn('circuit-lens: ignoring saved state', err);
}
render();
sendReady();
