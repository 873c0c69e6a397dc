/**
 * Circuit → file, for the Export Circuit… command and the panel's export menu. The formats are
 * the CLI's (src/circuits/export.ts, src/circuits/graph.ts): the panel's circuit is converted to
 * a `CircuitGraph` and written as
 * - `circuit-lens`: the circuit graph JSON of the README (what `circuit-lens verify|export --circuit` read),
 * - `eap-ig`: `toEapIgJson`,
 * - `neuronpedia`: `toNeuronpediaJson`, drawn on one prompt (its tokens, target and token relevance
 *   come from the engine, as in `circuit-lens export --format neuronpedia --prompt …`).
 * Every document is checked by its validator before it is written.
 * A `nodes` subset exports the sub-graph they induce (`input` and `logits` always stay).
 */
import { toEapIgJson, toNeuronpediaJson, validateEapIgJson, validateNeuronpediaJson } from '../circuits/export';
import { CIRCUIT_GRAPH_VERSION, edgeId, validateCircuitGraph, type CircuitGraph, type CircuitNode, type Granularity } from '../circuits/graph';
import { METRIC_NAMES, type MetricName } from '../circuits/tasks';
import type { Circuit, PromptAttribution } from '../protocol';

export type ExportFormat = 'circuit-lens' | 'neuronpedia' | 'eap-ig';

/** Model widths the circuit itself does not record (circuits saved by older builds). */
export interface ModelDims {
  readonly dModel: number;
  readonly dMlp: number;
}

/** A circuit record for a pruning run (no components): not exportable, not verifiable. */
export function isPruningRecord(circuit: Circuit): boolean {
  return circuit.task === 'pruning';
}

/** The panel's circuit as the CLI's circuit graph (restricted to `nodes` when given). */
export function toCircuitGraph(circuit: Circuit, dims: ModelDims, nodes?: readonly string[]): CircuitGraph {
  const keep = nodes && nodes.length > 0 ? new Set([...nodes, 'input', 'logits']) : null;
  const kept = circuit.nodes.filter((n) => !keep || keep.has(n.id));
  const ids = new Set(kept.map((n) => n.id));
  const graphNodes: CircuitNode[] = kept.map((n) => ({
    id: n.id,
    kind: n.kind,
    layer: n.kind === 'input' ? -1 : n.kind === 'logits' ? circuit.layers : n.layer,
    ...(n.head !== undefined ? { head: n.head } : {}),
    relevance: n.relevance,
  }));
  for (const [id, kind, layer] of [
    ['input', 'input', -1],
    ['logits', 'logits', circuit.layers],
  ] as const) {
    if (!ids.has(id)) graphNodes[kind === 'input' ? 'unshift' : 'push']({ id, kind, layer, relevance: 0 });
  }
  const edges = circuit.edges
    .filter((e) => ids.has(e.source) && ids.has(e.target))
    .map((e) => ({ id: edgeId(e.source, e.target), source: e.source, target: e.target, relevance: e.weight }));
  const components = graphNodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').length;
  const candidates = circuit.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').length;
  const granularity: Granularity = graphNodes.some((n) => n.kind === 'mlp') ? 'heads+mlps' : 'heads';
  const named = circuit.metrics?.metric as MetricName | undefined;
  const metric: MetricName = named && METRIC_NAMES.includes(named) ? named : circuit.task === 'greater-than' ? 'prob_diff' : 'logit_diff';
  const m = circuit.metrics;
  const graph = {
    version: CIRCUIT_GRAPH_VERSION,
    model: { name: circuit.model.split(/[\\/]/).pop() || circuit.model, nLayers: circuit.layers, nHeads: circuit.heads, dModel: dims.dModel, dMlp: dims.dMlp },
    task: { name: circuit.task, metric, examples: circuit.examples ?? 0 },
    method: { name: circuit.mode },
    granularity,
    nodes: graphNodes,
    edges,
    selection: { level: 'node', rule: 'top-k', value: components, absolute: true, candidates, kept: components, removedForConnectivity: 0 },
    ...(m && !keep ? { metrics: { metric, full: m.full, circuit: m.circuit, faithfulness: m.faithfulness } } : {}),
  };
  // Round-trip through the CLI's reader: what is written is what `--circuit` accepts.
  return validateCircuitGraph(JSON.parse(JSON.stringify(graph)), circuit.id);
}

/** The document for `format` (validated); `prompt` is needed for Neuronpedia graphs. */
export function exportCircuit(
  circuit: Circuit,
  format: ExportFormat,
  dims: ModelDims,
  nodes?: readonly string[],
  prompt?: { readonly text: string; readonly attribution: PromptAttribution },
): unknown {
  const graph = toCircuitGraph(circuit, dims, nodes);
  let json: unknown;
  let problems: string[] = [];
  if (format === 'circuit-lens') {
    json = graph;
  } else if (format === 'eap-ig') {
    json = toEapIgJson(graph);
    problems = validateEapIgJson(json);
  } else {
    if (!prompt) throw new Error('a Neuronpedia graph is drawn on one prompt: no prompt given');
    const a = prompt.attribution;
    json = toNeuronpediaJson(graph, {
      slug: circuit.id.replace(/[^A-Za-z0-9_-]+/g, '-'),
      prompt: prompt.text,
      promptIds: a.tokens.map((t) => t.id),
      promptTokens: a.tokens.map((t) => t.text),
      // A target outside the top-N next tokens gets circuit-tracer's default token_prob, 0.
      target: { id: a.target.token, text: a.target.text, probability: a.topNext.find((t) => t.id === a.target.token)?.prob ?? 0 },
      tokenRelevance: a.tokens.map((t) => t.relevance),
      description: circuit.title,
    });
    problems = validateNeuronpediaJson(json);
  }
  if (problems.length > 0) throw new Error(`the exported ${format} JSON does not validate: ${problems.slice(0, 5).join('; ')}`);
  return json;
}
