/**
 * Model correction by differential relevance (SparC³ §3.3, Eq. 7):
 *
 *   R_diff(ψ) = R̄_general(ψ) − R̄_undesired(ψ),
 *
 * components sorted ascending and removed from the bottom: first the ones highly relevant to
 * the undesired behaviour and barely relevant to general text.
 *
 * Components (`unit`):
 * - `neurons`: MLP neurons at the output of the up projection (GPT-2 c_fc / OPT fc1), scored by
 *   the engine's neuron relevance (relevance at the activation feeding the down projection;
 *   the identity rule makes it equal to the relevance at the up output). Removal zeroes the
 *   neuron's up row + bias and its down column (exportable as weights).
 * - `weights`: single weight elements of the up projections (fc1), scored by R_W; removal zeroes them.
 *
 * Reference sets and what is explained:
 * - general: the true next token at every position of calibration windows of a general text
 *   (same as compression), aggregated with `mean-abs` by default;
 * - undesired: for every undesired prompt and every token of its "good" set (toxic.jsonl:
 *   `toxic_token_ids`), the logit of that token at the last position; aggregated with
 *   `signed-mean` by default, so components that push the undesired tokens up score high and
 *   components that suppress them (negative relevance) are not removed.
 *
 * Commensurate sides (Eq. 7 as written, a plain difference of the two means). Both means must be
 * of the same kind of quantity, or the difference is dominated by whichever side explains more:
 * a calibration window explained in one backward pass explains the *sum* of its 63 next-token
 * logits, a toxic prompt one logit, so the general side was ~63× larger and Eq. 7 ranked by
 * general relevance alone (measured: insult probability 0.898 after removing 48 neurons). So by
 * default (`explained: 'per-logit'`) every reference sample on both sides explains exactly one
 * logit (a window is split into its positions, PXP's per-token samples) and both sides use the
 * same aggregation (`aggregation`, default `mean-abs`: the mean over explained logits of |R|,
 * PXP's importance, shared/notes/methods.md B.1). R̄ is then the per-explained-logit mean on both
 * sides by construction and the paper's plain difference applies.
 *
 * Named, documented deviations kept as options:
 * - `explained: 'per-sample'`: a window is one sample (the sum of its logits), as before;
 * - `normalize: 'l1'`: divide each side by its total |score| before subtracting (not in the paper);
 * - `generalAggregation` / `undesiredAggregation`: different aggregations per side (not in the paper).
 *
 * Baselines on the same reference sets (`method`): `cp-lrp`, `gradient` (gradient × activation
 * at the neuron), `wanda` (Wanda-style activation × weight per neuron: Σ_i |W_ji| · RMS_t(x_i) over
 * the reference set's tokens, RMS so the two sets' token counts do not enter), `random` (seeded).
 */

import type { Composite } from '../../engine/api';
import type { Engine } from '../../engine/engine';
import { Random } from '../prng';
import {
  attributionScores,
  elementIndex,
  prunableTensors,
  neuronRemovalWeights,
  type ExplainedOutput,
  type StructuredComponent,
} from './prune';
import type { TaskExample } from '../tasks/tasks';
import { COMPOSITES, type Aggregation } from '../../vocabulary';
import { componentId } from '../../models/componentIds';

export type CorrectionUnit = 'neurons' | 'weights';
export type CorrectionMethod = Composite | 'wanda' | 'random';
export const CORRECTION_METHODS: readonly CorrectionMethod[] = [...COMPOSITES, 'wanda', 'random'];
export type ExplainedUnit = 'per-logit' | 'per-sample';

/** Splits every whole-sequence sample into one sample per explained position (one logit each). */
export function perLogitOutputs(rows: readonly ExplainedOutput[]): ExplainedOutput[] {
  return rows.flatMap((r): ExplainedOutput[] =>
    'next' in r ? r.next.map((token, t) => ({ ids: r.ids, target: { kind: r.contrastive ? ('contrastive' as const) : ('logit' as const), position: t, token } })) : [r],
  );
}

export interface CorrectOptions {
  readonly undesired: readonly ExplainedOutput[];
  readonly general: readonly ExplainedOutput[];
  readonly unit?: CorrectionUnit;
  /** How many components to remove in the returned model. */
  readonly count: number;
  /** Attribution rule set (LRP methods); `method` wins when both are given. */
  readonly mode?: Composite;
  /** Scoring method (default: `mode`, else `attnlrp`). */
  readonly method?: CorrectionMethod;
  /** Seed of the `random` baseline. */
  readonly seed?: number;
  /** Aggregation on both sides (default `signed-mean`, chosen on calibration data; see above). */
  readonly aggregation?: Aggregation;
  /** Deviation: a different aggregation for the general side. */
  readonly generalAggregation?: Aggregation;
  /** Deviation: a different aggregation for the undesired side. */
  readonly undesiredAggregation?: Aggregation;
  /** Deviation: `l1` divides each side by its total |score| (default `none`, Eq. 7 as written). */
  readonly normalize?: 'l1' | 'none';
  /** `per-logit` (default): every sample explains one logit on both sides. */
  readonly explained?: ExplainedUnit;
  /** Removal counts evaluated along the way (default: powers of two up to `count`, and `count`). */
  readonly steps?: readonly number[];
  /** Metrics of a (corrected) model, reported at 0 and after each step. */
  readonly evaluate?: (engine: Engine) => Promise<Record<string, number>>;
  readonly log?: (line: string) => void;
  /** Called after each attribution batch with (explained outputs done, total over both reference sets). */
  readonly progress?: (done: number, total: number) => void;
}

export interface CorrectionStep {
  readonly removed: number;
  readonly metrics: Record<string, number>;
}

export interface CorrectionRemoved {
  readonly id: string;
  readonly score: number;
  readonly general: number;
  readonly undesired: number;
}

export interface CorrectResult {
  readonly weights: Map<string, Float32Array>;
  readonly unit: CorrectionUnit;
  readonly count: number;
  readonly totalComponents: number;
  readonly removed: CorrectionRemoved[];
  readonly steps: CorrectionStep[];
  readonly settings: {
    mode: Composite;
    method: CorrectionMethod;
    generalAggregation: Aggregation;
    undesiredAggregation: Aggregation;
    normalize: 'l1' | 'none';
    explained: ExplainedUnit;
    generalOutputs: number;
    undesiredOutputs: number;
  };
}

/** Explained outputs for undesired prompts: the logit of each "good" token at the last position. */
export function undesiredOutputs(examples: readonly TaskExample[]): ExplainedOutput[] {
  const rows: ExplainedOutput[] = [];
  for (const e of examples) {
    const position = e.ids.length - 1;
    if (e.goodTokens && e.goodTokens.length > 0) {
      for (const token of new Set(e.goodTokens)) rows.push({ ids: e.ids, target: { kind: 'logit', position, token } });
    } else if (e.target !== undefined) {
      rows.push({ ids: e.ids, target: e.foil !== undefined ? { kind: 'logit_diff', position, token: e.target, foil: e.foil } : { kind: 'logit', position, token: e.target } });
    } else {
      throw new Error(`${e.origin}: an undesired example needs toxic_token_ids/good_ids or a target token`);
    }
  }
  return rows;
}

function flatten(layers: readonly Float32Array[]): Float64Array {
  const n = layers.reduce((a, l) => a + l.length, 0);
  const out = new Float64Array(n);
  let at = 0;
  for (const l of layers) {
    out.set(l, at);
    at += l.length;
  }
  return out;
}

function normalized(v: Float64Array, how: 'l1' | 'none'): Float64Array {
  if (how === 'none') return v;
  let total = 0;
  for (const x of v) total += Math.abs(x);
  if (total === 0) return v;
  return v.map((x) => x / total);
}

function defaultSteps(count: number): number[] {
  const steps: number[] = [];
  for (let s = 1; s < count; s *= 2) steps.push(s);
  steps.push(count);
  return steps;
}

export async function correct(engine: Engine, options: CorrectOptions): Promise<CorrectResult> {
  const unit = options.unit ?? 'neurons';
  const method: CorrectionMethod = options.method ?? options.mode ?? 'attnlrp';
  const mode: Composite = method === 'wanda' || method === 'random' ? (options.mode ?? 'attnlrp') : method;
  const generalAggregation = options.generalAggregation ?? options.aggregation ?? 'signed-mean';
  const undesiredAggregation = options.undesiredAggregation ?? options.aggregation ?? 'signed-mean';
  const normalize = options.normalize ?? 'none';
  const explained = options.explained ?? 'per-logit';
  const log = options.log ?? (() => undefined);
  const upNames = [...new Set(engine.spec.layers.map((l) => l.up.weight))];
  const weights = unit === 'weights' ? upNames : [];
  const generalRows = explained === 'per-logit' ? perLogitOutputs(options.general) : [...options.general];
  log(`general reference: ${generalRows.length} samples`);
  const totalRows = generalRows.length + options.undesired.length;
  const report = (offset: number) => (options.progress ? { progress: (done: number) => options.progress!(offset + done, totalRows) } : {});

  // Component list with ids, in one flat order.
  const ids: string[] = [];
  if (unit === 'neurons') {
    engine.spec.layers.forEach((_, l) => {
      for (let i = 0; i < engine.spec.dMlp; i++) ids.push(componentId.neuron(l, i));
    });
  }
  const sizes = new Map<string, number>();
  for (const name of upNames) {
    const size = engine.loaded.weights.readFloat32(name).length;
    sizes.set(name, size);
    if (unit === 'weights') for (let k = 0; k < size; k++) ids.push(`${name}[${k}]`);
  }
  let g: Float64Array;
  let u: Float64Array;
  if (method === 'random') {
    const random = new Random(options.seed ?? 0);
    g = Float64Array.from(ids, () => random.float());
    u = new Float64Array(ids.length);
  } else if (method === 'wanda') {
    g = await wandaScores(engine, generalRows, unit, upNames);
    u = await wandaScores(engine, options.undesired, unit, upNames);
  } else {
    const gen = await attributionScores(engine, generalRows, { mode, aggregation: generalAggregation, weights, ...report(0) });
    log(`undesired reference: ${options.undesired.length} explained outputs`);
    const und = await attributionScores(engine, options.undesired, { mode, aggregation: undesiredAggregation, weights, ...report(generalRows.length) });
    g = unit === 'neurons' ? flatten(gen.neurons) : flatten(upNames.map((n) => gen.weights.get(n)!));
    u = unit === 'neurons' ? flatten(und.neurons) : flatten(upNames.map((n) => und.weights.get(n)!));
  }
  const gn = normalized(g, normalize);
  const un = normalized(u, normalize);
  const order = Array.from(ids.keys()).sort((a, b) => gn[a]! - un[a]! - (gn[b]! - un[b]!) || a - b);
  const total = ids.length;
  const count = Math.min(options.count, total);
  if (!Number.isInteger(options.count) || options.count < 0) throw new Error(`count must be a non-negative integer, got ${options.count}`);

  const weightsFor = (n: number): Map<string, Float32Array> => {
    const chosen = order.slice(0, n);
    if (unit === 'neurons') {
      const comps: StructuredComponent[] = chosen.map((k) => ({ layer: Math.floor(k / engine.spec.dMlp), index: k % engine.spec.dMlp, id: ids[k]! }));
      return neuronRemovalWeights(engine, comps);
    }
    const out = new Map<string, Float32Array>();
    const offsets = new Map<string, number>();
    let at = 0;
    for (const name of upNames) {
      offsets.set(name, at);
      at += sizes.get(name)!;
    }
    for (const k of chosen) {
      let name = upNames[0]!;
      for (const n of upNames) if (offsets.get(n)! <= k) name = n;
      let w = out.get(name);
      if (!w) out.set(name, (w = Float32Array.from(engine.loaded.weights.readFloat32(name))));
      w[k - offsets.get(name)!] = 0;
    }
    return out;
  };

  const steps: CorrectionStep[] = [];
  if (options.evaluate) {
    steps.push({ removed: 0, metrics: await options.evaluate(engine) });
    for (const n of (options.steps ?? defaultSteps(count)).filter((s) => s > 0 && s <= total)) {
      const corrected = engine.withWeights(weightsFor(n));
      try {
        const metrics = await options.evaluate(corrected);
        steps.push({ removed: n, metrics });
        log(`removed ${n}: ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
      } finally {
        await corrected.dispose();
      }
    }
  }
  return {
    weights: weightsFor(count),
    unit,
    count,
    totalComponents: total,
    removed: order.slice(0, count).map((k) => ({ id: ids[k]!, score: gn[k]! - un[k]!, general: g[k]!, undesired: u[k]! })),
    steps,
    settings: { mode, method, generalAggregation, undesiredAggregation, normalize, explained, generalOutputs: generalRows.length, undesiredOutputs: options.undesired.length },
  };
}

/**
 * Wanda-style activation × weight on one reference set (SparC³ App. B.2 Eq. 10, per up-projection
 * element: |W_ji| · ‖X_i‖ with ‖X_i‖ the RMS over the set's distinct prompts' tokens). Neurons sum
 * their row. RMS instead of Wanda's L2 norm keeps the two sets on one scale whatever their sizes.
 */
async function wandaScores(engine: Engine, rows: readonly ExplainedOutput[], unit: CorrectionUnit, upNames: readonly string[]): Promise<Float64Array> {
  const prompts = [...new Map(rows.map((r) => [r.ids.join(','), r.ids])).values()];
  const tokens = prompts.reduce((n, p) => n + p.length, 0);
  const squares = new Map<string, Float64Array>();
  for (let start = 0; start < prompts.length; start += 8) {
    const result = await engine.inputSquares(prompts.slice(start, start + 8), upNames);
    for (const row of result) {
      row.forEach((values, i) => {
        let acc = squares.get(upNames[i]!);
        if (!acc) squares.set(upNames[i]!, (acc = new Float64Array(values.length)));
        for (let k = 0; k < values.length; k++) acc[k]! += values[k]!;
      });
    }
  }
  const tensors = prunableTensors(engine);
  const parts: Float64Array[] = [];
  for (const name of upNames) {
    const t = tensors.find((x) => x.name === name)!;
    const w = engine.loaded.weights.readFloat32(name);
    const rms = squares.get(name)!.map((v) => Math.sqrt(v / tokens));
    if (unit === 'neurons') {
      const out = new Float64Array(engine.spec.dMlp);
      const offset = engine.spec.layers.find((l) => l.up.weight === name)!.up.outSlice?.[0] ?? 0;
      for (let j = 0; j < out.length; j++) for (let i = 0; i < t.inFeatures; i++) out[j]! += Math.abs(w[elementIndex(t, j + offset, i)]!) * rms[i]!;
      parts.push(out);
    } else {
      const out = new Float64Array(w.length);
      for (let j = 0; j < t.outFeatures; j++) for (let i = 0; i < t.inFeatures; i++) out[elementIndex(t, j, i)] = Math.abs(w[elementIndex(t, j, i)]!) * rms[i]!;
      parts.push(out);
    }
  }
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float64Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
