/**
 * SparC³'s circuit protocol (Hatefi et al. 2025, §4.2, App. E; shared/notes/methods.md C.1–C.2):
 * a circuit is what survives pruning. Components are scored once on a reference set, pruned
 * least-relevant first at increasing rates (one-shot, masks nested), and the task metric of the
 * pruned model is plotted against sparsity. The circuit is the sparsest pruned model that keeps a
 * chosen share of the dense task performance.
 *
 * This is a different protocol from `discover` (MIB-style: a fixed-size node circuit, everything
 * else mean-ablated, faithfulness); both are offered and the README says which is which.
 *
 * - structured: attention heads and MLP neurons, ranked together globally (Fig. 2b, 11). Head
 *   removal zeroes the head's input columns of the output projection, neuron removal its up row,
 *   bias and down column. Wanda cannot score heads (no weight belongs to one head; the paper
 *   states this), so Wanda prunes neurons only and its heads are never removed.
 * - unstructured: elements of the MLP up and down projections (fc1/fc2, Fig. 2a, 12); LRP,
 *   gradient and random ranked globally, Wanda row-wise (as in the paper). The activation
 *   baseline is structured only (ACDC/IFR-style, as in SparC³).
 *
 * Scores (per reference set, mean over prompts of |score|, PXP's `abs` per sample):
 * - `attnlrp`: relevance of the IO logit at the last position (PXP's one-hot target; SparC³ does
 *   not say which logit it explains), heads z ⊙ g̃, neurons, weights R_W = W ⊙ g̃_W;
 * - `gradient`: the same readouts with the plain gradient (gradient × activation / × weight);
 * - `activation`: Σ_t ‖z_h,t‖ per head, Σ_t |a_n,t| per neuron;
 * - `wanda`: |W_ji| · ‖X_i‖₂ over the reference tokens (App. B.2 Eq. 10), a neuron's is its up row sum;
 * - `random`: seeded uniform scores (seed = reference-set index).
 * Metric: IOI accuracy (logit(IO) > logit(S) at the last position) on the evaluation prompts.
 */
import type { Engine } from '../../engine/engine';
import { scoreComponents } from '../discovery/discover';
import { Random } from '../prng';
import {
  attributionScores,
  elementIndex,
  globalMask,
  applyMask,
  headRemovalWeights,
  neuronRemovalWeights,
  prunableTensors,
  rowwiseMask,
  type ExplainedOutput,
  type PrunableTensor,
  type StructuredComponent,
  type WeightScores,
} from './prune';
import { perPromptIoi } from './pruneEval';
import { meanSem } from '../stats';
import type { Task, TaskExample } from '../tasks/tasks';
import { componentId } from '../../models/componentIds';
import { InputError } from '../../models/errors';

export type CurveMethod = 'attnlrp' | 'gradient' | 'activation' | 'wanda' | 'random';
export const CURVE_METHODS: readonly CurveMethod[] = ['attnlrp', 'gradient', 'activation', 'wanda', 'random'];
export type CurveMode = 'structured' | 'unstructured';

export interface PruneCurveOptions {
  /** One reference set per seed (SparC³: six sets of 128 IOI prompts, each with its own seed). */
  readonly references: readonly (readonly TaskExample[])[];
  readonly evaluation: readonly TaskExample[];
  readonly methods?: readonly CurveMethod[];
  readonly modes?: readonly CurveMode[];
  readonly rates?: readonly number[];
  /** Share of dense accuracy the circuit must keep (default 0.9). */
  readonly keep?: number;
  readonly log?: (line: string) => void;
  /**
   * The seed index of each reference set (default 0, 1, …): a `prune-curve --shard` runs a
   * subset of the seeds, and the random method's seed must stay the unsharded run's.
   */
  readonly seedIndex?: readonly number[];
}

export interface CurveSeries {
  readonly mode: CurveMode;
  readonly method: CurveMethod;
  readonly scope: 'global' | 'rowwise';
  readonly rates: number[];
  /** `[seed][rate]` IOI accuracy. */
  readonly accuracy: number[][];
  readonly mean: number[];
  readonly sem: number[];
  /** Largest rate up to which every evaluated rate keeps `keep` × dense accuracy (mean over seeds). */
  readonly circuitRate: number;
  /** Components (structured) or weights (unstructured) left in that circuit. */
  readonly circuitSize: number;
  readonly total: number;
}

export interface PruneCurveResult {
  readonly dense: number;
  readonly keep: number;
  readonly series: CurveSeries[];
  readonly settings: { references: number; referenceSize: number; evaluation: number; rates: number[] };
}

export const DEFAULT_CURVE_RATES: readonly number[] = [0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99];

function ioLogits(examples: readonly TaskExample[]): ExplainedOutput[] {
  return examples.map((e) => {
    if (e.target === undefined) throw new Error(`${e.origin}: the prune curve needs the IO token (io / target)`);
    return { ids: e.ids, target: { kind: 'logit', position: e.ids.length - 1, token: e.target } };
  });
}

/** Structured scores `{heads [L][H] | null, neurons [L][F]}` for one reference set. */
async function structuredScores(engine: Engine, method: CurveMethod, reference: readonly TaskExample[], seed: number): Promise<{ heads: ArrayLike<number>[] | null; neurons: ArrayLike<number>[] }> {
  const { nLayers: L, nHeads: H, dMlp: F } = engine.spec;
  if (method === 'random') {
    const random = new Random(seed);
    return { heads: Array.from({ length: L }, () => Float64Array.from({ length: H }, () => random.float())), neurons: Array.from({ length: L }, () => Float64Array.from({ length: F }, () => random.float())) };
  }
  if (method === 'activation') {
    const task: Task = { name: 'reference', metric: 'logit_diff', examples: [...reference] };
    const r = await scoreComponents(engine, task, { method: 'activation', aggregation: 'mean-abs' });
    return { heads: r.heads, neurons: r.neurons! };
  }
  if (method === 'wanda') {
    const up = engine.spec.layers.map((l) => l.up);
    const tensors = prunableTensors(engine);
    const squares = await inputSquares(engine, reference, [...new Set(up.map((u) => u.weight))]);
    const neurons = up.map((ref) => {
      const t = tensors.find((x) => x.name === ref.weight)!;
      const w = engine.loaded.weights.readFloat32(ref.weight);
      const sq = squares.get(ref.weight)!;
      const offset = ref.outSlice?.[0] ?? 0;
      const out = new Float64Array(F);
      for (let j = 0; j < F; j++) for (let i = 0; i < t.inFeatures; i++) out[j]! += Math.abs(w[elementIndex(t, j + offset, i)]!) * Math.sqrt(sq[i]!);
      return out;
    });
    return { heads: null, neurons };
  }
  const rel = await attributionScores(engine, ioLogits(reference), { mode: method, aggregation: 'mean-abs' });
  return { heads: rel.heads, neurons: rel.neurons };
}

async function inputSquares(engine: Engine, reference: readonly TaskExample[], names: readonly string[]): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (let start = 0; start < reference.length; start += 16) {
    const rows = await engine.inputSquares(reference.slice(start, start + 16).map((e) => e.ids), names);
    for (const row of rows) {
      row.forEach((values, i) => {
        let acc = out.get(names[i]!);
        if (!acc) out.set(names[i]!, (acc = new Float64Array(values.length)));
        for (let k = 0; k < values.length; k++) acc[k]! += values[k]!;
      });
    }
  }
  return out;
}

/** Unstructured scores over the MLP up/down weights for one reference set. */
async function unstructuredScores(engine: Engine, method: CurveMethod, reference: readonly TaskExample[], seed: number, tensors: PrunableTensor[]): Promise<WeightScores> {
  const names = tensors.map((t) => t.name);
  const scores = new Map<string, Float32Array>();
  if (method === 'random') {
    const random = new Random(seed);
    for (const t of tensors) scores.set(t.name, Float32Array.from({ length: t.inFeatures * t.outFeatures }, () => random.float()));
  } else if (method === 'wanda') {
    const squares = await inputSquares(engine, reference, names);
    for (const t of tensors) {
      const w = engine.loaded.weights.readFloat32(t.name);
      const sq = squares.get(t.name)!;
      const s = new Float32Array(w.length);
      for (let j = 0; j < t.outFeatures; j++) for (let i = 0; i < t.inFeatures; i++) s[elementIndex(t, j, i)] = Math.abs(w[elementIndex(t, j, i)]!) * Math.sqrt(sq[i]!);
      scores.set(t.name, s);
    }
  } else if (method === 'attnlrp' || method === 'gradient') {
    const rel = await attributionScores(engine, ioLogits(reference), { mode: method, aggregation: 'mean-abs', weights: names });
    for (const t of tensors) scores.set(t.name, rel.weights.get(t.name)!);
  } else {
    throw new Error(`unstructured pruning has no ${method} scores (SparC³'s activation baseline is structured only)`);
  }
  return { method: method === 'random' ? 'random' : method === 'wanda' ? 'wanda' : method, tensors, scores, calibration: null, aggregation: method === 'attnlrp' || method === 'gradient' ? 'mean-abs' : null, target: null };
}

/** Least relevant first, heads and neurons together (global ranking). */
export function rankStructured(heads: ArrayLike<number>[] | null, neurons: ArrayLike<number>[]): (StructuredComponent & { kind: 'head' | 'neuron' })[] {
  const all: (StructuredComponent & { kind: 'head' | 'neuron'; score: number })[] = [];
  heads?.forEach((layer, l) => Array.from(layer).forEach((score, i) => all.push({ layer: l, index: i, id: componentId.head(l, i), kind: 'head', score })));
  neurons.forEach((layer, l) => Array.from(layer).forEach((score, i) => all.push({ layer: l, index: i, id: componentId.neuron(l, i), kind: 'neuron', score })));
  all.sort((a, b) => a.score - b.score || (a.kind === b.kind ? 0 : a.kind === 'head' ? -1 : 1) || a.layer - b.layer || a.index - b.index);
  return all.map(({ layer, index, id, kind }) => ({ layer, index, id, kind }));
}

/** Largest rate r such that every evaluated rate ≤ r keeps `keep` × dense. */
export function circuitRate(rates: readonly number[], values: readonly number[], dense: number, keep: number): number {
  let best = 0;
  for (let i = 0; i < rates.length; i++) {
    if (values[i]! >= keep * dense) best = rates[i]!;
    else break;
  }
  return best;
}

/** Mean ± SEM over seeds and the circuit of one series from its `[seed][rate]` accuracies (also the merge of shards). */
export function summarizeSeries(s: Pick<CurveSeries, 'mode' | 'method' | 'scope' | 'rates' | 'accuracy' | 'total'>, dense: number, keep: number): CurveSeries {
  const { mode, method, scope, rates, accuracy, total } = s;
  const stats = rates.map((_, i) => meanSem(accuracy.map((r) => r[i]!)));
  const mean = stats.map((x) => x.mean);
  const rate = circuitRate(rates, mean, dense, keep);
  return { mode, method, scope, rates, accuracy, mean, sem: stats.map((x) => x.sem), circuitRate: rate, circuitSize: total - Math.floor(rate * total), total };
}

/** Pruning rates of a curve: each in [0, 1), increasing (bad input, said before any work). */
export function checkCurveRates(rates: readonly number[]): void {
  rates.forEach((r, i) => {
    if (!(r >= 0 && r < 1)) throw new InputError(`prune curve: rate ${r} is not in [0, 1)`);
    if (i > 0 && !(r > rates[i - 1]!)) throw new InputError(`prune curve: rates must increase (${rates.join(', ')})`);
  });
}

export async function pruneCurves(engine: Engine, options: PruneCurveOptions): Promise<PruneCurveResult> {
  if (options.references.length < 1) throw new Error('prune curve: give at least one reference set');
  const rates = [...(options.rates ?? DEFAULT_CURVE_RATES)];
  checkCurveRates(rates);
  const keep = options.keep ?? 0.9;
  const log = options.log ?? (() => undefined);
  const accuracyOf = async (e: Engine) => {
    const c = (await perPromptIoi(e, options.evaluation)).correct;
    return c.reduce((s, v) => s + v, 0) / c.length;
  };
  const dense = await accuracyOf(engine);
  const { nLayers: L, nHeads: H, dMlp: F } = engine.spec;
  const mlpTensors = prunableTensors(engine).filter((t) => t.roles.includes('up') || t.roles.includes('down'));
  const series: CurveSeries[] = [];
  for (const mode of options.modes ?? (['structured', 'unstructured'] as CurveMode[])) {
    for (const method of options.methods ?? CURVE_METHODS) {
      if (mode === 'unstructured' && method === 'activation') continue;
      const scope = mode === 'unstructured' && method === 'wanda' ? 'rowwise' : 'global';
      const total = mode === 'structured' ? L * H + L * F : mlpTensors.reduce((n, t) => n + t.inFeatures * t.outFeatures, 0);
      const accuracy: number[][] = [];
      for (let r = 0; r < options.references.length; r++) {
        const reference = options.references[r]!;
        const seed = options.seedIndex?.[r] ?? r;
        const row: number[] = [];
        let prune: (rate: number) => Map<string, Float32Array>;
        if (mode === 'structured') {
          const s = await structuredScores(engine, method, reference, seed);
          const ranked = rankStructured(s.heads, s.neurons);
          prune = (rate) => {
            const chosen = ranked.slice(0, Math.min(ranked.length, Math.floor(rate * total)));
            return headRemovalWeights(engine, chosen.filter((c) => c.kind === 'head'), neuronRemovalWeights(engine, chosen.filter((c) => c.kind === 'neuron')));
          };
        } else {
          const s = await unstructuredScores(engine, method, reference, seed, mlpTensors);
          prune = (rate) => applyMask(engine, scope === 'rowwise' ? rowwiseMask(s, rate) : globalMask(s, rate));
        }
        for (const rate of rates) {
          if (rate === 0) {
            row.push(dense);
            continue;
          }
          const pruned = engine.withWeights(prune(rate));
          try {
            row.push(await accuracyOf(pruned));
          } finally {
            await pruned.dispose();
          }
        }
        accuracy.push(row);
      }
      const s = summarizeSeries({ mode, method, scope, rates, accuracy, total }, dense, keep);
      series.push(s);
      log(`${mode} ${method} (${scope}): ${s.mean.map((m) => m.toFixed(3)).join(' ')}; circuit at ${s.circuitRate}`);
    }
  }
  return { dense, keep, series, settings: { references: options.references.length, referenceSize: options.references[0]!.length, evaluation: options.evaluation.length, rates } };
}
