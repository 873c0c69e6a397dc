/**
 * The circuit graph: cytoscape with computed (preset) positions — a transformer circuit already
 * has coordinates. Layers run bottom to top (input, then per layer the heads and above them the
 * MLP, logits at the top); heads sit left to right by index. Edge width follows |relevance|; the
 * sign is shown by colour *and* line style (solid positive, dashed negative); ablated nodes are
 * faded with a dashed outline and an "off" label suffix.
 */
import cytoscape from 'cytoscape';
import type { Circuit, GraphEdge, GraphNode } from '../src/protocol';

const X_GAP = 90;
const Y_GAP = 70;

export function positionOf(n: Pick<GraphNode, 'kind' | 'layer' | 'head'>, layers: number, heads: number): { x: number; y: number } {
  const width = Math.max(1, heads) * X_GAP;
  const top = 0;
  const bottom = (2 * layers + 1) * Y_GAP;
  switch (n.kind) {
    case 'input':
      return { x: width / 2 - X_GAP / 2, y: bottom };
    case 'logits':
      return { x: width / 2 - X_GAP / 2, y: top };
    case 'head':
      return { x: (n.head ?? 0) * X_GAP, y: bottom - (2 * n.layer + 1) * Y_GAP + (n.head ?? 0) % 2 * 8 };
    case 'mlp':
      return { x: width / 2 - X_GAP / 2, y: bottom - (2 * n.layer + 2) * Y_GAP };
  }
}

/** Edges that pass the top-k and threshold filters (threshold relative to the largest |weight|). */
export function visibleEdges(edges: readonly GraphEdge[], topK: number, threshold: number): GraphEdge[] {
  const max = edges.reduce((m, e) => Math.max(m, Math.abs(e.weight)), 0);
  return [...edges]
    .filter((e) => max === 0 || Math.abs(e.weight) >= threshold * max)
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight))
    .slice(0, topK);
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

function theme() {
  return {
    fg: cssVar('--vscode-editor-foreground', '#cccccc'),
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

export class GraphView {
  private cy: cytoscape.Core | null = null;
  private key = '';

  constructor(
    private readonly container: HTMLElement,
    private readonly callbacks: GraphCallbacks,
  ) {
    new MutationObserver(() => this.restyle()).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  render(circuit: Circuit, opts: { topK: number; threshold: number; ablated: ReadonlySet<string>; pinned: ReadonlySet<string>; selected: string | null }): { nodes: number; edges: number } {
    const edges = visibleEdges(circuit.edges, opts.topK, opts.threshold);
    const maxW = edges.reduce((m, e) => Math.max(m, Math.abs(e.weight)), 0) || 1;
    const maxR = circuit.nodes.reduce((m, n) => Math.max(m, Math.abs(n.relevance)), 0) || 1;
    const inCircuit = new Set(circuit.nodes.map((n) => n.id));
    const elements: cytoscape.ElementDefinition[] = [];
    // Faint placeholders for components outside the circuit give the layer grid.
    for (let l = 0; l < circuit.layers; l++) {
      for (let h = 0; h < circuit.heads; h++) {
        const id = `a${l}.h${h}`;
        if (!inCircuit.has(id)) elements.push({ group: 'nodes', data: { id, label: '' }, position: positionOf({ kind: 'head', layer: l, head: h }, circuit.layers, circuit.heads), classes: 'ghost', selectable: false, grabbable: false });
      }
      if (!inCircuit.has(`m${l}`)) elements.push({ group: 'nodes', data: { id: `m${l}`, label: '' }, position: positionOf({ kind: 'mlp', layer: l }, circuit.layers, circuit.heads), classes: 'ghost mlp', selectable: false, grabbable: false });
    }
    for (const n of circuit.nodes) {
      const classes = [n.kind, opts.ablated.has(n.id) ? 'ablated' : '', opts.pinned.has(n.id) ? 'pinned' : ''].filter(Boolean).join(' ');
      elements.push({
        group: 'nodes',
        data: { id: n.id, label: `${n.label ?? n.id}${opts.ablated.has(n.id) ? ' (off)' : ''}`, size: 18 + 22 * Math.sqrt(Math.abs(n.relevance) / maxR) },
        position: positionOf(n, circuit.layers, circuit.heads),
        classes,
        grabbable: true,
      });
    }
    for (const e of edges) {
      if (!inCircuit.has(e.source) || !inCircuit.has(e.target)) continue;
      elements.push({ group: 'edges', data: { id: `${e.source}->${e.target}`, source: e.source, target: e.target, width: 1 + 7 * (Math.abs(e.weight) / maxW) }, classes: e.weight >= 0 ? 'pos' : 'neg' });
    }
    const key = `${circuit.id}|${circuit.layers}|${circuit.heads}`;
    if (!this.cy || this.key !== key) {
      this.cy?.destroy();
      this.cy = cytoscape({
        container: this.container,
        elements,
        layout: { name: 'preset', fit: true, padding: 24 },
        style: this.style(),
        wheelSensitivity: 0.3,
        minZoom: 0.1,
        maxZoom: 4,
        boxSelectionEnabled: false,
      });
      this.key = key;
      this.cy.on('tap', 'node', (evt) => {
        const n = evt.target as cytoscape.NodeSingular;
        if (!n.hasClass('ghost')) this.callbacks.select(n.id());
      });
      this.cy.on('tap', (evt) => {
        if (evt.target === this.cy) this.callbacks.select(null);
      });
      this.cy.on('dbltap', 'node', (evt) => {
        const n = evt.target as cytoscape.NodeSingular;
        if (!n.hasClass('ghost')) this.callbacks.toggleAblation(n.id());
      });
    } else {
      const cy = this.cy;
      cy.batch(() => {
        cy.elements().remove();
        cy.add(elements);
      });
    }
    this.cy.$('node').unselect();
    if (opts.selected) this.cy.getElementById(opts.selected).select();
    return { nodes: circuit.nodes.length, edges: this.cy.edges().length };
  }

  fit(): void {
    this.cy?.fit(undefined, 24);
  }

  resize(): void {
    this.cy?.resize();
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
          'font-size': 11,
          'text-valign': 'bottom',
          'text-margin-y': 3,
          'background-color': t.head,
          'border-width': 1,
          'border-color': t.fg,
        },
      },
      { selector: 'node.mlp', style: { shape: 'round-rectangle', 'background-color': t.mlp } },
      { selector: 'node.input, node.logits', style: { shape: 'diamond', 'background-color': t.io } },
      { selector: 'node.ghost', style: { width: 8, height: 8, 'background-color': t.ghost, 'background-opacity': 0.25, 'border-width': 0, label: '', events: 'no' } },
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
          opacity: 0.75,
        },
      },
      { selector: 'edge.pos', style: { 'line-color': t.pos, 'target-arrow-color': t.pos, 'line-style': 'solid' } },
      { selector: 'edge.neg', style: { 'line-color': t.neg, 'target-arrow-color': t.neg, 'line-style': 'dashed' } },
    ];
  }
}
