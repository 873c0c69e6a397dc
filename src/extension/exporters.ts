/**
 * Circuit → file formats for sharing: our own JSON, EAP-IG / MIB circuit JSON and the
 * Neuronpedia / circuit-tracer attribution-graph JSON (see shared notes, ecosystem §6).
 * A `nodes` subset exports the sub-graph they induce.
 */
import type { Circuit } from '../protocol';

export type ExportFormat = 'circuit-lens' | 'neuronpedia' | 'eap-ig';

const GENERATOR = { name: 'Circuit Lens', version: '0.1.0', url: 'https://github.com/circuit-lens/circuit-lens' };

export function subgraph(circuit: Circuit, nodes?: readonly string[]): Circuit {
  if (!nodes || nodes.length === 0) return circuit;
  const keep = new Set(nodes);
  return {
    ...circuit,
    title: `${circuit.title} (sub-graph)`,
    nodes: circuit.nodes.filter((n) => keep.has(n.id)),
    edges: circuit.edges.filter((e) => keep.has(e.source) && keep.has(e.target)),
  };
}

export function exportCircuit(circuit: Circuit, format: ExportFormat, nodes?: readonly string[]): unknown {
  const c = subgraph(circuit, nodes);
  switch (format) {
    case 'circuit-lens':
      return { format: 'circuit-lens/circuit@1', generator: GENERATOR, ...c };
    case 'eap-ig': {
      const inGraph = new Set(c.nodes.map((n) => n.id));
      const outNodes: Record<string, { in_graph: boolean; score: number }> = {};
      for (const n of c.nodes) outNodes[n.id] = { in_graph: true, score: n.relevance };
      for (const id of ['input', 'logits']) if (!outNodes[id]) outNodes[id] = { in_graph: inGraph.has(id), score: 0 };
      const edges: Record<string, { score: number; in_graph: boolean }> = {};
      for (const e of c.edges) edges[`${e.source}->${e.target}`] = { score: e.weight, in_graph: true };
      return { cfg: { n_layers: c.layers, n_heads: c.heads, parallel_attn_mlp: false }, nodes: outNodes, edges };
    }
    case 'neuronpedia': {
      const layerOf = (id: string) => c.nodes.find((n) => n.id === id)?.layer ?? 0;
      return {
        metadata: {
          slug: c.id,
          scan: c.model.split(/[\\/]/).pop() ?? c.model,
          prompt: c.prompt ?? c.task,
          prompt_tokens: [],
          schema_version: 1,
          info: { description: c.title, generator: GENERATOR, create_time_ms: Date.now() },
        },
        qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
        nodes: c.nodes.map((n) => ({
          node_id: n.id,
          jsNodeId: n.id,
          feature: n.head ?? null,
          layer: n.kind === 'input' ? 'E' : n.kind === 'logits' ? 'Lgt' : n.layer,
          ctx_idx: 0,
          feature_type: n.kind === 'head' ? 'attention head' : n.kind === 'mlp' ? 'mlp' : n.kind === 'input' ? 'embedding' : 'logit',
          clerp: n.label ?? n.id,
          influence: n.relevance,
        })),
        links: c.edges.map((e) => ({ source: e.source, target: e.target, weight: e.weight, layer_gap: layerOf(e.target) - layerOf(e.source) })),
      };
    }
  }
}
