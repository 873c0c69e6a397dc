/**
 * Circuit → peer format, for `circuit-lens export` and the editor's Export Circuit… alike.
 * Every document is checked by its validator before it is returned.
 */
import { toEapIgJson, toNeuronpediaJson, validateEapIgJson, validateNeuronpediaJson } from '../circuits/export';
import { isComponentNode, type CircuitGraph } from '../circuits/graph';

export const EXPORT_FORMATS = ['circuit-lens', 'eap-ig', 'neuronpedia'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The prompt a Neuronpedia graph is drawn on (its tokens become the input nodes). */
export interface ExportPrompt {
  readonly text: string;
  readonly ids: readonly number[];
  readonly tokens: readonly string[];
  readonly target: { readonly id: number; readonly text: string; readonly probability?: number };
  readonly tokenRelevance: ArrayLike<number>;
}

/** The sub-graph induced by `nodes` (input and logits always stay). */
export function subgraph(graph: CircuitGraph, nodes: readonly string[]): CircuitGraph {
  const keep = new Set([...nodes, 'input', 'logits']);
  const kept = graph.nodes.filter((n) => keep.has(n.id));
  const components = kept.filter(isComponentNode).length;
  const { metrics: _dropped, ...rest } = graph;
  return {
    ...rest,
    nodes: kept,
    edges: graph.edges.filter((e) => keep.has(e.source) && keep.has(e.target)),
    selection: { ...graph.selection, kept: components },
  };
}

export function exportCircuitDocument(
  graph: CircuitGraph,
  format: ExportFormat,
  prompt?: ExportPrompt,
  options: { readonly slug?: string; readonly description?: string } = {},
): unknown {
  let json: unknown;
  let problems: string[] = [];
  if (format === 'circuit-lens') return graph;
  if (format === 'eap-ig') {
    json = toEapIgJson(graph);
    problems = validateEapIgJson(json);
  } else {
    if (!prompt) throw new Error('a Neuronpedia graph is drawn on one prompt: no prompt given');
    json = toNeuronpediaJson(graph, {
      slug: (options.slug ?? `${graph.task.name}-${graph.method.name}`).replace(/[^A-Za-z0-9_-]+/g, '-'),
      prompt: prompt.text,
      promptIds: [...prompt.ids],
      promptTokens: [...prompt.tokens],
      target: prompt.target,
      tokenRelevance: prompt.tokenRelevance,
      ...(options.description !== undefined ? { description: options.description } : {}),
    });
    problems = validateNeuronpediaJson(json);
  }
  if (problems.length > 0) throw new Error(`the exported ${format} JSON does not validate: ${problems.slice(0, 5).join('; ')}`);
  return json;
}
