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
 * The two score vectors live on different scales (different explained quantities and counts),
 * so by default each is divided by its total |score| before subtracting (`normalize: 'l1'`).
 */

import type { Composite } from '../engine/api';
import type { Engine } from '../engine/engine';
import {
  attributionScores,
  neuronRemovalWeights,
  type ExplainedOutput,
  type StructuredComponent,
} from './prune';
import type { TaskExample } from './tasks';
import type { Aggregation } from '../vocabulary';

export type CorrectionUnit = 'neurons' | 'weights';

export interface CorrectOptions {
  readonly undesired: readonly ExplainedOutput[];
  readonly general: readonly ExplainedOutput[];
  readonly unit?: CorrectionUnit;
  /** How many components to remove in the returned model. */
  readonly count: number;
  readonly mode?: Composite;
  readonly generalAggregation?: Aggregation;
  readonly undesiredAggregation?: Aggregation;
  readonly normalize?: 'l1' | 'none';
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
  readonly settings: { mode: Composite; generalAggregation: Aggregation; undesiredAggregation: Aggregation; normalize: 'l1' | 'none'; generalOutputs: number; undesiredOutputs: number };
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
  const mode = options.mode ?? 'attnlrp';
  const generalAggregation = options.generalAggregation ?? 'mean-abs';
  const undesiredAggregation = options.undesiredAggregation ?? 'signed-mean';
  const normalize = options.normalize ?? 'l1';
  const log = options.log ?? (() => undefined);
  const upNames = [...new Set(engine.spec.layers.map((l) => l.up.weight))];
  const weights = unit === 'weights' ? upNames : [];
  log(`general reference: ${options.general.length} explained outputs`);
  const totalRows = options.general.length + options.undesired.length;
  const report = (offset: number) => (options.progress ? { progress: (done: number) => options.progress!(offset + done, totalRows) } : {});
  const gen = await attributionScores(engine, options.general, { mode, aggregation: generalAggregation, weights, ...report(0) });
  log(`undesired reference: ${options.undesired.length} explained outputs`);
  const und = await attributionScores(engine, options.undesired, { mode, aggregation: undesiredAggregation, weights, ...report(options.general.length) });

  // Component list with ids, in one flat order.
  const ids: string[] = [];
  let g: Float64Array;
  let u: Float64Array;
  if (unit === 'neurons') {
    engine.spec.layers.forEach((_, l) => {
      for (let i = 0; i < engine.spec.dMlp; i++) ids.push(`m${l}.n${i}`);
    });
    g = flatten(gen.neurons);
    u = flatten(und.neurons);
  } else {
    for (const name of upNames) {
      const size = gen.weights.get(name)!.length;
      for (let k = 0; k < size; k++) ids.push(`${name}[${k}]`);
    }
    g = flatten(upNames.map((n) => gen.weights.get(n)!));
    u = flatten(upNames.map((n) => und.weights.get(n)!));
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
      at += gen.weights.get(name)!.length;
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
    settings: { mode, generalAggregation, undesiredAggregation, normalize, generalOutputs: options.general.length, undesiredOutputs: options.undesired.length },
  };
}
