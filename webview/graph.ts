/**
 * The circuit graph: cytoscape with computed (preset) positions — a transformer circuit already
 * has coordinates. Layers run bottom to top on a labelled axis (input at the bottom, then per
 * layer a row of attention heads and above it the MLP row, logits at the top); heads sit left to
 * right by index, neurons spread over their MLP row. Components that were candidates but are not
 * in the circuit are drawn as small ghosts, so the circuit reads against the whole model. Edge
 * width follows |relevance|; the sign is shown by colour *and* line style (solid positive,
 * dashed negative); ablated nodes are faded with a dashed outline and an "off" label suffix.
 * A legend names every mark, a hover card gives each node's and edge's numbers, and colours
 * come from VS Code's theme variables (re-read when the theme changes).
 */
import cytoscape from 'cytoscape';
import { impliedEdges, type CircuitEdge, type CircuitGraph, type CircuitNode } from '../src/circuits/discovery/graph';
import { parseComponentId } from '../src/models/componentIds';
import { el } from './controls';

const X_GAP = 90;
const Y_GAP = 70;
/** Where the layer axis labels sit, left of the first head. */
const AXIS_X = -X_GAP;
/** Neuron labels are drawn only when a layer has this few neurons in the circuit (else: hover). */
const MAX_LABELLED_NEURONS = 6;
/** Ghost neurons are drawn only up to this many (a neuron-level model has thousands). */
const MAX_GHOST_NEURONS = 1024;

/** Labels smaller than this on screen are not drawn (cytoscape 'min-zoomed-font-size'). */
const MIN_LABEL_PX = 7;
/** The on-screen label size the fit aims for. */
const LABEL_PX = 11;
/** The largest label font in model units: "a11.h11" stays narrower than X_GAP and clear of the row above. */
const MAX_LABEL_FONT = 18;

type Kind = CircuitNode['kind'];

/** Row of a node: 0 = input, 2l+1 = attention of layer l, 2l+2 = MLP of layer l, 2L+1 = logits. */
export function rowOf(kind: Kind, layer: number, layers: number): number {
  switch (kind) {
    case 'input':
      return 0;
    case 'logits':
      return 2 * layers + 1;
    case 'head':
      return 2 * layer + 1;
    case 'mlp':
    case 'neuron':
      return 2 * layer + 2;
  }
}

function rowLabel(row: number, layers: number): string {
  if (row === 0) return 'input';
  if (row === 2 * layers + 1) return 'logits';
  const layer = Math.floor((row - 1) / 2);
  return row % 2 === 1 ? `L${layer} attn` : `L${layer} MLP`;
}

/** Edges that pass the top-k and threshold filters (threshold relative to the largest |relevance|). */
export function visibleEdges(edges: readonly CircuitEdge[], topK: number, threshold: number): CircuitEdge[] {
  const max = edges.reduce((m, e) => Math.max(m, Math.abs(e.relevance)), 0);
  return [...edges]
    .filter((e) => max === 0 || Math.abs(e.relevance) >= threshold * max)
    .sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance))
    .slice(0, topK);
}

/** The candidates of a circuit: the scored components (`scores`), else the graph's own nodes. */
export function candidateScores(graph: CircuitGraph): Map<string, number> {
  if (graph.scores) return new Map(Object.entries(graph.scores));
  return new Map(graph.nodes.filter((n) => n.kind !== 'input' && n.kind !== 'logits').map((n) => [n.id, n.relevance]));
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

function theme() {
  return {
    fg: cssVar('--vscode-editor-foreground', '#cccccc'),
    muted: cssVar('--vscode-descriptionForeground', '#999999'),
    bg: cssVar('--vscode-editor-background', '#1e1e1e'),
    head: cssVar('--vscode-charts-purple', '#b180d7'),
    mlp: cssVar('--vscode-charts-green', '#89d185'),
    io: cssVar('--vscode-charts-yellow', '#cca700'),
    pos: cssVar('--vscode-charts-red', '#f14c4c'),
    neg: cssVar('--vscode-charts-blue', '#3794ff'),
    focus: cssVar('--vscode-focusBorder', '#007fd4'),
    ghost: cssVar('--vscode-disabledForeground', '#888888'),
    font: cssVar('--vscode-font-family', 'sans-serif'),
  };
}

export interface GraphCallbacks {
  select(id: string | null): void;
  toggleAblation(id: string): void;
}

export interface GraphOptions {
  readonly topK: number;
  readonly threshold: number;
  readonly ablated: ReadonlySet<string>;
  readonly pinned: ReadonlySet<string>;
  readonly selected: string | null;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(3);
}

/** What the test hook returns: boxes in rendered (canvas) pixels. */
export interface GraphSnapshot {
  readonly width: number;
  readonly height: number;
  /** The canvas element's size now (after a resize, until cytoscape has refitted, it differs from `fitted`). */
  readonly container: { w: number; h: number };
  readonly zoom: number;
  readonly fitted: { w: number; h: number } | null;
  /** Labels whose rendered font is smaller than this are not drawn ('min-zoomed-font-size'). */
  readonly minLabelPx: number;
  readonly nodes: {
    id: string;
    classes: string;
    label: string;
    fontPx: number;
    box: { x1: number; y1: number; x2: number; y2: number };
    labelBox: { x1: number; y1: number; x2: number; y2: number } | null;
    /** The label's halo: the opacity of its background box in the canvas colour (0 = none). */
    labelHalo: number;
    /** 'auto': cytoscape draws every edge beneath the nodes and their labels. */
    zCompare: string;
  }[];
  /** Each edge as drawn, source endpoint → midpoint → target endpoint, in canvas pixels. */
  readonly edges: { id: string; points: [number, number][]; zCompare: string }[];
}

export class GraphView {
  private cy: cytoscape.Core | null = null;
  private key = '';
  private readonly stage: HTMLElement;
  private readonly canvasBox: HTMLElement;
  private readonly card: HTMLElement;
  private graph: CircuitGraph | null = null;
  private ranks = new Map<string, number>();
  private scores = new Map<string, number>();
  /** The canvas size of the last fit (read by the e2e layout test through `__circuitLensGraph`). */
  private fitted: { w: number; h: number } | null = null;
  /** Label font in model units, chosen at each fit so labels read at LABEL_PX on screen when they can. */
  private labelFont = 10;

  constructor(
    container: HTMLElement,
    private readonly callbacks: GraphCallbacks,
  ) {
    // The legend above a stage that holds the canvas, the Fit button and the hover card.
    this.stage = el('div', { class: 'graph-stage' });
    this.canvasBox = el('div', { class: 'graph-canvas' });
    this.card = el('div', { class: 'hovercard', role: 'tooltip', 'data-testid': 'hovercard' });
    this.card.hidden = true;
    const fit = el('button', { class: 'graph-fit', type: 'button', title: 'Fit the whole circuit in view', 'data-testid': 'fit' }, 'Fit');
    fit.addEventListener('click', () => this.fit());
    this.stage.append(this.canvasBox, fit, this.card);
    container.append(legend(), this.stage);
    // A read-only test hook: the e2e layout test reads the rendered boxes back from cytoscape
    // (test/e2e/layout.test.ts). Defining a function costs nothing until it is called.
    (window as unknown as Record<string, unknown>)['__circuitLensGraph'] = () => this.snapshot();
    new MutationObserver(() => this.restyle()).observe(document.body, { attributes: true, attributeFilter: ['class'] });
    // Refit whenever the panel (or the split beside it) changes size.
    new ResizeObserver(() => {
      if (!this.cy || this.stage.offsetWidth === 0) return;
      this.cy.resize();
      this.fit();
    }).observe(this.stage);
  }

  render(graph: CircuitGraph, opts: GraphOptions): { nodes: number; edges: number } {
    this.graph = graph;
    const layers = graph.model.nLayers;
    const heads = graph.model.nHeads;
    const width = Math.max(1, heads - 1) * X_GAP;
    const y = (row: number) => (2 * layers + 1 - row) * Y_GAP;
    const inCircuit = new Set(graph.nodes.map((n) => n.id));
    this.scores = candidateScores(graph);
    const absolute = graph.selection.absolute;
    const ranked = [...this.scores.entries()].sort((a, b) => (absolute ? Math.abs(b[1]) - Math.abs(a[1]) : b[1] - a[1]));
    this.ranks = new Map(ranked.map(([id], i) => [id, i + 1]));
    const maxR = graph.nodes.reduce((m, n) => (n.kind === 'input' || n.kind === 'logits' ? m : Math.max(m, Math.abs(n.relevance))), 0) || 1;

    // Neurons of a layer spread over the MLP row, in index order.
    const neuronsByLayer = new Map<number, number[]>();
    const addNeuron = (layer: number, neuron: number) => neuronsByLayer.set(layer, [...(neuronsByLayer.get(layer) ?? []), neuron]);
    for (const n of graph.nodes) if (n.kind === 'neuron' && n.neuron !== undefined) addNeuron(n.layer, n.neuron);
    const ghosts: { id: string; kind: Kind; layer: number; head?: number; neuron?: number }[] = [];
    let ghostNeurons = 0;
    for (const id of this.scores.keys()) {
      if (inCircuit.has(id)) continue;
      const p = parseComponentId(id);
      if (!p || p.layer === null || p.kind === 'input' || p.kind === 'logits') continue;
      if (p.kind === 'neuron' && ++ghostNeurons > MAX_GHOST_NEURONS) continue;
      ghosts.push({ id, kind: p.kind, layer: p.layer, ...(p.head !== undefined ? { head: p.head } : {}), ...(p.neuron !== undefined ? { neuron: p.neuron } : {}) });
      if (p.kind === 'neuron' && p.neuron !== undefined) addNeuron(p.layer, p.neuron);
    }
    for (const list of neuronsByLayer.values()) list.sort((a, b) => a - b);
    const xOf = (kind: Kind, layer: number, head?: number, neuron?: number): number => {
      if (kind === 'head') return (head ?? 0) * X_GAP;
      if (kind === 'neuron') {
        const list = neuronsByLayer.get(layer) ?? [];
        const i = list.indexOf(neuron ?? 0);
        return list.length <= 1 ? width / 2 : (i * width) / (list.length - 1);
      }
      return width / 2;
    };
    const circuitNeurons = (layer: number) => graph.nodes.filter((n) => n.kind === 'neuron' && n.layer === layer).length;

    const elements: cytoscape.ElementDefinition[] = [];
    // The layer axis: one label per row, left of the heads.
    for (let row = 0; row <= 2 * layers + 1; row++) {
      elements.push({ group: 'nodes', data: { id: `axis-${row}`, label: rowLabel(row, layers) }, position: { x: AXIS_X, y: y(row) }, classes: 'axis', selectable: false, grabbable: false });
    }
    for (const g of ghosts) {
      elements.push({
        group: 'nodes',
        data: { id: g.id, label: '' },
        position: { x: xOf(g.kind, g.layer, g.head, g.neuron), y: y(rowOf(g.kind, g.layer, layers)) },
        classes: `ghost ${g.kind}`,
        selectable: false,
        grabbable: false,
      });
    }
    for (const n of graph.nodes) {
      const classes = [n.kind, opts.ablated.has(n.id) ? 'ablated' : '', opts.pinned.has(n.id) ? 'pinned' : ''].filter(Boolean).join(' ');
      const labelled = n.kind !== 'neuron' || circuitNeurons(n.layer) <= MAX_LABELLED_NEURONS;
      const io = n.kind === 'input' || n.kind === 'logits';
      elements.push({
        group: 'nodes',
        data: { id: n.id, label: labelled ? `${n.id}${opts.ablated.has(n.id) ? ' (off)' : ''}` : '', size: io ? 26 : (n.kind === 'neuron' ? 10 : 16) + 22 * Math.sqrt(Math.abs(n.relevance) / maxR) },
        position: { x: io ? width / 2 : xOf(n.kind, n.layer, n.head, n.neuron), y: y(rowOf(n.kind, n.layer, layers)) },
        classes,
        grabbable: false,
      });
    }
    const edges = visibleEdges(graph.edges, opts.topK, opts.threshold).filter((e) => inCircuit.has(e.source) && inCircuit.has(e.target));
    const maxW = edges.reduce((m, e) => Math.max(m, Math.abs(e.relevance)), 0) || 1;
    for (const e of edges) {
      elements.push({ group: 'edges', data: { id: e.id, source: e.source, target: e.target, width: 1 + 7 * (Math.abs(e.relevance) / maxW) }, classes: e.relevance >= 0 ? 'pos' : 'neg' });
    }
    // A node-level circuit without scored edges: its components still talk through the residual
    // stream, each reading from everything before it. Those edges are drawn faint and unscored.
    if (graph.edges.length === 0) {
      // input → logits (the direct path) is left out: it would cross every row.
      for (const e of impliedEdges(graph).filter((x) => !(x.source === 'input' && x.target === 'logits'))) {
        elements.push({ group: 'edges', data: { id: `${e.source}->${e.target}`, source: e.source, target: e.target, width: 1 }, classes: 'implied' });
      }
    }
    const key = `${graph.created ?? ''}|${graph.model.name}|${layers}|${heads}|${graph.nodes.length}`;
    if (!this.cy || this.key !== key) {
      this.cy?.destroy();
      this.cy = cytoscape({
        container: this.canvasBox,
        elements,
        layout: { name: 'preset', fit: true, padding: 28 },
        style: this.style(),
        wheelSensitivity: 0.3,
        minZoom: 0.1,
        maxZoom: 4,
        boxSelectionEnabled: false,
        autoungrabify: true,
      });
      this.key = key;
      this.listen(this.cy);
      this.fit();
    } else {
      const cy = this.cy;
      cy.batch(() => {
        cy.elements().remove();
        cy.add(elements);
      });
    }
    this.cy.$('node').unselect();
    if (opts.selected) this.cy.getElementById(opts.selected).select();
    return { nodes: graph.nodes.length, edges: edges.length };
  }

  private listen(cy: cytoscape.Core): void {
    const real = (n: cytoscape.NodeSingular) => !n.hasClass('ghost') && !n.hasClass('axis');
    cy.on('tap', 'node', (evt) => {
      const n = evt.target as cytoscape.NodeSingular;
      if (real(n)) this.callbacks.select(n.id());
    });
    cy.on('tap', (evt) => {
      if (evt.target === cy) this.callbacks.select(null);
    });
    cy.on('dbltap', 'node', (evt) => {
      const n = evt.target as cytoscape.NodeSingular;
      if (real(n) && n.id() !== 'input' && n.id() !== 'logits') this.callbacks.toggleAblation(n.id());
    });
    cy.on('mouseover', 'node, edge', (evt) => {
      const target = evt.target as cytoscape.SingularElementReturnValue;
      if (target.isNode() && target.hasClass('axis')) return;
      this.showCard(target.id(), target.isEdge(), evt.renderedPosition ?? target.renderedPosition?.() ?? { x: 0, y: 0 });
    });
    cy.on('mouseout', 'node, edge', () => (this.card.hidden = true));
    cy.on('viewport', () => (this.card.hidden = true));
  }

  /** The hover card: every number of a node or an edge, as text. */
  private showCard(id: string, isEdge: boolean, at: { x: number; y: number }): void {
    const g = this.graph;
    if (!g) return;
    const rows: [string, string][] = [];
    let title = id;
    if (isEdge) {
      const e = g.edges.find((x) => x.id === id);
      if (!e) {
        const [source, target] = id.split('->');
        this.card.replaceChildren(el('strong', {}, `${source} → ${target}`), el('p', {}, 'Implied by the residual stream: this circuit scored nodes, not edges.'));
        this.place(at);
        return;
      }
      title = `${e.source} → ${e.target}`;
      rows.push(['relevance', `${e.relevance >= 0 ? '+' : '−'}${fmt(Math.abs(e.relevance))}`]);
      rows.push(['sign', e.relevance >= 0 ? 'supports the metric' : 'works against it']);
    } else {
      const n = g.nodes.find((x) => x.id === id);
      const p = parseComponentId(id);
      rows.push(['kind', n?.kind ?? p?.kind ?? '']);
      if (p?.layer !== undefined && p.layer !== null && p.layer >= 0) rows.push(['layer', String(p.layer)]);
      if (p?.head !== undefined) rows.push(['head', String(p.head)]);
      if (p?.neuron !== undefined) rows.push(['neuron', String(p.neuron)]);
      if (n) rows.push(['relevance', fmt(n.relevance)]);
      const score = this.scores.get(id);
      if (score !== undefined) {
        if (!n) rows.push(['score', fmt(score)]);
        rows.push(['rank', `${this.ranks.get(id)} of ${this.scores.size} candidates`]);
      }
      rows.push(['in circuit', n ? 'yes' : 'no']);
      if (n) {
        const ins = g.edges.filter((e) => e.target === id).length;
        const outs = g.edges.filter((e) => e.source === id).length;
        rows.push(['edges', `${ins} in · ${outs} out`]);
      }
    }
    this.card.replaceChildren(el('strong', {}, title));
    const dl = el('dl');
    for (const [k, v] of rows) dl.append(el('dt', {}, k), el('dd', {}, v));
    this.card.append(dl);
    this.place(at);
  }

  private place(at: { x: number; y: number }): void {
    this.card.hidden = false;
    const box = this.stage.getBoundingClientRect();
    const x = Math.min(at.x + 14, Math.max(0, box.width - this.card.offsetWidth - 4));
    const yPos = Math.min(at.y + 14, Math.max(0, box.height - this.card.offsetHeight - 4));
    this.card.style.left = `${x}px`;
    this.card.style.top = `${yPos}px`;
  }

  fit(): void {
    const cy = this.cy;
    if (!cy) return;
    cy.fit(undefined, 28);
    // A large model fits at a small zoom (a 12-layer GPT-2 at 0.44 in 1,600×850 px), where 10-unit
    // labels would fall under MIN_LABEL_PX and vanish. Grow the font in model units, up to the
    // size at which a head label ("a11.h11") still fits between two heads (X_GAP) and clears the
    // node row above (Y_GAP), then fit again with the new label boxes. Twice suffices: the
    // font changes the bounding box only at the axis labels' edge.
    for (let i = 0; i < 2; i++) {
      const font = Math.min(MAX_LABEL_FONT, Math.max(10, LABEL_PX / cy.zoom()));
      if (Math.abs(font - this.labelFont) < 0.25) break;
      this.labelFont = font;
      cy.style().update();
      cy.fit(undefined, 28);
    }
    this.fitted = { w: cy.width(), h: cy.height() };
  }

  /** Rendered boxes of every node and of its label alone, in canvas pixels (test hook). */
  private snapshot(): GraphSnapshot | null {
    const cy = this.cy;
    if (!cy) return null;
    const box = (b: cytoscape.BoundingBox12 & cytoscape.BoundingBoxWH) => ({ x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2 });
    return {
      width: cy.width(),
      height: cy.height(),
      container: { w: this.canvasBox.clientWidth, h: this.canvasBox.clientHeight },
      zoom: cy.zoom(),
      fitted: this.fitted,
      minLabelPx: MIN_LABEL_PX,
      nodes: cy.nodes().map((n) => {
        const label = String(n.data('label') ?? '');
        return {
          id: n.id(),
          classes: n.classes().join(' '),
          label,
          fontPx: Number.parseFloat(String(n.style('font-size'))) * cy.zoom(),
          box: box(n.renderedBoundingBox({ includeLabels: true })),
          labelBox: label ? box(n.renderedBoundingBox({ includeNodes: false, includeEdges: false, includeLabels: true })) : null,
          labelHalo: Number.parseFloat(String(n.style('text-background-opacity'))),
          zCompare: String(n.style('z-index-compare')),
        };
      }),
      edges: cy.edges().map((e) => {
        const pt = (p: cytoscape.Position): [number, number] => [p.x, p.y];
        return { id: e.id(), points: [pt(e.renderedSourceEndpoint()), pt(e.renderedMidpoint()), pt(e.renderedTargetEndpoint())], zCompare: String(e.style('z-index-compare')) };
      }),
    };
  }

  png(): string | null {
    return this.cy ? this.cy.png({ full: true, scale: 2, bg: theme().bg }) : null;
  }

  private restyle(): void {
    this.cy?.style(this.style());
  }

  private style(): cytoscape.StylesheetJson {
    const t = theme();
    return [
      {
        selector: 'node',
        style: {
          width: 'data(size)',
          height: 'data(size)',
          label: 'data(label)',
          color: t.fg,
          'font-family': t.font,
          'font-size': () => this.labelFont,
          'text-valign': 'bottom',
          'text-margin-y': 3,
          'text-background-color': t.bg,
          'text-background-opacity': 0.7,
          'text-background-padding': '1px',
          // Labels vanish when zoomed out far enough to collide, rather than overlap.
          'min-zoomed-font-size': MIN_LABEL_PX,
          'background-color': t.head,
          'border-width': 1,
          'border-color': t.fg,
        },
      },
      { selector: 'node.mlp', style: { shape: 'round-rectangle', 'background-color': t.mlp } },
      { selector: 'node.neuron', style: { 'background-color': t.mlp } },
      { selector: 'node.input, node.logits', style: { shape: 'diamond', 'background-color': t.io } },
      { selector: 'node.ghost', style: { width: 8, height: 8, 'background-color': t.ghost, 'background-opacity': 0.3, 'border-width': 0, label: '' } },
      { selector: 'node.ghost.neuron', style: { width: 4, height: 4 } },
      {
        selector: 'node.axis',
        style: { width: 1, height: 1, 'background-opacity': 0, 'border-width': 0, color: t.muted, 'text-valign': 'center', 'text-halign': 'left', 'text-background-opacity': 0, 'font-size': () => this.labelFont, events: 'no' },
      },
      { selector: 'node.ablated', style: { 'background-opacity': 0.25, 'border-style': 'dashed', 'border-width': 2 } },
      { selector: 'node.pinned', style: { 'border-width': 3, 'border-color': t.io, 'border-style': 'double' } },
      { selector: 'node:selected', style: { 'border-width': 3, 'border-color': t.focus } },
      {
        selector: 'edge',
        style: {
          width: 'data(width)',
          'curve-style': 'bezier',
          'target-arrow-shape': 'triangle',
          'arrow-scale': 0.8,
          opacity: 0.7,
        },
      },
      { selector: 'edge.pos', style: { 'line-color': t.pos, 'target-arrow-color': t.pos, 'line-style': 'solid' } },
      { selector: 'edge.neg', style: { 'line-color': t.neg, 'target-arrow-color': t.neg, 'line-style': 'dashed' } },
      { selector: 'edge.implied', style: { 'line-color': t.ghost, 'target-arrow-color': t.ghost, 'line-style': 'dotted', opacity: 0.45, 'arrow-scale': 0.6 } },
      { selector: 'edge:selected, edge:active', style: { opacity: 1 } },
    ];
  }
}

/** The legend: one swatch per mark, drawn by CSS classes (main.css) from the theme's colours. */
function legend(): HTMLElement {
  const box = el('div', { class: 'legend', 'data-testid': 'legend', 'aria-label': 'Legend' });
  const items: [string, string][] = [
    ['head', 'attention head'],
    ['mlp', 'MLP block'],
    ['neuron', 'MLP neuron'],
    ['io', 'input / logits'],
    ['ghost', 'candidate not in the circuit'],
    ['ablated', 'ablated (double-click)'],
    ['edge-pos', 'edge, positive relevance'],
    ['edge-neg', 'edge, negative relevance'],
    ['edge-implied', 'implied edge (not scored)'],
  ];
  for (const [cls, text] of items) {
    const row = el('span', { class: 'legend-item' });
    row.append(el('span', { class: `swatch swatch-${cls}`, 'aria-hidden': 'true' }), el('span', {}, text));
    box.append(row);
  }
  box.append(el('span', { class: 'legend-note' }, 'Node size: |relevance|. Edge width: |relevance|.'));
  return box;
}
