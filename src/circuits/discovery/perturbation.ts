/**
 * Input-perturbation faithfulness of token attributions, AttnLRP's own evaluation (Achtibat et
 * al. 2024, §4.1, after Samek et al. 2017 / Blücher et al. 2022): tokens are replaced one at a time
 * in order of relevance, most relevant first (MoRF) and least relevant first (LeRF), and the
 * explained logit is recorded after each step. A faithful attribution makes the MoRF curve fall
 * fast and the LeRF curve stay high; the score is the area between the curves,
 * ABC = ∫ (LeRF − MoRF) over the fraction of tokens replaced (trapezoids on [0, 1]). Higher is better.
 *
 * Replacement, not deletion, keeps every position (GPT-2's learned positions and RoPE stay where
 * they were); the replacement token is a parameter (the bench uses each model's end-of-text /
 * unknown token). The explained quantity is the logit of the model's own top-1 next token at the
 * last position of the unperturbed prompt, the same target every method explains.
 *
 * Besides the composites and random, integrated gradients (Sundararajan et al. 2017) is a method:
 * the runner's `integratedGradients` (Engine: midpoint Riemann sum along x' + α(x − x') in token
 * embedding space, positions kept; engine.ts) gives the token scores. Its baseline is either the
 * zero token embedding or the fully replaced prompt (every replaceable token set to the
 * replacement token), the point both perturbation curves end at: then Σ_t IG_t ≈ f(x) − f(x')
 * is exactly the drop from the curves' first to their last value.
 */
import type { Composite, Target } from '../../engine/api';
import { InputError } from '../../models/errors';
import { Random } from '../prng';
import type { ModelRunner } from '../runner';

export type PerturbationMethod = Composite | 'integrated-gradients' | 'random';

/** What integrated gradients needs from a runner (the Engine has it; see engine.ts). */
export interface IntegratedGradientsRunner {
  integratedGradients(request: {
    ids: readonly (readonly number[])[];
    targets: readonly Target[];
    steps?: number;
    baseline?: 'zero' | readonly (readonly number[])[];
  }): Promise<{ tokenRelevance: Float32Array; targetValue: number; baselineValue: number }[]>;
}

/** IG's baseline in the perturbation test: zero token embeddings, or the prompt with every token from `from` on replaced. */
export type IgBaseline = 'zero' | { readonly replacement: number; readonly from?: number };

export interface IgOptions {
  /** Midpoint steps (the runner's default when unset). */
  readonly steps?: number;
  /** Default: zero. */
  readonly baseline?: IgBaseline;
}

export interface PerturbationCurves {
  /** Logit of the target after replacing k tokens, k = 0 … T. */
  readonly morf: number[];
  readonly lerf: number[];
  /** Area between LeRF and MoRF on the fraction axis. */
  readonly abc: number;
}

/** Trapezoid area of (LeRF − MoRF) over k/T, k = 0 … T. */
export function areaBetweenCurves(morf: readonly number[], lerf: readonly number[]): number {
  if (morf.length !== lerf.length || morf.length < 2) throw new Error('area between curves: need two curves of equal length ≥ 2');
  const steps = morf.length - 1;
  let area = 0;
  for (let k = 0; k < steps; k++) area += ((lerf[k]! - morf[k]!) + (lerf[k + 1]! - morf[k + 1]!)) / 2 / steps;
  return area;
}

/** Order of positions, most relevant first (ties by position). */
export function morfOrder(relevance: ArrayLike<number>): number[] {
  return Array.from({ length: relevance.length }, (_, i) => i).sort((a, b) => relevance[b]! - relevance[a]! || a - b);
}

/** The prompts with the first k positions of `order` replaced, k = 0 … T. */
export function perturbedPrompts(ids: readonly number[], order: readonly number[], replacement: number): number[][] {
  const out: number[][] = [ids.slice()];
  const current = ids.slice();
  for (const position of order) {
    current[position] = replacement;
    out.push(current.slice());
  }
  return out;
}

/**
 * Token relevance of each prompt's top-1 target under `method` (random: seeded scores). For
 * integrated gradients also, per prompt, f(x) − f(x') and the completeness gap
 * Σ_t IG_t − (f(x) − f(x')), which shrinks as O(1/steps²) with the midpoint rule.
 */
export async function tokenScores(
  runner: Pick<ModelRunner, 'attribute' | 'forward'> & Partial<IntegratedGradientsRunner>,
  prompts: readonly (readonly number[])[],
  method: PerturbationMethod,
  seed = 0,
  options: IgOptions = {},
): Promise<{ scores: Float32Array[]; targets: number[]; completenessGap?: number[]; explainedDifference?: number[] }> {
  const rows = await runner.forward({ ids: prompts });
  const targets = rows.map((r) => {
    let best = 0;
    for (let v = 1; v < r.logitsLast.length; v++) if (r.logitsLast[v]! > r.logitsLast[best]!) best = v;
    return best;
  });
  if (method === 'random') {
    const random = new Random(seed);
    return { scores: prompts.map((p) => Float32Array.from(p, () => random.float())), targets };
  }
  if (method === 'integrated-gradients') {
    if (!runner.integratedGradients) throw new InputError('integrated gradients needs a runner with integratedGradients (the Engine)');
    const ig = await runner.integratedGradients({
      ids: prompts,
      targets: prompts.map((p, i) => ({ kind: 'logit', position: p.length - 1, token: targets[i]! })),
      ...(options.steps !== undefined ? { steps: options.steps } : {}),
      baseline: baselinePrompts(prompts, options.baseline ?? 'zero'),
    });
    return {
      scores: ig.map((r) => r.tokenRelevance),
      targets,
      completenessGap: ig.map((r) => r.tokenRelevance.reduce((a, b) => a + b, 0) - (r.targetValue - r.baselineValue)),
      explainedDifference: ig.map((r) => r.targetValue - r.baselineValue),
    };
  }
  const attributions = await runner.attribute({
    ids: prompts,
    targets: prompts.map((p, i) => ({ kind: 'logit', position: p.length - 1, token: targets[i]! })),
    mode: method,
    neurons: false,
  });
  return { scores: attributions.map((a) => a.tokenRelevance), targets };
}

/**
 * Mean MoRF and LeRF curves over prompts of different lengths: each curve is read at `points`
 * evenly spaced fractions of tokens replaced (linear interpolation between k/T), then averaged.
 */
export function meanCurves(curves: readonly PerturbationCurves[], points = 21): { fraction: number[]; morf: number[]; lerf: number[] } {
  if (curves.length === 0 || points < 2) throw new Error('mean curves: need at least one curve and two points');
  const fraction = Array.from({ length: points }, (_, i) => i / (points - 1));
  const at = (values: readonly number[], f: number) => {
    const x = f * (values.length - 1);
    const k = Math.min(Math.floor(x), values.length - 2);
    return values[k]! + (x - k) * (values[k + 1]! - values[k]!);
  };
  const mean = (pick: (c: PerturbationCurves) => readonly number[]) => fraction.map((f) => curves.reduce((s, c) => s + at(pick(c), f), 0) / curves.length);
  return { fraction, morf: mean((c) => c.morf), lerf: mean((c) => c.lerf) };
}

/** The baseline prompts of `baseline` (`'zero'` passes through). */
export function baselinePrompts(prompts: readonly (readonly number[])[], baseline: IgBaseline): 'zero' | number[][] {
  if (baseline === 'zero') return 'zero';
  const from = baseline.from ?? 0;
  return prompts.map((p) => p.map((id, t) => (t < from ? id : baseline.replacement)));
}

/** MoRF and LeRF curves and their ABC for one prompt. */
export async function perturbationCurves(
  runner: Pick<ModelRunner, 'forward'>,
  ids: readonly number[],
  relevance: ArrayLike<number>,
  target: number,
  replacement: number,
  /** Positions before this one are never replaced (e.g. a BOS token). */
  from = 0,
): Promise<PerturbationCurves> {
  const morf = morfOrder(Array.from(relevance).slice(from)).map((p) => p + from);
  const lerf = [...morf].reverse();
  const batch = [...perturbedPrompts(ids, morf, replacement), ...perturbedPrompts(ids, lerf, replacement)];
  const rows = await runner.forward({ ids: batch });
  const values = rows.map((r) => r.logitsLast[target]!);
  const n = morf.length + 1;
  const m = values.slice(0, n);
  const l = values.slice(n);
  return { morf: m, lerf: l, abc: areaBetweenCurves(m, l) };
}
