/**
 * A prompt graph (promptGraph.ts) as a Neuronpedia / circuit-tracer graph JSON
 * (graph-schema.json; circuit-tracer's frontend/graph_models.py). Positions map to `ctx_idx`:
 * - embeddings: `E_{token}_{t}`, feature t, layer "E";
 * - a head h of layer l at position t: `{l}_{h}_{t}`, an MLP block: `{l}_{H}_{t}` (the index H
 *   after the heads, as in export.ts); `feature` is circuit-tracer's Cantor pairing of
 *   (layer, index), so features are unique across layers;
 * - the error node of layer l: `err_{l}_{P}` with feature type "mlp reconstruction error" (drawn as
 *   an error node) at the explained position P, since ours are per layer, not per position; its
 *   `influence` is null (always kept, not ranked): both viewers' pruning sliders then show it
 *   (Neuronpedia `shouldShowNodeForInfluenceThreshold` skips null; circuit-tracer's formatData
 *   keeps `influence <= slider`, true for null), where an absent influence hides it in circuit-tracer;
 * - `metadata.node_threshold` (the viewers' default slider) is the cumulative influence of the
 *   last kept node (`selection.nodeShare`), so the default view draws every kept node: the node
 *   that crosses the requested threshold has influence above it (circuit-tracer `find_threshold`
 *   keeps that node too). The requested threshold is in `pruning_settings`;
 * - the logit: `{L+1}_{token}_{P}`, clerp `Output "tok" (p=0.123)` (Neuronpedia parses the p).
 * Links are the kept edges, weight = relevance.
 */
import type { NeuronpediaGraphJson, NeuronpediaLink, NeuronpediaNode } from './export';
import type { PromptGraph } from '../prompt/promptGraph';

/** circuit-tracer's `cantor_pairing(layer, feat_idx)`. */
export function cantorPair(x: number, y: number): number {
  return ((x + y) * (x + y + 1)) / 2 + y;
}

export function promptGraphToNeuronpedia(
  graph: PromptGraph,
  options: { slug: string; scan?: string; createTimeMs?: number },
): NeuronpediaGraphJson & { metadata: { transcoder_list: string[] } } {
  const { nLayers: L, nHeads: H } = graph.model;
  const P = graph.target.position;
  const tokens = graph.prompt.tokens ?? graph.prompt.ids.map(String);
  const mapped = new Map<string, string>();
  const nodes: NeuronpediaNode[] = [];
  for (const node of graph.nodes) {
    let out: NeuronpediaNode;
    switch (node.kind) {
      case 'input': {
        const token = graph.prompt.ids[node.position!]!;
        out = { node_id: `E_${token}_${node.position}`, feature: node.position!, layer: 'E', ctx_idx: node.position!, feature_type: 'embedding', jsNodeId: `E_${token}-${node.position}`, clerp: tokens[node.position!]!, activation: node.relevance };
        break;
      }
      case 'head':
      case 'mlp': {
        const index = node.kind === 'head' ? node.head! : H;
        out = {
          node_id: `${node.layer}_${index}_${node.position}`,
          feature: cantorPair(node.layer, index),
          layer: String(node.layer),
          ctx_idx: node.position!,
          feature_type: node.kind === 'head' ? 'attention head' : 'mlp',
          jsNodeId: `${node.layer}_${index}-0`,
          clerp: `${node.component}@${node.position} ${JSON.stringify(tokens[node.position!])}`,
          influence: node.influence ?? null,
          activation: node.relevance,
        };
        break;
      }
      case 'error':
        // Index H + 1 of its layer (heads are 0..H−1, the MLP H), Cantor-paired like every other feature.
        out = { node_id: `err_${node.layer}_${P}`, feature: cantorPair(node.layer, H + 1), layer: String(node.layer), ctx_idx: P, feature_type: 'mlp reconstruction error', jsNodeId: `${node.layer}_err-0`, clerp: `err${node.layer}`, influence: null, activation: node.relevance };
        break;
      case 'logits': {
        const p = graph.target.probability;
        const text = graph.target.text ?? String(graph.target.token);
        out = {
          node_id: `${L + 1}_${graph.target.token}_${P}`,
          feature: graph.target.token,
          layer: String(L + 1),
          ctx_idx: P,
          feature_type: 'logit',
          jsNodeId: `L_${graph.target.token}-${P}`,
          clerp: `Output ${JSON.stringify(text)} (p=${p.toFixed(3)})`,
          token_prob: p,
          is_target_logit: true,
        };
        break;
      }
    }
    mapped.set(node.id, out.node_id);
    nodes.push(out);
  }
  const links: NeuronpediaLink[] = [];
  for (const edge of graph.edges) {
    const source = mapped.get(edge.source);
    const target = mapped.get(edge.target);
    if (source === undefined || target === undefined) throw new Error(`Neuronpedia export: edge ${edge.id} has an end that is not a node`);
    if (edge.relevance !== 0) links.push({ source, target, weight: edge.relevance });
  }
  const logitId = mapped.get(graph.nodes.find((n) => n.kind === 'logits')!.id)!;
  return {
    metadata: {
      slug: options.slug,
      scan: options.scan ?? graph.model.name,
      transcoder_list: [],
      prompt_tokens: [...tokens],
      prompt: graph.prompt.text ?? tokens.join(''),
      schema_version: 1,
      node_threshold: graph.selection.nodeShare,
      info: {
        description: `${graph.method.name} prompt graph: ${graph.task.metric} of ${JSON.stringify(graph.target.text)} at position ${P} (heads and MLP blocks per position; error nodes per layer)`,
        generator: { name: 'circuit-lens', version: '0.1.0' },
        create_time_ms: options.createTimeMs ?? Date.now(),
      },
      generation_settings: { method: graph.method.name, metric: graph.task.metric, granularity: graph.granularity },
      pruning_settings: { node_threshold: graph.selection.nodeThreshold, edge_threshold: graph.selection.edgeThreshold },
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: logitId, sg_pos: '' },
    nodes,
    links,
  };
}
