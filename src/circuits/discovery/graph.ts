/**
 * The circuit graph: Circuit Lens's own documented JSON for a discovered circuit.
 *
 * ```jsonc
 * {
 *   "version": 1,
 *   "model": { "name": "tiny-ioi-gpt2", "nLayers": 4, "nHeads": 4, "dModel": 128, "dMlp": 512 },
 *   "task": { "name": "ioi", "metric": "logit_diff", "examples": 200 },
 *   "method": { "name": "attnlrp", "aggregation": "mean-abs" },
 *   "granularity": "heads+mlps",           // heads | heads+mlps | heads+neurons | neurons
 *   "nodes": [
 *     { "id": "input",  "kind": "input",  "layer": -1, "relevance": 9.1 },
 *     { "id": "a2.h2",  "kind": "head",   "layer": 2, "head": 2, "relevance": 4.2 },
 *     { "id": "m1",     "kind": "mlp",    "layer": 1, "relevance": 0.7 },
 *     { "id": "m1.n17", "kind": "neuron", "layer": 1, "neuron": 17, "relevance": 0.1 },
 *     { "id": "logits", "kind": "logits", "layer": 4, "relevance": 10.5 }
 *   ],
 *   "edges": [ { "id": "a2.h2->logits", "source": "a2.h2", "target": "logits", "relevance": 3.9 } ],
 *   "selection": { "level": "node", "rule": "top-k", "value": 8, "absolute": true,
 *                  "candidates": 20, "kept": 8, "removedForConnectivity": 0 },
 *   "metrics": { "metric": "logit_diff", "ablation": "mean", "full": 10.55, "empty": -0.2, "circuit": 9.1, "faithfulness": 0.86 }
 * }
 * ```
 *
 * Conventions:
 * - Ids follow TransformerLens/EAP-IG: `input`, `a{l}.h{h}`, `m{l}`, `m{l}.n{i}`, `logits`; an
 *   edge id is `{source}->{target}`. `input` sits at layer −1 and `logits` at layer `nLayers`.
 * - `relevance` is the aggregated (over the task's examples) LRP relevance of the component;
 *   for `input` the relevance reaching the embeddings, for `logits` the explained value.
 *   0 where the producer did not know it.
 * - Edges only go forward: within a layer attention comes before the MLP (sequential blocks, as
 *   in GPT-2, OPT and Llama), so `a3.h0->m3` exists but `m3->a3.h0` and `a3.h0->a3.h1` do not.
 * - A selected graph holds only the kept nodes and edges; `selection` records how they were chosen
 *   and out of how many. `input` and `logits` are always kept and never count as candidates.
 *
 * Selection rules (`selectNodes`, `selectEdges`), on the score s = |relevance| (or the signed
 * relevance with `absolute: false`):
 * - `top-k`: the k highest scores (ties broken by order in the graph).
 * - `threshold`: every candidate with s ≥ threshold.
 * - `budget`: the fewest highest-scoring candidates whose scores sum to ≥ fraction × Σ max(s, 0)
 *   (with `absolute`, the share of the total |relevance|).
 *
 * Connectivity: node selection keeps every chosen node; the graph's scored edges between kept
 * nodes stay, and each kept node is connected to `input` and `logits` through the residual stream
 * anyway (that is what node ablation tests). Edge selection then keeps only the chosen edges that
 * lie on some path from `input` to `logits` made of chosen edges, and the nodes they touch — the
 * same result as EAP-IG's `Graph.prune()` after `apply_topn`/`apply_threshold` on edges. Edges
 * removed this way are counted in `selection.removedForConnectivity`, so a top-k edge selection
 * can hold fewer than k edges.
 */

import { componentId, edgeId, parseComponentId, type ComponentKind } from '../../models/componentIds';
import { CircuitInputError, describeValue, throwIfProblems } from '../errors';
import { AGGREGATIONS, GRANULARITIES, METRIC_NAMES, type Aggregation, type Granularity, type MetricName } from '../../vocabulary';

export const CIRCUIT_GRAPH_VERSION = 1;

export type NodeKind = ComponentKind;


export interface CircuitModelInfo {
  readonly name: string;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dModel: number;
  readonly dMlp: number;
}

export interface CircuitTaskInfo {
  /** `ioi` / `greater-than` for generated tasks, else the task file's name. */
  readonly name: string;
  readonly metric: MetricName;
  readonly examples: number;
  /** The generator's seed, so a built-in task's prompts can be made again to verify. */
  readonly seed?: number;
  /** The task file a circuit was found on (absent for built-in tasks). */
  readonly file?: string;
}

export interface CircuitMethodInfo {
  /** e.g. `attnlrp`, `cp-lrp`, `gradient`, `ablation`. */
  readonly name: string;
  readonly aggregation?: Aggregation;
  readonly description?: string;
}

export interface CircuitNode {
  readonly id: string;
  readonly kind: NodeKind;
  readonly layer: number;
  readonly head?: number;
  readonly neuron?: number;
  readonly relevance: number;
}

export interface CircuitEdge {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  readonly relevance: number;
}

export type SelectionLevel = 'none' | 'node' | 'edge';
export type SelectionRuleName = 'all' | 'top-k' | 'threshold' | 'budget';

export interface CircuitSelection {
  readonly level: SelectionLevel;
  readonly rule: SelectionRuleName;
  /** k, the threshold, or the budget fraction; null for `all`. */
  readonly value: number | null;
  readonly absolute: boolean;
  /** Nodes (node level) or edges (edge level) that were ranked. */
  readonly candidates: number;
  /** Of those, how many are in the graph. */
  readonly kept: number;
  /** Chosen edges dropped because they were not on an input→logits path (edge level only). */
  readonly removedForConnectivity: number;
}

export interface CircuitCurvePoint {
  readonly fraction: number;
  readonly size: number;
  readonly score: number;
  readonly faithfulness: number;
}

export interface CircuitMetrics {
  readonly metric?: MetricName;
  readonly ablation?: string;
  readonly full?: number;
  readonly empty?: number;
  readonly circuit?: number;
  readonly faithfulness?: number;
  readonly completeness?: number;
  readonly cpr?: number;
  readonly cmd?: number;
  readonly curve?: readonly CircuitCurvePoint[];
}

export interface CircuitGraph {
  readonly version: typeof CIRCUIT_GRAPH_VERSION;
  readonly model: CircuitModelInfo;
  readonly task: CircuitTaskInfo;
  readonly method: CircuitMethodInfo;
  readonly granularity: Granularity;
  readonly nodes: readonly CircuitNode[];
  readonly edges: readonly CircuitEdge[];
  readonly selection: CircuitSelection;
  readonly metrics?: CircuitMetrics;
  /**
   * The aggregated relevance of every candidate component before selection (a selected graph
   * holds only the kept nodes). Verification ranks by it for the faithfulness curve, and the
   * panel's per-layer charts read it.
   */
  readonly scores?: Readonly<Record<string, number>>;
  /** ISO 8601 time the circuit was made. */
  readonly created?: string;
}

// ---------------------------------------------------------------------------------------------
// Ids

/** The node for an id, checked against the model's shape. Throws with the reason otherwise. */
export function nodeForId(id: string, model: CircuitModelInfo, relevance = 0): CircuitNode {
  const parsed = parseComponentId(id);
  if (parsed === null) {
    throw new Error(`"${id}" is not a component id (expected input, logits, a{layer}.h{head}, m{layer} or m{layer}.n{neuron})`);
  }
  const layer = parsed.layer ?? model.nLayers;
  if (parsed.kind !== 'input' && parsed.kind !== 'logits' && layer >= model.nLayers) {
    throw new Error(`"${id}": layer ${layer} is out of range (the model has ${model.nLayers} layers)`);
  }
  if (parsed.head !== undefined && parsed.head >= model.nHeads) {
    throw new Error(`"${id}": head ${parsed.head} is out of range (the model has ${model.nHeads} heads per layer)`);
  }
  if (parsed.neuron !== undefined && parsed.neuron >= model.dMlp) {
    throw new Error(`"${id}": neuron ${parsed.neuron} is out of range (the MLP has ${model.dMlp} neurons)`);
  }
  return {
    id,
    kind: parsed.kind,
    layer,
    ...(parsed.head !== undefined && { head: parsed.head }),
    ...(parsed.neuron !== undefined && { neuron: parsed.neuron }),
    relevance,
  };
}

/**
 * Position of a node in the forward computation: input, then per layer the attention heads and
 * then the MLP, then logits. An edge can only go from a smaller to a larger position.
 */
function forwardPosition(node: Pick<CircuitNode, 'kind' | 'layer'>): number {
  switch (node.kind) {
    case 'input':
      return -1;
    case 'head':
      return 2 * node.layer;
    case 'mlp':
    case 'neuron':
      return 2 * node.layer + 1;
    case 'logits':
      return Number.POSITIVE_INFINITY;
  }
}

/** Whether `source` can feed `target` through the residual stream. */
export function isForwardEdge(source: Pick<CircuitNode, 'kind' | 'layer'>, target: Pick<CircuitNode, 'kind' | 'layer'>): boolean {
  return forwardPosition(source) < forwardPosition(target);
}

export function isComponentNode(node: Pick<CircuitNode, 'kind'>): boolean {
  return node.kind === 'head' || node.kind === 'mlp' || node.kind === 'neuron';
}

/** Ids of the heads / MLPs / neurons in the graph (what node ablation acts on). */
export function circuitComponentIds(graph: Pick<CircuitGraph, 'nodes'>): string[] {
  return graph.nodes.filter(isComponentNode).map((node) => node.id);
}

// ---------------------------------------------------------------------------------------------
// Building

export interface BuildGraphInput {
  readonly model: CircuitModelInfo;
  readonly task: CircuitTaskInfo;
  readonly method: CircuitMethodInfo;
  /** `[L][H]` aggregated head relevance. */
  readonly heads?: readonly (readonly number[])[];
  /** `[L]` whole-MLP-block relevance. */
  readonly mlps?: ArrayLike<number>;
  /** `[L][dMlp]` neuron relevance (instead of `mlps`, not with it: neurons are parts of blocks). */
  readonly neurons?: readonly ArrayLike<number>[];
  readonly inputRelevance?: number;
  readonly logitsRelevance?: number;
  /** Scored edges between the nodes above (plus `input` / `logits`), if the method produces them. */
  readonly edges?: readonly { readonly source: string; readonly target: string; readonly relevance: number }[];
  readonly metrics?: CircuitMetrics;
}

/** The complete, unselected graph (`selection.level = 'none'`). */
export function buildCircuitGraph(input: BuildGraphInput): CircuitGraph {
  const { model } = input;
  checkModelInfo(model, 'buildCircuitGraph');
  if (input.mlps !== undefined && input.neurons !== undefined) {
    throw new Error('buildCircuitGraph: give MLP blocks or MLP neurons, not both (a neuron is part of its block, ablating both double-counts)');
  }
  if (input.heads === undefined && input.mlps === undefined && input.neurons === undefined) {
    throw new Error('buildCircuitGraph: no component relevance given (heads, mlps or neurons)');
  }
  const finite = (value: number, what: string): number => {
    if (!Number.isFinite(value)) throw new Error(`buildCircuitGraph: ${what} is not a finite number (${value})`);
    return value;
  };

  const nodes: CircuitNode[] = [nodeForId(componentId.input, model, finite(input.inputRelevance ?? 0, 'the input relevance'))];
  for (let layer = 0; layer < model.nLayers; layer++) {
    if (input.heads !== undefined) {
      const row = input.heads[layer];
      if (row === undefined || row.length !== model.nHeads) {
        throw new Error(`buildCircuitGraph: head relevance for layer ${layer} has ${row?.length ?? 0} heads, the model has ${model.nHeads}`);
      }
      row.forEach((value, head) => nodes.push(nodeForId(componentId.head(layer, head), model, finite(value, `head a${layer}.h${head}'s relevance`))));
    }
    if (input.mlps !== undefined) {
      if (input.mlps.length !== model.nLayers) {
        throw new Error(`buildCircuitGraph: MLP relevance has ${input.mlps.length} layers, the model has ${model.nLayers}`);
      }
      nodes.push(nodeForId(componentId.mlp(layer), model, finite(input.mlps[layer]!, `MLP m${layer}'s relevance`)));
    }
    if (input.neurons !== undefined) {
      const values = input.neurons[layer];
      if (values === undefined || values.length !== model.dMlp) {
        throw new Error(`buildCircuitGraph: neuron relevance for layer ${layer} has ${values?.length ?? 0} entries, the MLP has ${model.dMlp}`);
      }
      for (let neuron = 0; neuron < values.length; neuron++) {
        nodes.push(nodeForId(componentId.neuron(layer, neuron), model, finite(values[neuron]!, `neuron m${layer}.n${neuron}'s relevance`)));
      }
    }
  }
  if (input.heads !== undefined && input.heads.length !== model.nLayers) {
    throw new Error(`buildCircuitGraph: head relevance has ${input.heads.length} layers, the model has ${model.nLayers}`);
  }
  nodes.push(nodeForId(componentId.logits, model, finite(input.logitsRelevance ?? 0, 'the logits relevance')));

  const byId = new Map(nodes.map((node) => [node.id, node]));
  const seen = new Set<string>();
  const edges = (input.edges ?? []).map((edge) => {
    const id = edgeId(edge.source, edge.target);
    const source = byId.get(edge.source);
    const target = byId.get(edge.target);
    if (source === undefined) throw new Error(`buildCircuitGraph: edge ${id} starts at "${edge.source}", which is not a node of this graph`);
    if (target === undefined) throw new Error(`buildCircuitGraph: edge ${id} ends at "${edge.target}", which is not a node of this graph`);
    if (!isForwardEdge(source, target)) throw new Error(`buildCircuitGraph: edge ${id} does not go forward through the model`);
    if (seen.has(id)) throw new Error(`buildCircuitGraph: edge ${id} is given twice`);
    seen.add(id);
    return { id, source: edge.source, target: edge.target, relevance: finite(edge.relevance, `edge ${id}'s relevance`) };
  });

  const granularity: Granularity =
    input.heads === undefined ? 'neurons' : input.mlps !== undefined ? 'heads+mlps' : input.neurons !== undefined ? 'heads+neurons' : 'heads';
  if (granularity === 'neurons' && input.neurons === undefined) {
    throw new Error('buildCircuitGraph: MLP blocks without heads is not a supported granularity; give head relevance too');
  }
  const candidates = nodes.filter(isComponentNode).length;
  return {
    version: CIRCUIT_GRAPH_VERSION,
    model: { ...model },
    task: { ...input.task },
    method: { ...input.method },
    granularity,
    nodes,
    edges,
    selection: { level: 'none', rule: 'all', value: null, absolute: true, candidates, kept: candidates, removedForConnectivity: 0 },
    ...(input.metrics !== undefined && { metrics: input.metrics }),
  };
}

/**
 * Every forward edge among the graph's nodes, without scores: the edges a node-level circuit
 * implies (each kept component reads from everything before it and writes to everything after).
 * Quadratic in the node count, so meant for selected circuits, not full neuron graphs.
 */
export function impliedEdges(graph: Pick<CircuitGraph, 'nodes'>): { source: string; target: string }[] {
  const out: { source: string; target: string }[] = [];
  for (const source of graph.nodes) {
    for (const target of graph.nodes) {
      if (isForwardEdge(source, target)) out.push({ source: source.id, target: target.id });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Selection

export type SelectionRule =
  | { readonly kind: 'top-k'; readonly k: number }
  | { readonly kind: 'threshold'; readonly threshold: number }
  | { readonly kind: 'budget'; readonly fraction: number };

export interface SelectionOptions {
  /** Rank by |relevance| (default) or by signed relevance. */
  readonly absolute?: boolean;
}

/** Indices chosen by a rule over scores (see the module comment for the rules). */
export function chooseByRule(relevance: readonly number[], rule: SelectionRule, options: SelectionOptions = {}): number[] {
  const absolute = options.absolute ?? true;
  const scores = relevance.map((r) => (absolute ? Math.abs(r) : r));
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  switch (rule.kind) {
    case 'top-k': {
      if (!Number.isInteger(rule.k) || rule.k < 0) throw new Error(`selection: k must be a non-negative integer, got ${rule.k}`);
      if (rule.k > scores.length) throw new Error(`selection: k = ${rule.k} but there are only ${scores.length} candidates`);
      return order.slice(0, rule.k).sort((a, b) => a - b);
    }
    case 'threshold': {
      if (!Number.isFinite(rule.threshold)) throw new Error(`selection: the threshold must be a finite number, got ${rule.threshold}`);
      return order.filter((i) => scores[i]! >= rule.threshold).sort((a, b) => a - b);
    }
    case 'budget': {
      if (!(rule.fraction > 0 && rule.fraction <= 1)) throw new Error(`selection: the budget fraction must be in (0, 1], got ${rule.fraction}`);
      let total = 0;
      for (const score of scores) if (score > 0) total += score;
      if (total === 0) return [];
      // Relative slack so a budget of exactly 1 is reached despite summation rounding.
      const goal = rule.fraction * total * (1 - 1e-12);
      const chosen: number[] = [];
      let cumulative = 0;
      for (const i of order) {
        if (cumulative >= goal || scores[i]! <= 0) break;
        chosen.push(i);
        cumulative += scores[i]!;
      }
      return chosen.sort((a, b) => a - b);
    }
    default:
      throw new Error(`selection: unknown rule ${JSON.stringify(rule)}`);
  }
}

function ruleValue(rule: SelectionRule): { rule: SelectionRuleName; value: number } {
  switch (rule.kind) {
    case 'top-k':
      return { rule: 'top-k', value: rule.k };
    case 'threshold':
      return { rule: 'threshold', value: rule.threshold };
    case 'budget':
      return { rule: 'budget', value: rule.fraction };
  }
}

/** Keeps the component nodes chosen by `rule` (plus input and logits) and the edges among them. */
export function selectNodes(graph: CircuitGraph, rule: SelectionRule, options: SelectionOptions = {}): CircuitGraph {
  const candidates = graph.nodes.filter(isComponentNode);
  const chosen = new Set(chooseByRule(candidates.map((n) => n.relevance), rule, options).map((i) => candidates[i]!.id));
  const nodes = graph.nodes.filter((node) => !isComponentNode(node) || chosen.has(node.id));
  const kept = new Set(nodes.map((node) => node.id));
  const edges = graph.edges.filter((edge) => kept.has(edge.source) && kept.has(edge.target));
  return {
    ...graph,
    nodes,
    edges,
    selection: {
      level: 'node',
      ...ruleValue(rule),
      absolute: options.absolute ?? true,
      candidates: candidates.length,
      kept: chosen.size,
      removedForConnectivity: 0,
    },
  };
}

/** Keeps the edges chosen by `rule` that lie on an input→logits path of chosen edges. */
export function selectEdges(graph: CircuitGraph, rule: SelectionRule, options: SelectionOptions = {}): CircuitGraph {
  if (graph.edges.length === 0) {
    throw new Error('selectEdges: this graph has no scored edges (node-level attribution); use selectNodes');
  }
  const chosen = chooseByRule(graph.edges.map((e) => e.relevance), rule, options).map((i) => graph.edges[i]!);
  const connected = connectedEdges(chosen);
  const touched = new Set<string>([componentId.input, componentId.logits]);
  for (const edge of connected) {
    touched.add(edge.source);
    touched.add(edge.target);
  }
  return {
    ...graph,
    nodes: graph.nodes.filter((node) => touched.has(node.id)),
    edges: connected,
    selection: {
      level: 'edge',
      ...ruleValue(rule),
      absolute: options.absolute ?? true,
      candidates: graph.edges.length,
      kept: connected.length,
      removedForConnectivity: chosen.length - connected.length,
    },
  };
}

/** The edges on at least one path input → … → logits that uses only the given edges. */
export function connectedEdges<E extends { readonly source: string; readonly target: string }>(edges: readonly E[]): E[] {
  const outgoing = new Map<string, string[]>();
  const incoming = new Map<string, string[]>();
  for (const edge of edges) {
    (outgoing.get(edge.source) ?? outgoing.set(edge.source, []).get(edge.source)!).push(edge.target);
    (incoming.get(edge.target) ?? incoming.set(edge.target, []).get(edge.target)!).push(edge.source);
  }
  const reach = (start: string, next: Map<string, string[]>): Set<string> => {
    const seen = new Set([start]);
    const stack = [start];
    while (stack.length > 0) {
      for (const neighbour of next.get(stack.pop()!) ?? []) {
        if (!seen.has(neighbour)) {
          seen.add(neighbour);
          stack.push(neighbour);
        }
      }
    }
    return seen;
  };
  const fromInput = reach(componentId.input, outgoing);
  const toLogits = reach(componentId.logits, incoming);
  return edges.filter((edge) => fromInput.has(edge.source) && toLogits.has(edge.target));
}

// ---------------------------------------------------------------------------------------------
// Validation of a loaded circuit JSON

function checkModelInfo(model: CircuitModelInfo, where: string): void {
  for (const key of ['nLayers', 'nHeads', 'dModel', 'dMlp'] as const) {
    const value = model[key];
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${where}: model.${key} must be a positive integer, got ${describeValue(value)}`);
  }
}

const KNOWN_FIELDS = new Set(['version', 'model', 'task', 'method', 'granularity', 'nodes', 'edges', 'selection', 'metrics', 'scores', 'created']);

/**
 * Checks that `json` is a circuit graph this version understands and returns it typed. Every
 * problem found is listed in one error, each with its JSON path (e.g. `nodes[3] ("a9.h12")`).
 */
export function validateCircuitGraph(json: unknown, source = 'circuit JSON'): CircuitGraph {
  const problems: string[] = [];
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject(json)) throw new CircuitInputError(source, `expected a JSON object, got ${describeValue(json)}`);

  if (json['version'] !== CIRCUIT_GRAPH_VERSION) {
    throw new CircuitInputError(source, `unsupported circuit version ${describeValue(json['version'])} (this build reads version ${CIRCUIT_GRAPH_VERSION})`);
  }

  const model = json['model'];
  let modelInfo: CircuitModelInfo | null = null;
  if (!isObject(model)) {
    problems.push(`model: expected an object, got ${describeValue(model)}`);
  } else {
    if (typeof model['name'] !== 'string') problems.push(`model.name: expected a string, got ${describeValue(model['name'])}`);
    let shapeOk = true;
    for (const key of ['nLayers', 'nHeads', 'dModel', 'dMlp']) {
      const value = model[key];
      if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
        problems.push(`model.${key}: expected a positive integer, got ${describeValue(value)}`);
        shapeOk = false;
      }
    }
    if (shapeOk) modelInfo = model as unknown as CircuitModelInfo;
  }

  const task = json['task'];
  if (!isObject(task)) {
    problems.push(`task: expected an object, got ${describeValue(task)}`);
  } else {
    if (typeof task['name'] !== 'string') problems.push(`task.name: expected a string, got ${describeValue(task['name'])}`);
    if (!METRIC_NAMES.includes(task['metric'] as MetricName)) {
      problems.push(`task.metric: expected one of ${METRIC_NAMES.join(', ')}, got ${describeValue(task['metric'])}`);
    }
    if (typeof task['examples'] !== 'number' || !Number.isInteger(task['examples']) || task['examples'] < 0) {
      problems.push(`task.examples: expected a non-negative integer, got ${describeValue(task['examples'])}`);
    }
    if (task['seed'] !== undefined && !Number.isInteger(task['seed'])) problems.push(`task.seed: expected an integer, got ${describeValue(task['seed'])}`);
    if (task['file'] !== undefined && typeof task['file'] !== 'string') problems.push(`task.file: expected a string, got ${describeValue(task['file'])}`);
  }

  const method = json['method'];
  if (!isObject(method)) {
    problems.push(`method: expected an object, got ${describeValue(method)}`);
  } else {
    if (typeof method['name'] !== 'string') problems.push(`method.name: expected a string, got ${describeValue(method['name'])}`);
    if (method['aggregation'] !== undefined && !AGGREGATIONS.includes(method['aggregation'] as Aggregation)) {
      problems.push(`method.aggregation: expected one of ${AGGREGATIONS.join(', ')}, got ${describeValue(method['aggregation'])}`);
    }
  }

  if (!GRANULARITIES.includes(json['granularity'] as Granularity)) {
    problems.push(`granularity: expected one of ${GRANULARITIES.join(', ')}, got ${describeValue(json['granularity'])}`);
  }

  const nodesById = new Map<string, CircuitNode>();
  const nodes = json['nodes'];
  if (!Array.isArray(nodes)) {
    problems.push(`nodes: expected an array, got ${describeValue(nodes)}`);
  } else {
    nodes.forEach((node, index) => {
      const at = `nodes[${index}]`;
      if (!isObject(node)) return void problems.push(`${at}: expected an object, got ${describeValue(node)}`);
      const id = node['id'];
      if (typeof id !== 'string') return void problems.push(`${at}.id: expected a string, got ${describeValue(id)}`);
      const label = `${at} ("${id}")`;
      if (nodesById.has(id)) return void problems.push(`${label}: duplicate node id`);
      if (typeof node['relevance'] !== 'number' || !Number.isFinite(node['relevance'])) {
        problems.push(`${label}.relevance: expected a finite number, got ${describeValue(node['relevance'])}`);
      }
      if (modelInfo === null) return;
      let expected: CircuitNode;
      try {
        expected = nodeForId(id, modelInfo);
      } catch (error) {
        return void problems.push(`${label}: ${(error as Error).message}`);
      }
      for (const key of ['kind', 'layer', 'head', 'neuron'] as const) {
        if (node[key] !== expected[key]) {
          problems.push(`${label}.${key}: the id implies ${describeValue(expected[key])}, the node says ${describeValue(node[key])}`);
        }
      }
      nodesById.set(id, node as unknown as CircuitNode);
    });
    if (modelInfo !== null) {
      if (!nodesById.has(componentId.input)) problems.push('nodes: the "input" node is missing');
      if (!nodesById.has(componentId.logits)) problems.push('nodes: the "logits" node is missing');
    }
  }

  const edges = json['edges'];
  if (!Array.isArray(edges)) {
    problems.push(`edges: expected an array, got ${describeValue(edges)}`);
  } else {
    const seen = new Set<string>();
    edges.forEach((edge, index) => {
      const at = `edges[${index}]`;
      if (!isObject(edge)) return void problems.push(`${at}: expected an object, got ${describeValue(edge)}`);
      const { id, source: from, target: to, relevance } = edge;
      if (typeof id !== 'string' || typeof from !== 'string' || typeof to !== 'string') {
        return void problems.push(`${at}: id, source and target must be strings`);
      }
      const label = `${at} ("${id}")`;
      if (id !== edgeId(from, to)) problems.push(`${label}: the id must be "${edgeId(from, to)}" (source->target)`);
      if (seen.has(id)) problems.push(`${label}: duplicate edge`);
      seen.add(id);
      if (typeof relevance !== 'number' || !Number.isFinite(relevance)) {
        problems.push(`${label}.relevance: expected a finite number, got ${describeValue(relevance)}`);
      }
      const sourceNode = nodesById.get(from);
      const targetNode = nodesById.get(to);
      if (sourceNode === undefined) problems.push(`${label}: source "${from}" is not a node of this graph`);
      if (targetNode === undefined) problems.push(`${label}: target "${to}" is not a node of this graph`);
      if (sourceNode !== undefined && targetNode !== undefined && !isForwardEdge(sourceNode, targetNode)) {
        problems.push(`${label}: does not go forward through the model (edges run from earlier to later components)`);
      }
    });
  }

  const selection = json['selection'];
  if (!isObject(selection)) {
    problems.push(`selection: expected an object, got ${describeValue(selection)}`);
  } else {
    if (!['none', 'node', 'edge'].includes(selection['level'] as string)) {
      problems.push(`selection.level: expected none, node or edge, got ${describeValue(selection['level'])}`);
    }
    if (!['all', 'top-k', 'threshold', 'budget'].includes(selection['rule'] as string)) {
      problems.push(`selection.rule: expected all, top-k, threshold or budget, got ${describeValue(selection['rule'])}`);
    }
    if (selection['value'] !== null && typeof selection['value'] !== 'number') {
      problems.push(`selection.value: expected a number or null, got ${describeValue(selection['value'])}`);
    }
    if (typeof selection['absolute'] !== 'boolean') problems.push(`selection.absolute: expected a boolean, got ${describeValue(selection['absolute'])}`);
    for (const key of ['candidates', 'kept', 'removedForConnectivity']) {
      const value = selection[key];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        problems.push(`selection.${key}: expected a non-negative integer, got ${describeValue(value)}`);
      }
    }
  }

  const metrics = json['metrics'];
  if (metrics !== undefined) {
    if (!isObject(metrics)) {
      problems.push(`metrics: expected an object, got ${describeValue(metrics)}`);
    } else {
      for (const key of ['full', 'empty', 'circuit', 'faithfulness', 'completeness', 'cpr', 'cmd']) {
        const value = metrics[key];
        if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) {
          problems.push(`metrics.${key}: expected a finite number, got ${describeValue(value)}`);
        }
      }
      if (metrics['curve'] !== undefined && !Array.isArray(metrics['curve'])) {
        problems.push(`metrics.curve: expected an array, got ${describeValue(metrics['curve'])}`);
      }
    }
  }

  const scores = json['scores'];
  if (scores !== undefined) {
    if (!isObject(scores)) problems.push(`scores: expected an object, got ${describeValue(scores)}`);
    else {
      for (const [id, value] of Object.entries(scores)) {
        const parsed = parseComponentId(id);
        if (parsed === null || parsed.kind === 'input' || parsed.kind === 'logits') problems.push(`scores["${id.slice(0, 40)}"]: not a component id`);
        else if (typeof value !== 'number' || !Number.isFinite(value)) problems.push(`scores["${id}"]: expected a finite number, got ${describeValue(value)}`);
      }
    }
  }
  if (json['created'] !== undefined && typeof json['created'] !== 'string') problems.push(`created: expected a string, got ${describeValue(json['created'])}`);
  for (const key of Object.keys(json)) {
    if (!KNOWN_FIELDS.has(key)) problems.push(`${key.slice(0, 40)}: unknown field`);
  }

  throwIfProblems(source, problems, 'the circuit');
  return json as unknown as CircuitGraph;
}
