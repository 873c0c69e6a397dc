/**
 * Attribution-guided pruning (SparC³, arXiv:2506.13727; PXP, arXiv:2408.12568) and its
 * baselines, on the weights of a loaded engine.
 *
 * Scope of unstructured pruning: every linear layer inside the decoder blocks (q, k, v, o, up,
 * gate, down). Token/position embeddings, norms, biases and the unembedding are never touched.
 * GPT-2's fused `c_attn` is handled as one tensor whose output units are the q, k and v units:
 * a row-wise mask is per output unit, so each of them keeps the same sparsity regardless of the
 * fusion.
 *
 * Scores (higher = more important, the lowest are pruned first):
 * - `magnitude`: |W|.
 * - `wanda`: |W_ji| · ‖X_i‖₂, ‖X_i‖₂² = Σ over every calibration token of the squared input
 *   feature i of that layer (Sun et al. 2023; SparC³ App. B.2 Eq. 10).
 * - `attnlrp` / `cp-lrp`: the weight relevance R_W = W ⊙ g̃_W (SparC³ Eq. 8 in modified-gradient
 *   form), one backward pass per explained output. The explained output on a calibration text is
 *   the **true next token** at every position of every calibration window: window w of length T
 *   gives T − 1 explained outputs (positions 0 … T−2, target = token t+1, seed +1 on its logit,
 *   or the contrastive seed). R_W of one explained output is summed over the input positions by
 *   the engine; the aggregation over explained outputs is an option (below).
 * - `gradient`: the same with the engine's plain-gradient mode, i.e. |W ⊙ ∇_W logit| aggregated
 *   like LRP (gradient × weight, the first-order Taylor importance). SparC³ does not say whether
 *   its gradient baseline is |∇W| or |W ⊙ ∇W|; we use the latter (documented choice).
 * - `random`: seeded uniform scores (sanity baseline).
 *
 * Caveat (measured): CP-LRP treats attention probabilities as constants, so no relevance reaches
 * q and k — their weight scores are exactly 0 and they are pruned first (global) or by index
 * (row-wise ties). CP-LRP is therefore a poor score for pruning attention q/k weights.
 *
 * Aggregation over the n explained outputs (SparC³ Eq. 1 leaves it open; methods.md §B.1):
 * - `mean-abs` (default, PXP): (1/n) Σ |R(x)|,
 * - `abs-mean`: |(1/n) Σ R(x)|,
 * - `signed-mean`: (1/n) Σ R(x), ranked as is (negative = pruned first).
 */

import type { Attribution, Composite, Target } from '../../engine/api';
import type { Engine } from '../../engine/engine';
import type { RuleTable } from '../../engine/rules';
import { InputError } from '../../models/errors';
import type { ArchSpec, LinearRef } from '../../models/spec';
import { Random } from '../prng';

import type { Aggregation, PruneMethod, PruneScope, SampleUnit } from '../../vocabulary';
import { componentId } from '../../models/componentIds';
/** What is explained at each calibration position: the next token's logit, or contrastive (logit − mean logit). */
export type CalibTarget = 'logit' | 'contrastive';
export type StructuredUnit = 'neurons' | 'heads';

// ---------------------------------------------------------------------------------------------
// Layer geometry

export type LinearRole = 'q' | 'k' | 'v' | 'o' | 'up' | 'gate' | 'down';

/** One weight tensor of a decoder block, as a matrix of output units × input features. */
export interface PrunableTensor {
  readonly name: string;
  readonly layer: number;
  /** The logical projections stored in this tensor (GPT-2 c_attn: q, k, v). */
  readonly roles: readonly LinearRole[];
  readonly layout: 'in_out' | 'out_in';
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** Flat index of W[out j, in i] in the tensor's HF layout. */
export function elementIndex(t: Pick<PrunableTensor, 'layout' | 'inFeatures' | 'outFeatures'>, j: number, i: number): number {
  return t.layout === 'in_out' ? i * t.outFeatures + j : j * t.inFeatures + i;
}

/** The decoder-block linear weights, one entry per distinct tensor, in layer order. */
export function prunableTensors(engine: Engine): PrunableTensor[] {
  const spec = engine.spec;
  const out: PrunableTensor[] = [];
  spec.layers.forEach((layer, l) => {
    const refs: [LinearRole, LinearRef | undefined][] = [
      ['q', layer.q], ['k', layer.k], ['v', layer.v], ['o', layer.o], ['up', layer.up], ['gate', layer.gate], ['down', layer.down],
    ];
    const byName = new Map<string, { ref: LinearRef; roles: LinearRole[] }>();
    for (const [role, ref] of refs) {
      if (!ref) continue;
      const entry = byName.get(ref.weight);
      if (entry) entry.roles.push(role);
      else byName.set(ref.weight, { ref, roles: [role] });
    }
    for (const [name, { ref, roles }] of byName) {
      const shape = engine.loaded.weights.info(name).shape;
      if (shape.length !== 2) throw new Error(`linear weight "${name}" has shape [${shape.join(', ')}], expected 2-D`);
      const [a, b] = shape as [number, number];
      const [inFeatures, outFeatures] = ref.layout === 'in_out' ? [a, b] : [b, a];
      out.push({ name, layer: l, roles, layout: ref.layout, inFeatures, outFeatures });
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Calibration data

export interface CalibrationOptions {
  /** Tokens per calibration window (default 64, at most the model context). */
  readonly windowLength?: number;
  /** Windows used (default 32; fewer when the text is shorter). */
  readonly windows?: number;
  /** Explained outputs per attribution batch (default 16: larger batches get slower per row on CPU). */
  readonly batchRows?: number;
  /**
   * What one reference sample is. `sequence` (default, SparC³): a window, all its positions
   * explained in one backward pass, |R| taken per window. `position` (PXP's per-token |R|): each
   * explained position on its own, one backward pass each — window-length times slower.
   */
  readonly samples?: SampleUnit;
}


/** Consecutive non-overlapping windows of the calibration stream (the last partial window is dropped). */
export function calibrationWindows(ids: readonly number[], options: CalibrationOptions = {}): number[][] {
  const length = options.windowLength ?? 64;
  const count = options.windows ?? 32;
  if (!Number.isInteger(length) || length < 2) throw new Error(`calibration window length must be an integer ≥ 2, got ${length}`);
  const windows: number[][] = [];
  for (let start = 0; start + length <= ids.length && windows.length < count; start += length) windows.push(ids.slice(start, start + length));
  if (windows.length === 0) throw new Error(`the calibration text has ${ids.length} tokens, fewer than one window of ${length}`);
  return windows;
}

/**
 * One reference sample, a row of the attribution batch: either one explained output (`target`),
 * or a whole sequence explained in one backward pass (`next[t]` is explained at position t).
 */
export type ExplainedOutput =
  | { readonly ids: readonly number[]; readonly target: Target }
  | { readonly ids: readonly number[]; readonly next: readonly number[]; readonly contrastive: boolean };

/**
 * The true next token at every position of every window (position t explains token t+1). Each
 * window is one sample: SparC³'s reference samples are sequences, and explaining all positions
 * at once costs one backward pass instead of one per position.
 */
export function nextTokenOutputs(windows: readonly (readonly number[])[], kind: CalibTarget = 'logit', samples: SampleUnit = 'sequence'): ExplainedOutput[] {
  if (samples === 'sequence') return windows.map((w) => ({ ids: w, next: w.slice(1), contrastive: kind === 'contrastive' }));
  return windows.flatMap((w) => w.slice(1).map((token, t) => ({ ids: w, target: { kind, position: t, token } })));
}

/** How many logits the samples explain (a sequence counts each position). */
export function explainedCount(rows: readonly ExplainedOutput[]): number {
  return rows.reduce((n, r) => n + ('next' in r ? r.next.length : 1), 0);
}

// ---------------------------------------------------------------------------------------------
// Aggregation

export class Aggregator {
  private readonly sums = new Map<string, Float64Array>();
  count = 0;
  constructor(readonly mode: Aggregation) {}

  add(name: string, values: ArrayLike<number>): void {
    let sum = this.sums.get(name);
    if (!sum) {
      sum = new Float64Array(values.length);
      this.sums.set(name, sum);
    }
    if (this.mode === 'mean-abs') for (let i = 0; i < values.length; i++) sum[i]! += Math.abs(values[i]!);
    else for (let i = 0; i < values.length; i++) sum[i]! += values[i]!;
  }

  /** Final scores: mean (then abs for `abs-mean`), as float32. */
  result(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    const n = Math.max(1, this.count);
    for (const [name, sum] of this.sums) {
      const r = new Float32Array(sum.length);
      for (let i = 0; i < sum.length; i++) r[i] = this.mode === 'abs-mean' ? Math.abs(sum[i]! / n) : sum[i]! / n;
      out.set(name, r);
    }
    return out;
  }
}

/** Component scores from attribution: weights (HF layout), MLP neurons `[L][dMlp]`, heads `[L][H]`. */
export interface RelevanceScores {
  readonly weights: Map<string, Float32Array>;
  readonly neurons: Float32Array[];
  readonly heads: Float32Array[];
  readonly explainedOutputs: number;
}

export interface AttributionScoreOptions {
  readonly mode: Composite;
  readonly aggregation?: Aggregation;
  /** Weight tensors whose relevance is wanted (none: only neurons and heads, much cheaper). */
  readonly weights?: readonly string[];
  readonly batchRows?: number;
  /** Called after each batch with (rows done, rows total). */
  readonly progress?: (done: number, total: number) => void;
  /** A rule table instead of `mode`'s (PXP's per-layer-group rules; `mode` names the readouts). */
  readonly rules?: RuleTable;
  /**
   * `value` (default): the engine's seed, gradient 1 at the explained logit, so R_out = z_t.
   * `one`: PXP's seed, relevance 1 at the explained output (`pxp/attribute.py`, `one_hot`):
   * each sample's relevances are divided by its explained value z_t before aggregation, which
   * is exact because the modified backward pass is linear in the seed. Single targets only.
   */
  readonly relevanceSeed?: 'value' | 'one';
}

/**
 * Runs the engine's attribution over every explained output and aggregates weight, neuron and
 * head relevance. Head relevance is the engine's `headRelevance` (relevance of each head's
 * output z summed over positions and head dimensions).
 */
export async function attributionScores(engine: Engine, rows: readonly ExplainedOutput[], options: AttributionScoreOptions): Promise<RelevanceScores> {
  const aggregation = options.aggregation ?? 'mean-abs';
  const weightNames = [...(options.weights ?? [])];
  const batch = options.batchRows ?? 16;
  const wAgg = new Aggregator(aggregation);
  const nAgg = new Aggregator(aggregation);
  const hAgg = new Aggregator(aggregation);
  const { nLayers: L, nHeads: H } = engine.spec;
  if (options.relevanceSeed === 'one' && rows.some((r) => !('target' in r))) throw new InputError('relevance seed "one" (PXP) needs single explained outputs, not sequences');
  for (let start = 0; start < rows.length; start += batch) {
    const chunk = rows.slice(start, start + batch);
    const result = await attributeChunk(engine, chunk, options.mode, weightNames, options.rules);
    for (const a of result) {
      // PXP's relevance seed of 1: divide by the explained value, which must be a finite non-zero number.
      if (options.relevanceSeed === 'one' && !(Number.isFinite(a.targetValue) && a.targetValue !== 0)) throw new InputError(`relevance seed "one" (PXP) divides by the explained value, which is ${a.targetValue} here`);
      const k = options.relevanceSeed === 'one' ? 1 / a.targetValue : 1;
      const seeded = (xs: ArrayLike<number>): ArrayLike<number> => (k === 1 ? xs : Array.from(xs, (v) => v * k));
      for (const name of weightNames) wAgg.add(name, seeded(a.weightRelevance[name]!));
      for (let l = 0; l < L; l++) {
        nAgg.add(`n${l}`, seeded(a.mlpRelevance![l]!));
        hAgg.add(`h${l}`, seeded(a.headRelevance[l]!));
      }
      wAgg.count++;
      nAgg.count++;
      hAgg.count++;
    }
    options.progress?.(Math.min(rows.length, start + batch), rows.length);
  }
  const n = nAgg.result();
  const h = hAgg.result();
  return {
    weights: wAgg.result(),
    neurons: Array.from({ length: L }, (_, l) => n.get(`n${l}`) ?? new Float32Array(engine.spec.dMlp)),
    heads: Array.from({ length: L }, (_, l) => h.get(`h${l}`) ?? new Float32Array(H)),
    explainedOutputs: explainedCount(rows),
  };
}

/** Attributes a chunk of samples, sending sequences and single targets to their own graphs. */
export async function attributeChunk(engine: Engine, chunk: readonly ExplainedOutput[], mode: Composite, weights: string[], rules?: RuleTable): Promise<Attribution[]> {
  const out: Attribution[] = new Array(chunk.length);
  const single = chunk.map((r, i) => [r, i] as const).filter(([r]) => 'target' in r);
  const sequences = chunk.map((r, i) => [r, i] as const).filter(([r]) => 'next' in r);
  for (const contrastive of [false, true]) {
    const group = sequences.filter(([r]) => 'next' in r && r.contrastive === contrastive);
    if (group.length === 0) continue;
    const result = await engine.attributeSequence({
      ids: group.map(([r]) => r.ids),
      targets: group.map(([r]) => ('next' in r ? r.next : [])),
      mode,
      contrastive,
      weights,
      neurons: true,
      ...(rules ? { rules } : {}),
    });
    group.forEach(([, i], k) => (out[i] = result[k]!));
  }
  if (single.length > 0) {
    const result = await engine.attribute({ ids: single.map(([r]) => r.ids), targets: single.map(([r]) => ('target' in r ? r.target : (undefined as never))), mode, weights, neurons: true, ...(rules ? { rules } : {}) });
    single.forEach(([, i], k) => (out[i] = result[k]!));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Weight scores per method

export interface ScoreOptions extends CalibrationOptions {
  readonly method: PruneMethod;
  readonly aggregation?: Aggregation;
  readonly target?: CalibTarget;
  readonly seed?: number;
  readonly progress?: (done: number, total: number) => void;
}

export interface WeightScores {
  readonly method: PruneMethod;
  readonly tensors: readonly PrunableTensor[];
  /** Per tensor name, same layout and size as the weight. */
  readonly scores: Map<string, Float32Array>;
  readonly calibration: { readonly windows: number; readonly windowLength: number; readonly tokens: number; readonly explainedOutputs: number } | null;
  readonly aggregation: Aggregation | null;
  readonly target: CalibTarget | null;
  /** The reference-sample unit for attribution scores (absent for the other methods). */
  readonly samples?: SampleUnit;
}

/** Scores every decoder-block linear weight with `method` on the calibration token stream. */
export async function weightScores(engine: Engine, calibIds: readonly number[] | null, options: ScoreOptions): Promise<WeightScores> {
  const tensors = prunableTensors(engine);
  const names = tensors.map((t) => t.name);
  const scores = new Map<string, Float32Array>();
  const method = options.method;
  if (method === 'magnitude' || method === 'random') {
    const rng = new Random(options.seed ?? 0);
    for (const t of tensors) {
      const w = engine.loaded.weights.readFloat32(t.name);
      const s = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) s[i] = method === 'magnitude' ? Math.abs(w[i]!) : rng.float();
      scores.set(t.name, s);
    }
    return { method, tensors, scores, calibration: null, aggregation: null, target: null };
  }
  if (!calibIds) throw new Error(`method "${method}" needs calibration text`);
  const windows = calibrationWindows(calibIds, options);
  const windowLength = windows[0]!.length;
  const calibration = { windows: windows.length, windowLength, tokens: windows.length * windowLength, explainedOutputs: 0 };
  if (method === 'wanda') {
    // Σ_t x_t² per input feature over every calibration token (equal-length windows: no padding).
    const sq = new Map<string, Float64Array>();
    const batch = 8;
    for (let start = 0; start < windows.length; start += batch) {
      const rows = await engine.inputSquares(windows.slice(start, start + batch), names);
      for (const row of rows) {
        row.forEach((values, i) => {
          const name = names[i]!;
          let acc = sq.get(name);
          if (!acc) sq.set(name, (acc = new Float64Array(values.length)));
          for (let k = 0; k < values.length; k++) acc[k]! += values[k]!;
        });
      }
    }
    for (const t of tensors) {
      const w = engine.loaded.weights.readFloat32(t.name);
      const norms = sq.get(t.name)!;
      if (norms.length !== t.inFeatures) throw new Error(`input norms of "${t.name}" have ${norms.length} features, the layer has ${t.inFeatures}`);
      const s = new Float32Array(w.length);
      for (let j = 0; j < t.outFeatures; j++) {
        for (let i = 0; i < t.inFeatures; i++) {
          const k = elementIndex(t, j, i);
          s[k] = Math.abs(w[k]!) * Math.sqrt(norms[i]!);
        }
      }
      scores.set(t.name, s);
    }
    return { method, tensors, scores, calibration, aggregation: null, target: null };
  }
  const aggregation = options.aggregation ?? 'mean-abs';
  const target = options.target ?? 'logit';
  const rows = nextTokenOutputs(windows, target, options.samples);
  const rel = await attributionScores(engine, rows, {
    mode: method,
    aggregation,
    weights: names,
    ...(options.batchRows !== undefined && { batchRows: options.batchRows }),
    ...(options.progress !== undefined && { progress: options.progress }),
  });
  return { method, tensors, scores: rel.weights, calibration: { ...calibration, explainedOutputs: explainedCount(rows) }, aggregation, target, samples: options.samples ?? 'sequence' };
}

// ---------------------------------------------------------------------------------------------
// Masks

/** Per tensor name: 1 = pruned. */
export type PruneMask = Map<string, Uint8Array>;

/**
 * Row-wise: every output unit of every tensor loses its ⌊s · in⌋ lowest-scoring incoming weights
 * (ties broken by input index, so masks are deterministic and nested in s).
 */
export function rowwiseMask(scores: WeightScores, sparsity: number): PruneMask {
  checkSparsity(sparsity);
  const mask: PruneMask = new Map();
  for (const t of scores.tensors) {
    const s = scores.scores.get(t.name)!;
    const m = new Uint8Array(s.length);
    const k = Math.floor(sparsity * t.inFeatures);
    const order = new Int32Array(t.inFeatures);
    const row = new Float64Array(t.inFeatures);
    for (let j = 0; j < t.outFeatures && k > 0; j++) {
      for (let i = 0; i < t.inFeatures; i++) {
        order[i] = i;
        row[i] = s[elementIndex(t, j, i)]!;
      }
      order.sort((a, b) => row[a]! - row[b]! || a - b);
      for (let r = 0; r < k; r++) m[elementIndex(t, j, order[r]!)] = 1;
    }
    mask.set(t.name, m);
  }
  return mask;
}

/** Global: the ⌊s · N⌋ lowest scores over all N decoder-block linear weights, ranked together. */
export function globalMask(scores: WeightScores, sparsity: number): PruneMask {
  checkSparsity(sparsity);
  const tensors = scores.tensors;
  const total = tensors.reduce((a, t) => a + t.inFeatures * t.outFeatures, 0);
  const all = new Float32Array(total);
  let at = 0;
  for (const t of tensors) {
    all.set(scores.scores.get(t.name)!, at);
    at += t.inFeatures * t.outFeatures;
  }
  const k = Math.floor(sparsity * total);
  const mask: PruneMask = new Map();
  if (k === 0) {
    for (const t of tensors) mask.set(t.name, new Uint8Array(t.inFeatures * t.outFeatures));
    return mask;
  }
  const sorted = Float32Array.from(all).sort();
  const threshold = sorted[k - 1]!;
  let below = 0;
  for (let i = 0; i < total; i++) if (all[i]! < threshold) below++;
  let tiesLeft = k - below; // weights equal to the threshold still to prune, first by position
  at = 0;
  for (const t of tensors) {
    const n = t.inFeatures * t.outFeatures;
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = all[at + i]!;
      if (v < threshold) m[i] = 1;
      else if (v === threshold && tiesLeft > 0) {
        m[i] = 1;
        tiesLeft--;
      }
    }
    mask.set(t.name, m);
    at += n;
  }
  return mask;
}

export function makeMask(scores: WeightScores, sparsity: number, scope: PruneScope): PruneMask {
  return scope === 'rowwise' ? rowwiseMask(scores, sparsity) : globalMask(scores, sparsity);
}

function checkSparsity(s: number): void {
  if (!Number.isFinite(s) || s < 0 || s > 1) throw new Error(`sparsity must be in [0, 1], got ${s}`);
}

/** Zeroes the masked weights; returns the replacement tensors for `engine.withWeights`. */
export function applyMask(engine: Engine, mask: PruneMask): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, m] of mask) {
    const w = Float32Array.from(engine.loaded.weights.readFloat32(name));
    for (let i = 0; i < m.length; i++) if (m[i]) w[i] = 0;
    out.set(name, w);
  }
  return out;
}

export interface SparsityStats {
  readonly pruned: number;
  readonly total: number;
  readonly sparsity: number;
  readonly perTensor: Record<string, { pruned: number; total: number }>;
}

export function maskStats(mask: PruneMask): SparsityStats {
  let pruned = 0;
  let total = 0;
  const perTensor: Record<string, { pruned: number; total: number }> = {};
  for (const [name, m] of mask) {
    let p = 0;
    for (let i = 0; i < m.length; i++) p += m[i]!;
    perTensor[name] = { pruned: p, total: m.length };
    pruned += p;
    total += m.length;
  }
  return { pruned, total, sparsity: total ? pruned / total : 0, perTensor };
}

// ---------------------------------------------------------------------------------------------
// Structured pruning: MLP neurons and attention heads, by zeroing weights

export interface StructuredComponent {
  readonly layer: number;
  readonly index: number;
  /** `m<l>.n<i>` or `a<l>.h<i>`. */
  readonly id: string;
}

/**
 * Replacement weights that remove MLP neurons: the neuron's up (and gate) output unit and bias
 * are zeroed, so its activation is act(0) = 0, and its down-projection input column is zeroed too.
 */
export function neuronRemovalWeights(engine: Engine, neurons: readonly StructuredComponent[], base: Map<string, Float32Array> = new Map()): Map<string, Float32Array> {
  const spec = engine.spec;
  const writable = copyOnWrite(engine, base);
  const tensor = (ref: LinearRef) => writable(ref.weight);
  const bias = (name: string) => writable(name);
  for (const n of neurons) {
    const layer = spec.layers[n.layer]!;
    for (const ref of [layer.up, layer.gate]) {
      if (!ref) continue;
      const w = tensor(ref);
      const geo = geometry(engine, ref);
      const j = (ref.outSlice?.[0] ?? 0) + n.index;
      for (let i = 0; i < geo.inFeatures; i++) w[elementIndex(geo, j, i)] = 0;
      if (ref.bias) bias(ref.bias)[j] = 0;
    }
    const down = layer.down;
    const w = tensor(down);
    const geo = geometry(engine, down);
    for (let j = 0; j < geo.outFeatures; j++) w[elementIndex(geo, j, n.index)] = 0;
  }
  return writable.result;
}

/** A map of replacement tensors where each tensor is copied once before its first write. */
function copyOnWrite(engine: Engine, base: ReadonlyMap<string, Float32Array>): ((name: string) => Float32Array) & { result: Map<string, Float32Array> } {
  const result = new Map(base);
  const copied = new Set<string>();
  const fn = (name: string) => {
    if (!copied.has(name)) {
      result.set(name, Float32Array.from(result.get(name) ?? engine.loaded.weights.readFloat32(name)));
      copied.add(name);
    }
    return result.get(name)!;
  };
  return Object.assign(fn, { result });
}

/** Replacement weights that remove attention heads: the head's input rows/columns of the output projection are zeroed (= zero ablation of its z). */
export function headRemovalWeights(engine: Engine, heads: readonly StructuredComponent[], base: Map<string, Float32Array> = new Map()): Map<string, Float32Array> {
  const spec = engine.spec;
  const writable = copyOnWrite(engine, base);
  for (const h of heads) {
    const ref = spec.layers[h.layer]!.o;
    const w = writable(ref.weight);
    const geo = geometry(engine, ref);
    for (let d = h.index * spec.headDim; d < (h.index + 1) * spec.headDim; d++) {
      for (let j = 0; j < geo.outFeatures; j++) w[elementIndex(geo, j, d)] = 0;
    }
  }
  return writable.result;
}

function geometry(engine: Engine, ref: LinearRef): { layout: 'in_out' | 'out_in'; inFeatures: number; outFeatures: number } {
  const [a, b] = engine.loaded.weights.info(ref.weight).shape as [number, number];
  return ref.layout === 'in_out' ? { layout: ref.layout, inFeatures: a, outFeatures: b } : { layout: ref.layout, inFeatures: b, outFeatures: a };
}

/** Components sorted ascending by score (least relevant first), ranked globally across layers. */
export function rankComponents(scores: readonly Float32Array[], kind: StructuredUnit): StructuredComponent[] {
  const all: (StructuredComponent & { score: number })[] = [];
  scores.forEach((layer, l) =>
    layer.forEach((score, i) => all.push({ layer: l, index: i, id: kind === 'neurons' ? componentId.neuron(l, i) : componentId.head(l, i), score })),
  );
  all.sort((a, b) => a.score - b.score || a.layer - b.layer || a.index - b.index);
  return all.map(({ layer, index, id }) => ({ layer, index, id }));
}

// ---------------------------------------------------------------------------------------------
// The one-call API

export interface PruneOptions extends CalibrationOptions {
  /** Calibration token ids (`encodeText`); needed by every method except magnitude and random. */
  readonly calibIds?: readonly number[];
  readonly sparsity: number;
  readonly method: PruneMethod;
  readonly scope?: PruneScope;
  readonly aggregation?: Aggregation;
  readonly target?: CalibTarget;
  readonly seed?: number;
  /** Reuse scores computed earlier (sparsity sweeps). */
  readonly scores?: WeightScores;
  readonly progress?: (done: number, total: number) => void;
}

export interface PruneReport {
  readonly kind: 'unstructured';
  readonly method: PruneMethod;
  readonly scope: PruneScope;
  readonly requestedSparsity: number;
  readonly achievedSparsity: number;
  readonly prunedWeights: number;
  readonly totalWeights: number;
  readonly aggregation: Aggregation | null;
  readonly target: CalibTarget | null;
  readonly calibration: WeightScores['calibration'];
  readonly explained: string;
  readonly perTensor: Record<string, { pruned: number; total: number }>;
}

export function describeMethod(method: PruneMethod, aggregation: Aggregation | null, target: CalibTarget | null): string {
  switch (method) {
    case 'magnitude':
      return '|W|';
    case 'random':
      return 'seeded uniform random scores';
    case 'wanda':
      return '|W_ji| · ‖X_i‖₂ over every calibration token';
    default:
      return `${aggregation} over explained outputs of ${method === 'gradient' ? 'W ⊙ ∇W (plain gradient)' : `R_W = W ⊙ g̃_W (${method})`}; explained output = ${target === 'contrastive' ? 'contrastive (next-token logit − mean logit)' : 'next-token logit'} of the true next token at every position of each calibration window`;
  }
}

export async function prune(engine: Engine, options: PruneOptions): Promise<{ weights: Map<string, Float32Array>; mask: PruneMask; scores: WeightScores; report: PruneReport }> {
  const scope = options.scope ?? 'rowwise';
  const scores = options.scores ?? (await weightScores(engine, options.calibIds ?? null, options));
  const mask = makeMask(scores, options.sparsity, scope);
  const stats = maskStats(mask);
  const weights = applyMask(engine, mask);
  return {
    weights,
    mask,
    scores,
    report: {
      kind: 'unstructured',
      method: scores.method,
      scope,
      requestedSparsity: options.sparsity,
      achievedSparsity: stats.sparsity,
      prunedWeights: stats.pruned,
      totalWeights: stats.total,
      aggregation: scores.aggregation,
      target: scores.target,
      calibration: scores.calibration,
      explained: describeMethod(scores.method, scores.aggregation, scores.target),
      perTensor: stats.perTensor,
    },
  };
}

export type { ArchSpec };
