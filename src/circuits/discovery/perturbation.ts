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
 */
import type { Composite } from '../../engine/api';
import { Random } from '../prng';
import type { ModelRunner } from '../runner';

export type PerturbationMethod = Composite | 'random';

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

/** Token relevance of each prompt's top-1 target under `method` (random: seeded scores). */
export async function tokenScores(
  runner: Pick<ModelRunner, 'attribute' | 'forward'>,
  prompts: readonly (readonly number[])[],
  method: PerturbationMethod,
  seed = 0,
): Promise<{ scores: Float32Array[]; targets: number[] }> {
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
  const attributions = await runner.attribute({
    ids: prompts,
    targets: prompts.map((p, i) => ({ kind: 'logit', position: p.length - 1, token: targets[i]! })),
    mode: method,
    neurons: false,
  });
  return { scores: attributions.map((a) => a.tokenRelevance), targets };
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
