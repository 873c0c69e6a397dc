/**
 * Exporters of a circuit graph to the two interchange formats in shared/notes/ecosystem.md §6,
 * each with a hand-written validator (no JSON-schema dependency) that the tests run on the output.
 *
 * (a) EAP-IG / MIB graph JSON — what `hannamw/EAP-IG` `Graph.to_json` writes and `Graph.from_json`
 *     reads:
 *     `{ cfg: { n_layers, n_heads, parallel_attn_mlp, d_model },
 *        nodes: { <name>: { in_graph, score? } },
 *        edges: { <src>-><dst>[<q|k|v>]: { score, in_graph } } }`
 *     Node names `input`, `a{l}.h{h}`, `m{l}`, `logits`; an edge into an attention head names the
 *     head input it feeds (`<q>`, `<k>` or `<v>`), other edges have no suffix. `from_json` looks every
 *     listed edge up in the full graph of `cfg`, so only real (forward) edges may appear.
 *     Mapping choices:
 *     - The full EAP-IG graph is written (every node and edge of `cfg`), like `to_json`: components
 *       not in our graph get `in_graph: false` and score 0.
 *     - Our edges into a head are not split by q/k/v (the engine gates a head's whole residual
 *       input, not its q, k and v paths apart). `qkvScore: 'split'` (default) writes a third of
 *       the edge's relevance to each of `<q>`, `<k>`, `<v>`, so EAP-IG's summed scores (per edge
 *       pair or over the graph) equal our relevance. `'copy'` writes the full relevance to all
 *       three (what earlier versions wrote): summing counts head inputs three times. Edges
 *       outside the circuit score 0 either way, so EAP-IG's
 *       `apply_topn(count_included_edges())` reproduces the in_graph set in both modes
 *       (test/conformance/eap-ig.test.ts runs it).
 *     - Node scores: an edge circuit's export carries only edge scores unless `nodeScores` is
 *       set (EAP-IG's own edge graphs have none, and its `to_json` fails on a graph that has
 *       node scores but no neurons, so a round trip would break). Node-level circuits always
 *       carry them.
 *     - Graphs without scored edges (node-level circuits): an edge is `in_graph` when both its
 *       endpoints are (EAP-IG's node-level `apply_topn` does the same), with score 0.
 *     - Neuron graphs: EAP-IG's `neurons` are d_model output dimensions of every node, not MLP
 *       neurons, so they are not written; an MLP block is in the graph when any of its neurons is,
 *       and its score is the sum of its neurons' relevance.
 *
 * (b) Neuronpedia / circuit-tracer attribution-graph JSON — `hijohnnylin/neuronpedia`
 *     `apps/webapp/app/api/graph/graph-schema.json` (draft-07, "Anthropic Attribution Graph" 1.0.0):
 *     `{ metadata: { slug, scan, prompt_tokens, prompt, … }, qParams: { … }, nodes: [ { node_id, feature,
 *     layer, ctx_idx, feature_type, jsNodeId, clerp, influence?, activation?, … } ], links: [ { source,
 *     target, weight } ] }`. That format is per prompt and per position; ours is aggregated over a
 *     task, so:
 *     - `input` becomes one embedding node per prompt token (`E_{token}_{pos}`, layer "E", as
 *       circuit-tracer writes them); an `input->X` edge is split over them by each token's share of
 *       |token relevance| (evenly when no token relevance is given), which keeps the sum.
 *     - Heads, MLPs and neurons sit at the last position (where the explained logit is). Each
 *       has a per-layer index (heads 0…H−1, the MLP block H, neuron i at H+1+i);
 *       `node_id` = `{layer}_{index}_{pos}` and `jsNodeId` = `{layer}_{index}-0` carry it, and
 *       `feature` is the Cantor pair `(layer + index)(layer + index + 1)/2 + index`, as
 *       circuit-tracer's `Node.feature_node` writes it: `metadata.schema_version: 1` tells both
 *       viewers to decode layer and index from `feature` that way. `clerp` (the label) is our id,
 *       e.g. `a9.h9`; `feature_type` is "attention head", "mlp" or "mlp neuron".
 *     - `logits` becomes the target-logit node `{L+1}_{token}_{pos}` (`feature_type` "logit")
 *       with `clerp` `Output "{token}" (p={prob:.3f})` and `token_prob`, exactly as
 *       circuit-tracer's `Node.logit_node`: both viewers parse the probability out of the clerp.
 *     - `metadata.transcoder_list` is `[]` (what circuit-tracer writes without transcoders; its
 *       pydantic `Metadata` requires the key). `graphMetadataEntry` gives the entry of
 *       `graph-metadata.json`, the index circuit-tracer's `serve` lists graphs from.
 *     - Both viewers place the logit one layer above the highest numeric layer and throw
 *       "No layer found" (Neuronpedia) when that highest layer is 0; `neuronpediaWarnings` says
 *       so for a graph whose components all sit in layer 0 (nothing is invented to avoid it).
 *     - `influence` (used by Neuronpedia's pruning slider) is each component's cumulative share of
 *       the total |relevance|, largest first, like circuit-tracer's cumulative influence.
 *     - Node-level circuits have no scored edges; unless `nodeLinks: 'none'`, each component gets a
 *       link to the logit node weighted by its relevance (its total effect on the explained logit,
 *       which LRP attributes without splitting it into paths), and each token one weighted by its
 *       token relevance when given.
 */

import { componentId } from '../../models/spec';
import type { CircuitGraph, CircuitNode } from '../discovery/graph';
import { isComponentNode, isForwardEdge } from '../discovery/graph';
import { parseComponentId } from '../../models/componentIds';

export interface GeneratorInfo {
  readonly name: string;
  readonly version: string;
  readonly url?: string;
}

export const CIRCUIT_LENS_GENERATOR: GeneratorInfo = { name: 'circuit-lens', version: '0.1.0' };

// ---------------------------------------------------------------------------------------------
// (a) EAP-IG

export interface EapIgConfig {
  readonly n_layers: number;
  readonly n_heads: number;
  readonly parallel_attn_mlp: boolean;
  readonly d_model: number;
}

export interface EapIgGraphJson {
  readonly cfg: EapIgConfig;
  readonly nodes: Record<string, { in_graph: boolean; score?: number; neurons?: boolean[]; neurons_scores?: number[] }>;
  readonly edges: Record<string, { score: number; in_graph: boolean }>;
}

export const QKV_SCORES = ['split', 'copy'] as const;
export type QkvScore = (typeof QKV_SCORES)[number];

export interface EapIgExportOptions {
  /** How an edge into a head is written on its q, k and v inputs (default 'split'). */
  readonly qkvScore?: QkvScore;
  /** Write node scores in an edge circuit's export too (default: only for node-level circuits). */
  readonly nodeScores?: boolean;
}

interface EapIgNodeName {
  readonly name: string;
  readonly kind: 'input' | 'head' | 'mlp' | 'logits';
  readonly layer: number;
}

/** The full EAP-IG node list in `Graph.from_model` order (input, per layer heads then MLP, logits). */
export function eapIgNodeNames(cfg: Pick<EapIgConfig, 'n_layers' | 'n_heads'>): EapIgNodeName[] {
  const names: EapIgNodeName[] = [{ name: componentId.input, kind: 'input', layer: -1 }];
  for (let layer = 0; layer < cfg.n_layers; layer++) {
    for (let head = 0; head < cfg.n_heads; head++) names.push({ name: componentId.head(layer, head), kind: 'head', layer });
    names.push({ name: componentId.mlp(layer), kind: 'mlp', layer });
  }
  names.push({ name: componentId.logits, kind: 'logits', layer: cfg.n_layers });
  return names;
}

/** Every edge of the full EAP-IG graph of a sequential (non-parallel) model, as `[source, target, qkv?]`. */
export function eapIgEdgeList(cfg: Pick<EapIgConfig, 'n_layers' | 'n_heads'>): [string, string, ('q' | 'k' | 'v')?][] {
  const nodes = eapIgNodeNames(cfg);
  const edges: [string, string, ('q' | 'k' | 'v')?][] = [];
  for (const target of nodes) {
    for (const source of nodes) {
      if (source.kind === 'logits' || target.kind === 'input' || !isForwardEdge(source, target)) continue;
      if (target.kind === 'head') for (const letter of ['q', 'k', 'v'] as const) edges.push([source.name, target.name, letter]);
      else edges.push([source.name, target.name]);
    }
  }
  return edges;
}

export function toEapIgJson(graph: CircuitGraph, options: EapIgExportOptions = {}): EapIgGraphJson {
  const cfg: EapIgConfig = { n_layers: graph.model.nLayers, n_heads: graph.model.nHeads, parallel_attn_mlp: false, d_model: graph.model.dModel };
  const qkvScore = options.qkvScore ?? 'split';
  if (!QKV_SCORES.includes(qkvScore)) throw new Error(`EAP-IG export: qkvScore must be ${QKV_SCORES.join(' or ')}, got "${String(qkvScore)}"`);
  const nodeLevelGraph = graph.edges.length === 0;
  const withNodeScores = options.nodeScores ?? nodeLevelGraph;

  // Our nodes, with neurons folded into their MLP block.
  const inGraph = new Set<string>([componentId.input, componentId.logits]);
  const nodeScore = new Map<string, number>();
  for (const node of graph.nodes) {
    const name = node.kind === 'neuron' ? componentId.mlp(node.layer) : node.id;
    inGraph.add(name);
    nodeScore.set(name, (nodeScore.get(name) ?? 0) + node.relevance);
  }

  const nodes: EapIgGraphJson['nodes'] = {};
  for (const { name } of eapIgNodeNames(cfg)) {
    nodes[name] =
      name === componentId.logits || !withNodeScores ? { in_graph: inGraph.has(name) } : { in_graph: inGraph.has(name), score: nodeScore.get(name) ?? 0 };
  }

  const ourEdges = new Map<string, number>();
  for (const edge of graph.edges) {
    const fold = (id: string) => (parseComponentId(id)?.kind === 'neuron' ? componentId.mlp(parseComponentId(id)!.layer!) : id);
    const key = `${fold(edge.source)}->${fold(edge.target)}`;
    ourEdges.set(key, (ourEdges.get(key) ?? 0) + edge.relevance);
  }
  const nodeLevel = nodeLevelGraph;

  const edges: EapIgGraphJson['edges'] = {};
  for (const [source, target, qkv] of eapIgEdgeList(cfg)) {
    const plain = `${source}->${target}`;
    const name = qkv === undefined ? plain : `${plain}<${qkv}>`;
    const relevance = ourEdges.get(plain);
    if (nodeLevel) {
      edges[name] = { score: 0, in_graph: inGraph.has(source) && inGraph.has(target) };
    } else {
      const score = relevance === undefined ? 0 : qkv !== undefined && qkvScore === 'split' ? relevance / 3 : relevance;
      edges[name] = { score, in_graph: relevance !== undefined };
    }
  }
  return { cfg, nodes, edges };
}

/**
 * Problems with an EAP-IG graph JSON (empty when valid): the shape `to_json` writes and the
 * constraints `from_json` enforces (known node names, real edges, q/k/v only into heads).
 */
export function validateEapIgJson(json: unknown): string[] {
  const problems: string[] = [];
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  const isInt = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value > 0;
  if (!isObject(json)) return ['the document must be a JSON object'];
  for (const key of ['cfg', 'nodes', 'edges']) if (!isObject(json[key])) problems.push(`${key}: required object is missing`);
  if (problems.length > 0) return problems;
  const cfg = json['cfg'] as Record<string, unknown>;
  if (!isInt(cfg['n_layers'])) problems.push('cfg.n_layers: expected a positive integer');
  if (!isInt(cfg['n_heads'])) problems.push('cfg.n_heads: expected a positive integer');
  if (!isInt(cfg['d_model'])) problems.push('cfg.d_model: expected a positive integer');
  if (typeof cfg['parallel_attn_mlp'] !== 'boolean') problems.push('cfg.parallel_attn_mlp: expected a boolean');
  if (problems.length > 0) return problems;
  if (cfg['parallel_attn_mlp'] === true) return ['cfg.parallel_attn_mlp: parallel attention/MLP graphs are not checked by this validator'];
  const shape = { n_layers: cfg['n_layers'] as number, n_heads: cfg['n_heads'] as number };

  const knownNodes = new Map(eapIgNodeNames(shape).map((node) => [node.name, node]));
  for (const [name, value] of Object.entries(json['nodes'] as Record<string, unknown>)) {
    if (!knownNodes.has(name)) problems.push(`nodes["${name}"]: not a node of a ${shape.n_layers}-layer, ${shape.n_heads}-head graph`);
    if (!isObject(value)) {
      problems.push(`nodes["${name}"]: expected an object`);
      continue;
    }
    if (typeof value['in_graph'] !== 'boolean') problems.push(`nodes["${name}"].in_graph: expected a boolean`);
    if (value['score'] !== undefined && (typeof value['score'] !== 'number' || !Number.isFinite(value['score']))) {
      problems.push(`nodes["${name}"].score: expected a finite number`);
    }
    if (value['neurons'] !== undefined && (!Array.isArray(value['neurons']) || value['neurons'].some((b) => typeof b !== 'boolean'))) {
      problems.push(`nodes["${name}"].neurons: expected an array of booleans`);
    }
    if (value['neurons_scores'] !== undefined && (!Array.isArray(value['neurons_scores']) || value['neurons_scores'].some((s) => typeof s !== 'number'))) {
      problems.push(`nodes["${name}"].neurons_scores: expected an array of numbers`);
    }
  }

  const edgePattern = /^(.+?)->(.+?)(?:<([qkv])>)?$/;
  for (const [name, value] of Object.entries(json['edges'] as Record<string, unknown>)) {
    const match = edgePattern.exec(name);
    if (match === null) {
      problems.push(`edges["${name}"]: the name must be "<source>-><target>" (with <q>, <k> or <v> for a head target)`);
      continue;
    }
    const [, sourceName, targetName, qkv] = match;
    const source = knownNodes.get(sourceName!);
    const target = knownNodes.get(targetName!);
    if (source === undefined || source.kind === 'logits') problems.push(`edges["${name}"]: "${sourceName}" cannot start an edge`);
    if (target === undefined || target.kind === 'input') problems.push(`edges["${name}"]: "${targetName}" cannot end an edge`);
    if (source !== undefined && target !== undefined) {
      if (target.kind === 'head' && qkv === undefined) problems.push(`edges["${name}"]: edges into an attention head must name its q, k or v input`);
      if (target.kind !== 'head' && qkv !== undefined) problems.push(`edges["${name}"]: only edges into attention heads carry <q|k|v>`);
      if (!isForwardEdge(source, target)) problems.push(`edges["${name}"]: not an edge of the model graph (it does not go forward)`);
    }
    if (!isObject(value)) {
      problems.push(`edges["${name}"]: expected an object`);
      continue;
    }
    if (typeof value['score'] !== 'number' || !Number.isFinite(value['score'])) problems.push(`edges["${name}"].score: expected a finite number`);
    if (typeof value['in_graph'] !== 'boolean') problems.push(`edges["${name}"].in_graph: expected a boolean`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (b) Neuronpedia / circuit-tracer

export interface NeuronpediaNode {
  node_id: string;
  feature: number | null;
  layer: string | number;
  ctx_idx: number;
  feature_type: string;
  jsNodeId: string;
  clerp: string;
  influence?: number | null;
  activation?: number | null;
  token_prob?: number;
  is_target_logit?: boolean;
  reverse_ctx_idx?: number;
}

export interface NeuronpediaLink {
  source: string;
  target: string;
  weight: number;
}

export interface NeuronpediaGraphJson {
  metadata: {
    slug: string;
    scan: string;
    transcoder_list: string[];
    prompt_tokens: string[];
    prompt: string;
    schema_version?: number;
    node_threshold?: number;
    info?: {
      description?: string;
      creator_name?: string;
      creator_url?: string;
      source_urls?: string[];
      generator?: { name?: string; version?: string; url?: string; email?: string };
      create_time_ms?: number;
    };
    generation_settings?: Record<string, unknown>;
    pruning_settings?: { node_threshold?: number; edge_threshold?: number };
  };
  qParams: { pinnedIds?: string[]; supernodes?: unknown[]; linkType?: string; clickedId?: string; sg_pos?: string };
  nodes: NeuronpediaNode[];
  links: NeuronpediaLink[];
}

export interface NeuronpediaExportOptions {
  /** URL-safe name of the graph. */
  readonly slug: string;
  /** Model id (Neuronpedia's `scan`); default: the graph's model name. */
  readonly scan?: string;
  /** The prompt shown, its token ids and their strings (same length). */
  readonly prompt: string;
  readonly promptIds: readonly number[];
  readonly promptTokens: readonly string[];
  /** The explained token (the logit node) and its probability (softmax of the logits) at the last position. */
  readonly target: { readonly id: number; readonly text: string; readonly probability: number };
  /** Per-token relevance `[T]` for this prompt, used to split `input` over the tokens. */
  readonly tokenRelevance?: ArrayLike<number>;
  /** Links for node-level circuits (see the module comment). Default `to-logits`. */
  readonly nodeLinks?: 'to-logits' | 'none';
  readonly description?: string;
  readonly generator?: GeneratorInfo;
  /** Timestamp for `metadata.info.create_time_ms` (default: now). */
  readonly createTimeMs?: number;
}

export function toNeuronpediaJson(graph: CircuitGraph, options: NeuronpediaExportOptions): NeuronpediaGraphJson {
  const length = options.promptIds.length;
  if (length === 0) throw new Error('Neuronpedia export: the prompt has no tokens');
  if (options.promptTokens.length !== length) {
    throw new Error(`Neuronpedia export: ${options.promptTokens.length} token strings for ${length} token ids`);
  }
  if (options.tokenRelevance !== undefined && options.tokenRelevance.length !== length) {
    throw new Error(`Neuronpedia export: token relevance has ${options.tokenRelevance.length} entries for ${length} tokens`);
  }
  const probability = options.target.probability;
  if (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)) {
    throw new Error(`Neuronpedia export: the target probability must be a number in [0, 1], got ${String(probability)} (both viewers read it from the logit node)`);
  }
  const lastPosition = length - 1;
  const { nLayers, nHeads } = graph.model;

  const embeddingIds = options.promptIds.map((token, position) => `E_${token}_${position}`);
  const logitId = `${nLayers + 1}_${options.target.id}_${lastPosition}`;
  const componentIdMap = new Map<string, string>();

  const components = graph.nodes.filter(isComponentNode);
  const totalAbs = components.reduce((sum, node) => sum + Math.abs(node.relevance), 0);
  const influence = new Map<string, number>();
  let cumulative = 0;
  for (const node of [...components].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance))) {
    cumulative += Math.abs(node.relevance);
    influence.set(node.id, totalAbs === 0 ? 1 : cumulative / totalAbs);
  }

  const nodes: NeuronpediaNode[] = options.promptIds.map((token, position) => ({
    node_id: embeddingIds[position]!,
    feature: position,
    layer: 'E',
    ctx_idx: position,
    feature_type: 'embedding',
    jsNodeId: `E_${token}-${position}`,
    clerp: options.promptTokens[position]!,
    ...(options.tokenRelevance !== undefined && { activation: options.tokenRelevance[position]! }),
  }));
  for (const node of components) {
    const { index, featureType } = neuronpediaFeature(node, nHeads);
    const nodeId = `${node.layer}_${index}_${lastPosition}`;
    componentIdMap.set(node.id, nodeId);
    nodes.push({
      node_id: nodeId,
      feature: cantorPair(node.layer, index),
      layer: String(node.layer),
      ctx_idx: lastPosition,
      feature_type: featureType,
      jsNodeId: `${node.layer}_${index}-0`,
      clerp: node.id,
      influence: influence.get(node.id)!,
      activation: node.relevance,
    });
  }
  nodes.push({
    node_id: logitId,
    feature: options.target.id,
    layer: String(nLayers + 1),
    ctx_idx: lastPosition,
    feature_type: 'logit',
    jsNodeId: `L_${options.target.id}-${lastPosition}`,
    // circuit-tracer's logit_node: f'Output "{token}" (p={token_prob:.3f})' (token unescaped).
    clerp: `Output "${options.target.text}" (p=${probability.toFixed(3)})`,
    token_prob: probability,
    is_target_logit: true,
  });

  // How `input`'s share of a link is spread over the prompt tokens (sums to 1).
  const tokenShares = (() => {
    const relevance = options.tokenRelevance;
    let total = 0;
    if (relevance !== undefined) for (let i = 0; i < length; i++) total += Math.abs(relevance[i]!);
    return Array.from({ length }, (_, i) => (relevance === undefined || total === 0 ? 1 / length : Math.abs(relevance[i]!) / total));
  })();

  const mapNode = (id: string): string | undefined =>
    id === componentId.logits ? logitId : componentIdMap.get(id);
  const links: NeuronpediaLink[] = [];
  const pushLink = (source: string, target: string, weight: number) => {
    if (weight !== 0) links.push({ source, target, weight }); // circuit-tracer drops zero links too
  };
  for (const edge of graph.edges) {
    const target = mapNode(edge.target);
    if (target === undefined) throw new Error(`Neuronpedia export: edge ${edge.id} ends at "${edge.target}", which has no node`);
    if (edge.source === componentId.input) {
      embeddingIds.forEach((embedding, position) => pushLink(embedding, target, edge.relevance * tokenShares[position]!));
    } else {
      const source = mapNode(edge.source);
      if (source === undefined) throw new Error(`Neuronpedia export: edge ${edge.id} starts at "${edge.source}", which has no node`);
      pushLink(source, target, edge.relevance);
    }
  }
  if (graph.edges.length === 0 && (options.nodeLinks ?? 'to-logits') === 'to-logits') {
    for (const node of components) pushLink(componentIdMap.get(node.id)!, logitId, node.relevance);
    if (options.tokenRelevance !== undefined) {
      embeddingIds.forEach((embedding, position) => pushLink(embedding, logitId, options.tokenRelevance![position]!));
    }
  }

  const generator = options.generator ?? CIRCUIT_LENS_GENERATOR;
  const selection = graph.selection;
  return {
    metadata: {
      slug: options.slug,
      scan: options.scan ?? graph.model.name,
      transcoder_list: [],
      prompt_tokens: [...options.promptTokens],
      prompt: options.prompt,
      schema_version: 1,
      info: {
        description:
          options.description ??
          `${graph.method.name} circuit for task "${graph.task.name}" (${graph.task.examples} examples, metric ${graph.task.metric}), ${graph.granularity}`,
        generator: { ...generator },
        create_time_ms: options.createTimeMs ?? Date.now(),
      },
      generation_settings: {
        method: graph.method.name,
        ...(graph.method.aggregation !== undefined && { aggregation: graph.method.aggregation }),
        granularity: graph.granularity,
        task: graph.task.name,
        metric: graph.task.metric,
        examples: graph.task.examples,
      },
      pruning_settings: {
        ...(selection.rule === 'budget' && selection.level === 'node' && { node_threshold: selection.value! }),
        ...(selection.rule === 'budget' && selection.level === 'edge' && { edge_threshold: selection.value! }),
      },
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: logitId, sg_pos: '' },
    nodes,
    links,
  };
}

/** Cantor pairing (circuit-tracer `Node.feature_node`, Neuronpedia `getCantorValueFromLayerAndIndex`). */
export function cantorPair(layer: number, index: number): number {
  return ((layer + index) * (layer + index + 1)) / 2 + index;
}

/** Inverse of `cantorPair` (Neuronpedia `getLayerFromCantorValue` / `getIndexFromCantorValue`). */
export function cantorUnpair(feature: number): { layer: number; index: number } {
  const w = Math.floor((Math.sqrt(8 * feature + 1) - 1) / 2);
  const index = feature - (w * w + w) / 2;
  return { layer: w - index, index };
}

/** The entry circuit-tracer's `add_graph_metadata` keeps per graph in `graph-metadata.json` (its `Metadata`, dumped). */
export function graphMetadataEntry(json: NeuronpediaGraphJson): Record<string, unknown> {
  const { slug, scan, transcoder_list, prompt_tokens, prompt, schema_version } = json.metadata;
  return { slug, scan, transcoder_list, prompt_tokens, prompt, node_threshold: json.metadata.node_threshold ?? null, schema_version: schema_version ?? 1 };
}

/**
 * `graph-metadata.json` with `entry` added, replacing a graph of the same slug (circuit-tracer
 * `frontend/utils.py` `add_graph_metadata`). `existing` is the parsed file or undefined.
 */
export function mergeGraphMetadata(existing: unknown, entry: Record<string, unknown>): { graphs: Record<string, unknown>[] } {
  const graphs = typeof existing === 'object' && existing !== null && Array.isArray((existing as { graphs?: unknown }).graphs) ? ((existing as { graphs: Record<string, unknown>[] }).graphs) : [];
  return { graphs: [...graphs.filter((g) => g?.['slug'] !== entry['slug']), entry] };
}

/**
 * What would keep a valid graph from being drawn: Neuronpedia's `formatCLTGraphData` throws
 * "No layer found" (and circuit-tracer places the logit at layer 1) when no non-logit node has
 * a numeric layer above 0, i.e. when every component sits in layer 0.
 */
export function neuronpediaWarnings(json: NeuronpediaGraphJson): string[] {
  const layers = json.nodes.filter((n) => n.feature_type !== 'logit').map((n) => Number(n.layer)).filter((l) => Number.isFinite(l));
  if (Math.max(0, ...layers) > 0) return [];
  return [
    layers.length === 0
      ? 'the graph has no component nodes: Neuronpedia\'s viewer refuses it ("No layer found")'
      : 'every component of this circuit is in layer 0: Neuronpedia\'s viewer refuses such a graph ("No layer found"), circuit-tracer draws it; select a circuit that reaches a later layer to view it on Neuronpedia',
  ];
}

function neuronpediaFeature(node: CircuitNode, nHeads: number): { index: number; featureType: string } {
  switch (node.kind) {
    case 'head':
      return { index: node.head!, featureType: 'attention head' };
    case 'mlp':
      return { index: nHeads, featureType: 'mlp' };
    case 'neuron':
      return { index: nHeads + 1 + node.neuron!, featureType: 'mlp neuron' };
    default:
      throw new Error(`Neuronpedia export: "${node.id}" is not a component`);
  }
}

/**
 * Problems with a Neuronpedia graph JSON (empty when valid): every constraint of graph-schema.json
 * (required keys and types), plus what its consumers assume: unique node ids and links between
 * existing nodes (circuit-tracer refuses "dangling" links).
 */
export function validateNeuronpediaJson(json: unknown): string[] {
  const problems: string[] = [];
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  const isInteger = (value: unknown) => typeof value === 'number' && Number.isInteger(value);
  if (!isObject(json)) return ['the document must be a JSON object'];
  for (const key of ['metadata', 'qParams'] as const) if (!isObject(json[key])) problems.push(`${key}: required object is missing`);
  for (const key of ['nodes', 'links'] as const) if (!Array.isArray(json[key])) problems.push(`${key}: required array is missing`);
  if (problems.length > 0) return problems;

  const metadata = json['metadata'] as Record<string, unknown>;
  if (typeof metadata['slug'] !== 'string') problems.push('metadata.slug: required string');
  if (typeof metadata['scan'] !== 'string') problems.push('metadata.scan: required string');
  if (!Array.isArray(metadata['transcoder_list']) || metadata['transcoder_list'].some((t) => typeof t !== 'string')) {
    problems.push('metadata.transcoder_list: required array of strings (circuit-tracer\'s Metadata; [] without transcoders)');
  }
  if (typeof metadata['prompt'] !== 'string') problems.push('metadata.prompt: required string');
  if (!Array.isArray(metadata['prompt_tokens']) || metadata['prompt_tokens'].some((t) => typeof t !== 'string')) {
    problems.push('metadata.prompt_tokens: required array of strings');
  }
  if (metadata['node_threshold'] !== undefined && typeof metadata['node_threshold'] !== 'number') problems.push('metadata.node_threshold: expected a number');
  for (const key of ['feature_details', 'info', 'generation_settings', 'pruning_settings']) {
    if (metadata[key] !== undefined && !isObject(metadata[key])) problems.push(`metadata.${key}: expected an object`);
  }
  const info = metadata['info'];
  if (isObject(info)) {
    for (const key of ['description', 'creator_name', 'creator_url']) {
      if (info[key] !== undefined && typeof info[key] !== 'string') problems.push(`metadata.info.${key}: expected a string`);
    }
    if (info['source_urls'] !== undefined && !Array.isArray(info['source_urls'])) problems.push('metadata.info.source_urls: expected an array');
    if (info['create_time_ms'] !== undefined && typeof info['create_time_ms'] !== 'number') problems.push('metadata.info.create_time_ms: expected a number');
    const generator = info['generator'];
    if (generator !== undefined) {
      if (!isObject(generator)) problems.push('metadata.info.generator: expected an object');
      else for (const key of ['name', 'version', 'url', 'email']) {
        if (generator[key] !== undefined && typeof generator[key] !== 'string') problems.push(`metadata.info.generator.${key}: expected a string`);
      }
    }
  }
  const generation = metadata['generation_settings'];
  if (isObject(generation)) {
    for (const key of ['max_n_logits', 'batch_size', 'max_feature_nodes']) {
      if (generation[key] !== undefined && !isInteger(generation[key])) problems.push(`metadata.generation_settings.${key}: expected an integer`);
    }
    if (generation['desired_logit_prob'] !== undefined && typeof generation['desired_logit_prob'] !== 'number') {
      problems.push('metadata.generation_settings.desired_logit_prob: expected a number');
    }
  }
  const pruning = metadata['pruning_settings'];
  if (isObject(pruning)) {
    for (const key of ['node_threshold', 'edge_threshold']) {
      if (pruning[key] !== undefined && typeof pruning[key] !== 'number') problems.push(`metadata.pruning_settings.${key}: expected a number`);
    }
  }
  const details = metadata['feature_details'];
  if (isObject(details)) {
    for (const key of ['feature_json_base_url', 'neuronpedia_source_set', 'neuronpedia_lorsa_source_set']) {
      if (details[key] !== undefined && typeof details[key] !== 'string') problems.push(`metadata.feature_details.${key}: expected a string`);
    }
  }

  const qParams = json['qParams'] as Record<string, unknown>;
  if (qParams['pinnedIds'] !== undefined && (!Array.isArray(qParams['pinnedIds']) || qParams['pinnedIds'].some((id) => typeof id !== 'string'))) {
    problems.push('qParams.pinnedIds: expected an array of strings');
  }
  if (qParams['supernodes'] !== undefined && !Array.isArray(qParams['supernodes'])) problems.push('qParams.supernodes: expected an array');
  for (const key of ['linkType', 'clickedId', 'sg_pos']) {
    if (qParams[key] !== undefined && typeof qParams[key] !== 'string') problems.push(`qParams.${key}: expected a string`);
  }

  const nodeIds = new Set<string>();
  (json['nodes'] as unknown[]).forEach((node, index) => {
    const at = `nodes[${index}]`;
    if (!isObject(node)) return problems.push(`${at}: expected an object`);
    if (typeof node['node_id'] !== 'string') problems.push(`${at}.node_id: required string`);
    else if (nodeIds.has(node['node_id'])) problems.push(`${at}.node_id: duplicate id "${node['node_id']}"`);
    else nodeIds.add(node['node_id']);
    if (!(node['feature'] === null || isInteger(node['feature']))) problems.push(`${at}.feature: required integer or null`);
    if (!(typeof node['layer'] === 'string' || isInteger(node['layer']))) problems.push(`${at}.layer: required string or integer`);
    if (!isInteger(node['ctx_idx'])) problems.push(`${at}.ctx_idx: required integer`);
    for (const key of ['feature_type', 'jsNodeId', 'clerp']) if (typeof node[key] !== 'string') problems.push(`${at}.${key}: required string`);
    for (const key of ['influence', 'activation']) {
      if (node[key] !== undefined && node[key] !== null && typeof node[key] !== 'number') problems.push(`${at}.${key}: expected a number or null`);
    }
    if (node['feature_type'] === 'logit') {
      // Both viewers run `+d.clerp.split('(p=')[1].split(')')[0]` on every logit node.
      const p = typeof node['clerp'] === 'string' ? /\(p=([^)]*)\)/.exec(node['clerp']) : null;
      if (p === null || !Number.isFinite(Number(p[1])) || p[1]!.trim() === '') problems.push(`${at}.clerp: a logit node's clerp must carry its probability as "(p=0.123)"`);
      if (typeof node['token_prob'] !== 'number') problems.push(`${at}.token_prob: a logit node needs its probability`);
    } else if (metadata['schema_version'] === 1 && isInteger(node['feature']) && typeof node['layer'] === 'string' && /^\d+$/.test(node['layer'])) {
      // schema_version 1: the viewers decode the layer from `feature` (Cantor pairing).
      const decoded = cantorUnpair(node['feature'] as number).layer;
      if (decoded !== Number(node['layer'])) problems.push(`${at}.feature: ${String(node['feature'])} decodes to layer ${decoded}, not ${node['layer']} (schema_version 1 features are Cantor pairs of layer and index)`);
    }
    return undefined;
  });
  (json['links'] as unknown[]).forEach((link, index) => {
    const at = `links[${index}]`;
    if (!isObject(link)) return problems.push(`${at}: expected an object`);
    for (const key of ['source', 'target']) {
      if (typeof link[key] !== 'string') problems.push(`${at}.${key}: required string`);
      else if (!nodeIds.has(link[key])) problems.push(`${at}.${key}: "${link[key]}" is not a node id (dangling link)`);
    }
    if (typeof link['weight'] !== 'number') problems.push(`${at}.weight: required number`);
    return undefined;
  });
  return problems;
}
