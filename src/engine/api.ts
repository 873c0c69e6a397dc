/**
 * The engine's public surface: what the CLI, the circuit tooling and the extension (through
 * the worker) can ask of a loaded model. Plain data in and out so every request can cross a
 * `worker_threads` boundary unchanged.
 */

import type { Composite } from '../vocabulary';
import type { RuleTable } from './rules';
export type { Composite, ExecutionProviderSetting } from '../vocabulary';

/**
 * What is explained at `position`:
 * - `logit`: seed +1 at `token` (the explained quantity is the logit);
 * - `logit_diff`: +1 at `token`, −1 at `foil` (the IOI metric);
 * - `contrastive`: +1 at `token`, −1/V at every vocabulary entry (≈ logit − mean logit);
 * - `set_diff`: +1/|good| at each `good` token, −1/|bad| at each `bad` one (greater-than).
 */
export interface Target {
  readonly kind: 'logit' | 'logit_diff' | 'contrastive' | 'set_diff';
  readonly position: number;
  readonly token: number;
  readonly foil?: number;
  readonly good?: readonly number[];
  readonly bad?: readonly number[];
}

/**
 * Ablation through the graph's intervention inputs. A component's activation becomes
 * `keep · own + (1 − keep) · replacement`; omitted replacement = zero ablation.
 * Heads act on z (before the output projection), neurons on the MLP activation.
 */
export interface Interventions {
  /** Component ids to ablate, e.g. `a2.h1`, `m3.n17`, `m3` (whole MLP block). */
  readonly ablate: readonly string[];
  /**
   * Replacement activations per batch row: per layer, `[T, H, headDim]` for heads
   * and `[T, dMlp]` for neurons, flattened. Omit for zero ablation.
   */
  readonly headReplacement?: readonly Float32Array[][]; // [row][layer]
  readonly neuronReplacement?: readonly Float32Array[][]; // [row][layer]
}

export interface ForwardRequest {
  /** One token-id list per batch row; rows may differ in length (right-padded internally). */
  readonly ids: readonly (readonly number[])[];
  /** Return the full `[T, V]` logits per row (otherwise only the last real position). */
  readonly allLogits?: boolean;
  /** Return hook activations: head z `[L][T,H,dh]` and MLP activations `[L][T,dMlp]`. */
  readonly hooks?: boolean;
  readonly interventions?: Interventions;
}

export interface ForwardRow {
  readonly logitsLast: Float32Array;
  /** `[T·V]` when `allLogits`. */
  readonly logits?: Float32Array;
  /** Per layer `[T·H·dh]` when `hooks`. */
  readonly headZ?: Float32Array[];
  /** Per layer `[T·dMlp]` when `hooks`. */
  readonly mlpPost?: Float32Array[];
}

export interface AttributeRequest {
  readonly ids: readonly (readonly number[])[];
  /** One target per row. */
  readonly targets: readonly Target[];
  readonly mode: Composite;
  /** HF tensor names of linear weights whose relevance R_W = W ⊙ g̃_W is wanted. */
  readonly weights?: readonly string[];
  readonly interventions?: Interventions;
  /** Per-neuron MLP relevance `[L][dMlp]` (default true). */
  readonly neurons?: boolean;
  /**
   * A rule table to use instead of `mode`'s entry (PXP's per-layer-group rule search,
   * src/circuits/pruning/tune.ts); `mode` still names the composite for the readouts.
   */
  readonly rules?: RuleTable;
}

/**
 * Explains many positions of each row in one backward pass: the sum over t of the logit of
 * `targets[row][t]` at position t (e.g. the true next token everywhere in a calibration
 * window). Positions past `targets[row].length` are not explained.
 */
export interface SequenceAttributeRequest {
  readonly ids: readonly (readonly number[])[];
  readonly targets: readonly (readonly number[])[];
  readonly mode: Composite;
  /** Seed +1 at each target and −1/V everywhere (explains logit − mean logit). */
  readonly contrastive?: boolean;
  readonly weights?: readonly string[];
  readonly neurons?: boolean;
  /** As `AttributeRequest.rules`. */
  readonly rules?: RuleTable;
}

export interface Attribution {
  readonly targetValue: number;
  /** Logits at the explained position (empty for sequence attribution, which forms none). */
  readonly logitsLast: Float32Array;
  /** `[T]` at the token-embedding output. */
  readonly tokenRelevance: Float32Array;
  /** `[T]` learned positional embeddings (GPT-2/OPT); null for RoPE models. */
  readonly positionRelevance: Float32Array | null;
  /** `[L][H]` */
  readonly headRelevance: number[][];
  /** `[L][H]` relevance at the attention probabilities; null for modes without it. */
  readonly headRelevanceProbs: number[][] | null;
  /**
   * `[L][H]` relevance at the softmax input (the scaled, masked scores). `headRelevanceProbs −
   * headRelevanceScores` is the AttnLRP softmax rule's leak; null without relevance through A.
   */
  readonly headRelevanceScores: number[][] | null;
  /** `[L][dMlp]` */
  readonly mlpRelevance: Float32Array[] | null;
  readonly residPre: number[];
  readonly residMid: number[];
  readonly residFinal: number;
  readonly biasRelevance: { readonly linear: number; readonly layernorm: number };
  /**
   * With interventions: Σ replacement ⊙ g̃ at each head's z `[L][H]` and each neuron `[L][dMlp]`.
   * With the `gradient` composite and corrupted activations as replacements (nothing ablated),
   * `headPatch − headRelevance` is attribution patching's (corrupted − clean) · ∇.
   */
  readonly headPatch?: number[][];
  readonly neuronPatch?: Float32Array[];
  /** HF tensor name → R_W in the HF layout. */
  readonly weightRelevance: Record<string, Float32Array>;
}

export interface ModelInfo {
  readonly folder: string;
  readonly architecture: string;
  readonly modelType: string;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly dModel: number;
  readonly headDim: number;
  readonly dMlp: number;
  readonly vocab: number;
  readonly maxPositions: number;
  readonly parameters: number;
  readonly dtype: string;
  readonly executionProvider: string;
}

/** One edge of the component graph: relevance flowing from `source`'s output into `target`. */
export interface EdgeRelevance {
  readonly source: string;
  readonly target: string;
  readonly relevance: number;
}

/**
 * Edge attribution of one prompt. Downstream nodes are heads, MLP blocks and `logits`; upstream
 * nodes are `input` (token + positional embeddings), heads and MLP blocks of earlier layers (and
 * the heads of the same layer, for an MLP). The output-projection biases `a<l>.bias` are
 * upstream terms too: with them, each node's `inflow` is exactly the sum of its incoming edges.
 */
export interface EdgeAttribution {
  readonly targetValue: number;
  readonly edges: EdgeRelevance[];
  /** Relevance entering each downstream node at the residual stream that feeds it. */
  readonly inflow: Record<string, number>;
}
