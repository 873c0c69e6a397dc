/**
 * The prompt graph on the wire (worker → host → webview): the same `PromptGraph` object that
 * `circuit-lens graph --out` writes (src/circuits/prompt/promptGraph.ts), checked field by field,
 * and what ablating one of its nodes measured. No import of the circuits code: the webview
 * bundles this file.
 */
import { COMPOSITES } from '../vocabulary';
import { s, type Infer } from './schema';

/** Head/MLP node at a position (`a2.h2@19`, `m0@13`): what can be ablated. */
export const promptNodeIdSchema = s.string({ max: 32, pattern: /^(a\d+\.h\d+|m\d+)@\d+$/ });
export const PROMPT_ABLATION_CHOICES = ['zero', 'mean', 'resample'] as const;

const MAX_ITEMS = 1 << 17;
const num = s.anyNumber();
const position = s.number({ int: true, min: 0, max: 1 << 16 });
const tokenText = s.nullable(s.string({ max: 1024 }));
const token = s.number({ int: true, min: 0, max: 1 << 24 });

const nodeSchema = s.object({
  id: s.string({ max: 64 }),
  kind: s.literal('input', 'head', 'mlp', 'error', 'logits'),
  layer: s.number({ int: true, min: -1, max: 1 << 12 }),
  position: s.nullable(position),
  head: s.optional(s.number({ int: true, min: 0, max: 1 << 12 })),
  component: s.optional(s.string({ max: 32 })),
  token: s.optional(s.string({ max: 1024 })),
  relevance: num,
  inflow: s.optional(num),
  error: s.optional(num),
  influence: s.optional(num),
});

const edgeSchema = s.object({
  id: s.string({ max: 160 }),
  source: s.string({ max: 64 }),
  target: s.string({ max: 64 }),
  relevance: num,
  paths: s.optional(s.object({ ov: num, qkKey: num, qkQuery: num })),
  /** Kept by the QK selection into heads (README "Prompt graphs", Pruning). */
  qkSelected: s.optional(s.literal(true)),
});

const numbers = s.array(num, { max: 1 << 16 });

export const promptGraphSchema = s.object({
  version: s.literal(1),
  kind: s.literal('prompt-graph'),
  model: s.object({ name: s.string({ max: 4096 }), nLayers: s.number({ int: true, min: 0 }), nHeads: s.number({ int: true, min: 0 }), dModel: s.number({ int: true, min: 0 }), dMlp: s.number({ int: true, min: 0 }) }),
  task: s.object({ name: s.literal('prompt'), metric: s.literal('logit', 'logit_diff', 'contrastive'), examples: s.literal(1) }),
  method: s.object({ name: s.literal(...COMPOSITES) }),
  granularity: s.literal('heads+mlps'),
  prompt: s.object({ text: s.nullable(s.string({ max: 1 << 16 })), ids: s.array(token, { max: 1 << 16 }), tokens: s.nullable(s.array(s.string({ max: 1024 }), { max: 1 << 16 })) }),
  target: s.object({
    position,
    token,
    text: tokenText,
    foil: s.optional(token),
    foilText: s.optional(tokenText),
    value: num,
    probability: num,
    competitors: s.array(s.object({ token, text: tokenText, logit: num, probability: num }), { max: 64 }),
  }),
  nodes: s.array(nodeSchema, { max: MAX_ITEMS }),
  edges: s.array(edgeSchema, { max: MAX_ITEMS }),
  attention: s.record(s.object({ keys: s.array(position, { max: 1 << 16 }), pattern: numbers, ov: numbers, qkKey: numbers, qkQuery: num }), { maxKeys: MAX_ITEMS, keyMax: 64 }),
  ranking: s.array(s.object({ id: s.string({ max: 64 }), component: s.string({ max: 32 }), layer: s.number({ int: true, min: 0 }), head: s.optional(s.number({ int: true, min: 0 })), position, relevance: num }), { max: 4096 }),
  conservation: s.object({ explained: num, embeddings: num, errors: num, sum: num, relativeError: num }),
  selection: s.object({ nodeThreshold: num, edgeThreshold: num, candidates: num, keptNodes: num, nodeShare: num, computedEdges: num, keptEdges: num, edgeShare: num, qkThreshold: s.optional(num), qkEdges: s.optional(num), qkAdded: s.optional(num), qkShare: s.optional(num) }),
  metrics: s.object({
    completeness: num,
    replacement: num,
    verification: s.optional(
      s.object({ ablation: s.literal(...PROMPT_ABLATION_CHOICES), nodes: s.array(s.object({ id: s.string({ max: 64 }), predicted: num, measured: num }), { max: 4096 }), pearson: num, spearman: num }),
    ),
  }),
});
/** `PromptGraph` as validated (src/pipelines/promptGraph.ts checks at compile time that the two agree). */
export type PromptGraphWire = Infer<typeof promptGraphSchema>;

/** What re-running the prompt with one node ablated at its position measured. */
export const promptAblationSchema = s.object({
  node: promptNodeIdSchema,
  ablation: s.literal(...PROMPT_ABLATION_CHOICES),
  /** The explained value of the unablated prompt (equals the graph's `target.value`). */
  full: num,
  /** The explained value with the node ablated. */
  ablated: num,
});
export type PromptAblationResult = Infer<typeof promptAblationSchema>;

/** The logit lens of a prompt (src/circuits/prompt/promptViews.ts `logitLens`, as `circuit-lens lens`). */
export const logitLensSchema = s.object({
  /** `embed`, then `after l0` … (the last is the model's own next-token distribution). */
  layers: s.array(s.string({ max: 32 }), { max: 1 << 12 }),
  positions: s.array(position, { max: 1 << 16 }),
  /** [layer][position] → top tokens. */
  top: s.array(s.array(s.array(s.object({ id: token, token: tokenText, logit: num, probability: num }), { max: 64 }), { max: 1 << 16 }), { max: 1 << 12 }),
});

/** Steer-and-generate (`steerAndGenerate`, as `circuit-lens steer`): the continuation with a node scaled beside the clean one. */
export const steerSchema = s.object({
  node: s.string({ max: 32 }),
  position,
  scale: num,
  clean: s.object({ ids: s.array(token, { max: 4096 }), text: tokenText }),
  steered: s.object({ ids: s.array(token, { max: 4096 }), text: tokenText }),
});
