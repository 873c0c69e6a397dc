/**
 * Data shapes shared by the host, the engine worker and the webview. A circuit travels as the
 * one documented `CircuitGraph` (src/circuits/discovery/graph.ts) from discovery to file to wire to
 * panel; its schema is the same validator `circuit-lens verify --circuit` reads files with.
 * Pruning and correction results are runs of their own (`runSchema`), never circuits.
 */
import type { Attribution, ForwardRow, ModelInfo, Target } from '../engine/api';
import { validateCircuitGraph, type CircuitGraph } from '../circuits/discovery/graph';
import { COMPONENT_ID_PATTERN } from '../models/componentIds';
import { COMPOSITES, EXECUTION_PROVIDERS, METRIC_NAMES, PRUNE_METHODS, PRUNE_SCOPES, ABLATIONS, AGGREGATIONS, SAMPLE_UNITS, WEIGHT_PRECISIONS } from '../vocabulary';
import { ProtocolError, s, type Infer, type Schema } from './schema';

// Compile-time check that a schema and the engine's type agree in both directions.
type Same<A, B> = [A] extends [B] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false;
const assertSame = <T extends true>(): T | undefined => undefined;

export const componentIdSchema = s.string({ max: 24, pattern: COMPONENT_ID_PATTERN });
export const modeSchema = s.literal(...COMPOSITES);
export const providerSchema = s.literal(...EXECUTION_PROVIDERS);
export const weightPrecisionSchema = s.literal(...WEIGHT_PRECISIONS);
export const tokenIdSchema = s.number({ int: true, min: 0, max: 1 << 24 });
export const idsSchema = s.array(s.array(tokenIdSchema, { max: 1 << 16 }), { max: 4096 });

export const targetSchema = s.object({
  kind: s.literal('logit', 'logit_diff', 'contrastive', 'set_diff'),
  position: s.number({ int: true, min: -1 << 16, max: 1 << 16 }),
  token: tokenIdSchema,
  foil: s.optional(tokenIdSchema),
  good: s.optional(s.array(tokenIdSchema, { max: 1 << 16 })),
  bad: s.optional(s.array(tokenIdSchema, { max: 1 << 16 })),
});
assertSame<Same<Infer<typeof targetSchema>, Target>>();

export const interventionsSchema = s.object({
  ablate: s.array(componentIdSchema, { max: 1 << 16 }),
  headReplacement: s.optional(s.array(s.array(s.float32()), { max: 4096 })),
  neuronReplacement: s.optional(s.array(s.array(s.float32()), { max: 4096 })),
});

export const modelInfoSchema = s.object({
  folder: s.string({ max: 4096 }),
  architecture: s.string({ max: 256 }),
  modelType: s.string({ max: 256 }),
  layers: s.number({ int: true, min: 0 }),
  heads: s.number({ int: true, min: 0 }),
  kvHeads: s.number({ int: true, min: 0 }),
  dModel: s.number({ int: true, min: 0 }),
  headDim: s.number({ int: true, min: 0 }),
  dMlp: s.number({ int: true, min: 0 }),
  vocab: s.number({ int: true, min: 0 }),
  maxPositions: s.number({ int: true, min: 0 }),
  parameters: s.number({ int: true, min: 0 }),
  dtype: s.string({ max: 64 }),
  executionProvider: s.string({ max: 64 }),
});
assertSame<Same<Infer<typeof modelInfoSchema>, ModelInfo>>();

/** What `load` returns: the engine's info plus what the extension needs to know about the folder. */
export const loadedModelSchema = s.object({
  info: modelInfoSchema,
  hasTokenizer: s.boolean(),
});
export type LoadedModel = Infer<typeof loadedModelSchema>;

/** One token of an attributed prompt with its character span in the prompt text. */
export const tokenRelevanceSchema = s.object({
  id: tokenIdSchema,
  text: s.string({ max: 1024 }),
  start: s.number({ int: true, min: 0 }),
  end: s.number({ int: true, min: 0 }),
  relevance: s.anyNumber(),
});
export type TokenRelevance = Infer<typeof tokenRelevanceSchema>;

export const nextTokenSchema = s.object({
  id: tokenIdSchema,
  text: s.string({ max: 1024 }),
  prob: s.anyNumber(),
  logit: s.anyNumber(),
});
export type NextToken = Infer<typeof nextTokenSchema>;

/** The prompt-level result behind the editor heatmap (tokens, target, top next tokens). */
export const promptAttributionSchema = s.object({
  mode: modeSchema,
  tokens: s.array(tokenRelevanceSchema, { max: 1 << 16 }),
  positionRelevance: s.nullable(s.array(s.anyNumber(), { max: 1 << 16 })),
  target: s.object({
    kind: s.literal('logit', 'logit_diff', 'contrastive', 'set_diff'),
    token: tokenIdSchema,
    text: s.string({ max: 1024 }),
    foil: s.optional(tokenIdSchema),
    foilText: s.optional(s.string({ max: 1024 })),
    value: s.anyNumber(),
  }),
  topNext: s.array(nextTokenSchema, { max: 100 }),
  headRelevance: s.array(s.array(s.anyNumber(), { max: 4096 }), { max: 4096 }),
  sums: s.object({ token: s.anyNumber(), position: s.anyNumber(), bias: s.anyNumber() }),
});
export type PromptAttribution = Infer<typeof promptAttributionSchema>;

export const forwardRowSchema = s.object({
  logitsLast: s.float32(),
  logits: s.optional(s.float32()),
  headZ: s.optional(s.array(s.float32(), { max: 4096 })),
  mlpPost: s.optional(s.array(s.float32(), { max: 4096 })),
});
assertSame<Same<Infer<typeof forwardRowSchema>, Omit<ForwardRow, never>>>();

const matrixSchema = s.array(s.array(s.anyNumber(), { max: 4096 }), { max: 4096 });
export const attributionSchema = s.object({
  targetValue: s.anyNumber(),
  logitsLast: s.float32(),
  tokenRelevance: s.float32(),
  positionRelevance: s.nullable(s.float32()),
  headRelevance: matrixSchema,
  headRelevanceProbs: s.nullable(matrixSchema),
  headRelevanceScores: s.nullable(matrixSchema),
  mlpRelevance: s.nullable(s.array(s.float32(), { max: 4096 })),
  residPre: s.array(s.anyNumber(), { max: 4096 }),
  residMid: s.array(s.anyNumber(), { max: 4096 }),
  residFinal: s.anyNumber(),
  biasRelevance: s.object({ linear: s.anyNumber(), layernorm: s.anyNumber() }),
  headPatch: s.optional(matrixSchema),
  neuronPatch: s.optional(s.array(s.float32(), { max: 4096 })),
  weightRelevance: s.record(s.float32(), { maxKeys: 4096 }),
});
assertSame<Same<Infer<typeof attributionSchema>, Attribution>>();

// ── circuits ──

/** Largest circuit accepted on the wire (nodes + edges), about 12 MB of JSON. */
const MAX_GRAPH_ITEMS = 1 << 17;

/**
 * The circuit graph, checked by the same validator that reads circuit files (every problem with
 * its JSON path). A fresh copy crosses the boundary: structured clone or `JSON.parse`.
 */
export const circuitGraphSchema: Schema<CircuitGraph> = {
  label: 'circuit graph',
  parse(v, path, budget) {
    const items = (v as { nodes?: unknown[] })?.nodes?.length ?? 0;
    const edges = (v as { edges?: unknown[] })?.edges?.length ?? 0;
    if (items + edges > MAX_GRAPH_ITEMS) throw new ProtocolError(`${path}: circuit graph has more than ${MAX_GRAPH_ITEMS} nodes and edges`);
    budget.spend(96 * (items + edges), path);
    try {
      return validateCircuitGraph(v, path || 'circuit');
    } catch (err) {
      throw new ProtocolError((err as Error).message.slice(0, 2000));
    }
  },
};

/** What verifying a circuit on its task measured (`src/pipelines/circuits.ts`, `verify`). */
export const verificationSchema = s.object({
  metric: s.literal(...METRIC_NAMES),
  ablation: s.literal(...ABLATIONS),
  full: s.anyNumber(),
  /** Everything in the ablation universe ablated. */
  empty: s.anyNumber(),
  /** Everything outside the circuit ablated. */
  circuit: s.anyNumber(),
  /** Only the circuit ablated. */
  complement: s.anyNumber(),
  faithfulness: s.anyNumber(),
  completeness: s.anyNumber(),
  cpr: s.anyNumber(),
  cmd: s.anyNumber(),
  curve: s.array(s.object({ fraction: s.anyNumber(), size: s.number({ int: true, min: 0 }), score: s.anyNumber(), faithfulness: s.anyNumber() }), { max: 4096 }),
  /** The circuit without the components the user toggled off in the panel. */
  ablated: s.optional(s.object({ nodes: s.array(componentIdSchema, { max: 1 << 15 }), circuit: s.anyNumber(), faithfulness: s.anyNumber() })),
});
export type VerificationSummary = Infer<typeof verificationSchema>;

// ── runs: pruning and correction results (never circuits) ──

const runHeader = {
  id: s.string({ max: 128 }),
  title: s.string({ max: 512 }),
  /** ISO time. */
  created: s.string({ max: 64 }),
  model: s.string({ max: 4096 }),
};

export const pruneRunSchema = s.object({
  ...runHeader,
  kind: s.literal('prune'),
  settings: s.object({
    method: s.literal(...PRUNE_METHODS),
    scope: s.literal(...PRUNE_SCOPES),
    sparsity: s.number({ min: 0, max: 1 }),
    aggregation: s.literal(...AGGREGATIONS),
    target: s.literal('logit', 'contrastive'),
    samples: s.literal(...SAMPLE_UNITS),
    windows: s.number({ int: true, min: 1 }),
    windowLength: s.number({ int: true, min: 2 }),
    calibText: s.nullable(s.string({ max: 4096 })),
    evalText: s.nullable(s.string({ max: 4096 })),
  }),
  achievedSparsity: s.number({ min: 0, max: 1 }),
  prunedWeights: s.number({ int: true, min: 0 }),
  totalWeights: s.number({ int: true, min: 0 }),
  evalTokens: s.number({ int: true, min: 0 }),
  perplexityBefore: s.nullable(s.anyNumber()),
  perplexityAfter: s.nullable(s.anyNumber()),
  /** Perplexity against sparsity (0 = dense) on a true numeric axis. */
  curve: s.array(s.object({ sparsity: s.number({ min: 0, max: 1 }), perplexity: s.anyNumber() }), { max: 64 }),
});
export type PruneRun = Infer<typeof pruneRunSchema>;

export const correctRunSchema = s.object({
  ...runHeader,
  kind: s.literal('correct'),
  settings: s.object({
    undesired: s.string({ max: 4096 }),
    general: s.string({ max: 4096 }),
    unit: s.literal('neurons', 'weights'),
    count: s.number({ int: true, min: 0 }),
    mode: modeSchema,
    windows: s.number({ int: true, min: 1 }),
    windowLength: s.number({ int: true, min: 2 }),
  }),
  totalComponents: s.number({ int: true, min: 0 }),
  removed: s.array(s.string({ max: 64 }), { max: 1 << 20 }),
  /** Metric name → value on the dense model and on the corrected one. */
  before: s.record(s.anyNumber(), { maxKeys: 32 }),
  after: s.record(s.anyNumber(), { maxKeys: 32 }),
});
export type CorrectRun = Infer<typeof correctRunSchema>;

/**
 * SparC³'s circuit protocol (src/pipelines/pruneCurve.ts): IOI accuracy vs sparsity per mode and
 * method, mean ± SEM over reference-set seeds, and each method's circuit (the sparsest model
 * keeping `keep` × dense accuracy). The names are listed here, not imported, so the webview bundle
 * does not pull in the engine; src/pipelines/pruneCurve.ts checks at compile time that they equal src/circuits'.
 */
export const CURVE_METHOD_NAMES = ['attnlrp', 'gradient', 'activation', 'wanda', 'random'] as const;
export const CURVE_MODE_NAMES = ['structured', 'unstructured'] as const;
const unitNumber = s.number({ min: 0, max: 1 });
export const pruneCurveRunSchema = s.object({
  ...runHeader,
  kind: s.literal('prune-curve'),
  settings: s.object({
    eval: s.string({ max: 4096 }),
    seeds: s.number({ int: true, min: 1 }),
    reference: s.number({ int: true, min: 2 }),
    evaluation: s.number({ int: true, min: 0 }),
    keep: unitNumber,
    rates: s.array(unitNumber, { max: 64 }),
  }),
  /** Dense-model IOI accuracy. */
  dense: unitNumber,
  series: s.array(
    s.object({
      mode: s.literal(...CURVE_MODE_NAMES),
      method: s.literal(...CURVE_METHOD_NAMES),
      scope: s.literal('global', 'rowwise'),
      rates: s.array(unitNumber, { max: 64 }),
      /** `[seed][rate]` accuracy. */
      accuracy: s.array(s.array(unitNumber, { max: 64 }), { max: 64 }),
      mean: s.array(unitNumber, { max: 64 }),
      sem: s.array(s.anyNumber(), { max: 64 }),
      circuitRate: unitNumber,
      circuitSize: s.number({ int: true, min: 0 }),
      total: s.number({ int: true, min: 0 }),
    }),
    { max: 16 },
  ),
});
export type PruneCurveRun = Infer<typeof pruneCurveRunSchema>;

export const runSchema = s.tagged('kind', { prune: pruneRunSchema, correct: correctRunSchema, 'prune-curve': pruneCurveRunSchema });
export type Run = PruneRun | CorrectRun | PruneCurveRun;
