/**
 * Task metrics as pure functions over one position's logits (`Float32Array` of vocabulary size),
 * plus perplexity over a token stream. Sums run in float64: a float32 softmax over tens of
 * thousands of entries loses the small probabilities the KL and probability metrics depend on.
 */

import type { Interventions } from '../engine/api';
import type { ModelRunner } from './runner';
import type { MetricName, TaskExample } from './tasks/tasks';

type Logits = ArrayLike<number>;

function checkToken(logits: Logits, token: number, role: string): void {
  if (!Number.isInteger(token) || token < 0 || token >= logits.length) {
    throw new Error(`${role} token id ${token} is outside the logits (vocabulary ${logits.length})`);
  }
}

function checkLogits(logits: Logits): void {
  if (logits.length === 0) throw new Error('logits are empty');
}

/** log Σ exp(logits[start..end)), with the max subtracted first so large logits cannot overflow. */
function logSumExp(logits: Logits, start: number, end: number): number {
  let max = -Infinity;
  for (let i = start; i < end; i++) if (logits[i]! > max) max = logits[i]!;
  if (max === -Infinity || !Number.isFinite(max)) return max;
  let sumExp = 0;
  for (let i = start; i < end; i++) sumExp += Math.exp(logits[i]! - max);
  return max + Math.log(sumExp);
}

/** log-softmax with the max subtracted first, so large logits neither overflow nor lose precision. */
export function logSoftmax(logits: Logits): Float64Array {
  checkLogits(logits);
  const logNormalizer = logSumExp(logits, 0, logits.length);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - logNormalizer;
  return out;
}

export function softmax(logits: Logits): Float64Array {
  const out = logSoftmax(logits);
  for (let i = 0; i < out.length; i++) out[i] = Math.exp(out[i]!);
  return out;
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: Logits): number {
  checkLogits(logits);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** logit(target) − logit(foil): the IOI metric. */
export function logitDiff(logits: Logits, target: number, foil: number): number {
  checkToken(logits, target, 'target');
  checkToken(logits, foil, 'foil');
  return logits[target]! - logits[foil]!;
}

/** Σ p(tokens) under the softmax over the full vocabulary (duplicates counted once). */
export function probabilityMass(logits: Logits, tokens: readonly number[]): number {
  const logProbs = logSoftmax(logits);
  let mass = 0;
  for (const token of new Set(tokens)) {
    checkToken(logits, token, 'good');
    mass += Math.exp(logProbs[token]!);
  }
  return mass;
}

/** Σ p(good) − Σ p(bad), full-vocabulary softmax (greater-than: years > start vs ≤ start). */
export function probabilityDiff(logits: Logits, good: readonly number[], bad: readonly number[]): number {
  const logProbs = logSoftmax(logits);
  const mass = (tokens: readonly number[], role: string) => {
    let sum = 0;
    for (const token of new Set(tokens)) {
      checkToken(logits, token, role);
      sum += Math.exp(logProbs[token]!);
    }
    return sum;
  };
  return mass(good, 'good') - mass(bad, 'bad');
}

/** Binary accuracy: the target's logit strictly beats the foil's (ties count as wrong). */
export function isCorrect(logits: Logits, target: number, foil: number): boolean {
  return logitDiff(logits, target, foil) > 0;
}

/** Top-1 accuracy: the target is the arg-max token. */
export function isTop1(logits: Logits, target: number): boolean {
  checkToken(logits, target, 'target');
  return argmax(logits) === target;
}

/**
 * KL(P_full ‖ P_ablated) in nats, from one position's logits of each run: how much information
 * about the full model's next-token distribution the ablated model loses (ACDC's KL metric).
 */
export function klDivergence(fullLogits: Logits, ablatedLogits: Logits): number {
  if (fullLogits.length !== ablatedLogits.length) {
    throw new Error(`KL: logits differ in size (${fullLogits.length} vs ${ablatedLogits.length})`);
  }
  const logP = logSoftmax(fullLogits);
  const logQ = logSoftmax(ablatedLogits);
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]!);
    if (p > 0) kl += p * (logP[i]! - logQ[i]!);
  }
  // Rounding can leave a tiny negative value for identical distributions; KL is never negative.
  return Math.max(0, kl);
}

/**
 * One example's metric value from its last-position logits. `fullLogits` (the unablated
 * model's logits for the same example) is needed only by `kl`.
 */
export function exampleMetric(metric: MetricName, example: TaskExample, logits: Logits, fullLogits?: Logits): number {
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${example.origin}: the metric "${metric}" needs ${what}`);
    return value;
  };
  switch (metric) {
    case 'logit_diff':
      return logitDiff(logits, need(example.target, 'a target token'), need(example.foil, 'a foil token'));
    case 'accuracy':
      return isCorrect(logits, need(example.target, 'a target token'), need(example.foil, 'a foil token')) ? 1 : 0;
    case 'top1':
      return isTop1(logits, need(example.target, 'a target token')) ? 1 : 0;
    case 'prob_diff':
      return probabilityDiff(logits, need(example.goodTokens, 'good tokens'), need(example.badTokens, 'bad tokens'));
    case 'prob':
      return probabilityMass(logits, need(example.goodTokens, 'good tokens'));
    case 'kl':
      return klDivergence(need(fullLogits, "the full model's logits"), logits);
  }
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Error('mean of an empty list');
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

// ---------------------------------------------------------------------------------------------
// Perplexity

/**
 * Cuts a token stream into consecutive, non-overlapping windows of `contextLength` tokens (the
 * last one may be shorter). Each window is scored on its own, so its first token has no context
 * and is not predicted: a stream of N tokens scores N − (number of windows) tokens.
 */
export function perplexityWindows(ids: readonly number[], contextLength: number): number[][] {
  if (!Number.isInteger(contextLength) || contextLength < 2) {
    throw new Error(`perplexity: the context length must be an integer ≥ 2, got ${contextLength}`);
  }
  const windows: number[][] = [];
  for (let start = 0; start < ids.length; start += contextLength) {
    windows.push(ids.slice(start, start + contextLength));
  }
  return windows;
}

/**
 * Summed negative log-likelihood of one window from its `[T·V]` logits: position t predicts
 * token t+1, for t = 0 … T−2.
 */
export function windowNll(logits: ArrayLike<number>, windowIds: readonly number[]): { nll: number; count: number } {
  const length = windowIds.length;
  if (length === 0) return { nll: 0, count: 0 };
  if (logits.length % length !== 0) {
    throw new Error(`perplexity: ${logits.length} logits do not split into ${length} positions`);
  }
  const vocab = logits.length / length;
  let nll = 0;
  for (let t = 0; t + 1 < length; t++) {
    const next = windowIds[t + 1]!;
    if (!Number.isInteger(next) || next < 0 || next >= vocab) {
      throw new Error(`perplexity: token id ${next} at position ${t + 1} is outside the vocabulary (${vocab})`);
    }
    const offset = t * vocab;
    nll -= logits[offset + next]! - logSumExp(logits, offset, offset + vocab);
  }
  return { nll, count: length - 1 };
}

/** exp(mean NLL). */
export function perplexityFromNll(totalNll: number, tokensScored: number): number {
  if (tokensScored <= 0) throw new Error('perplexity: no token was scored (the text is too short)');
  return Math.exp(totalNll / tokensScored);
}

export interface PerplexityResult {
  readonly perplexity: number;
  readonly meanNll: number;
  readonly tokensScored: number;
  readonly windows: number;
}

/**
 * Perplexity of a token stream with the runner's model, windowed as in `perplexityWindows`.
 * `contextLength` defaults to the model's maximum positions.
 */
export async function perplexity(
  runner: Pick<ModelRunner, 'spec' | 'forward'>,
  ids: readonly number[],
  options: { readonly contextLength?: number; readonly batchSize?: number; readonly interventions?: Interventions } = {},
): Promise<PerplexityResult> {
  const contextLength = options.contextLength ?? runner.spec.maxPositions;
  if (contextLength > runner.spec.maxPositions) {
    throw new Error(`perplexity: context length ${contextLength} exceeds the model's ${runner.spec.maxPositions} positions`);
  }
  const windows = perplexityWindows(ids, contextLength);
  const batchSize = options.batchSize ?? 8;
  let totalNll = 0;
  let tokensScored = 0;
  for (let start = 0; start < windows.length; start += batchSize) {
    const batch = windows.slice(start, start + batchSize);
    const rows = await runner.forward({
      ids: batch,
      allLogits: true,
      ...(options.interventions !== undefined && { interventions: options.interventions }),
    });
    batch.forEach((windowIds, index) => {
      const logits = rows[index]?.logits;
      if (logits === undefined) throw new Error('perplexity: the runner returned no full logits (allLogits was requested)');
      const { nll, count } = windowNll(logits, windowIds);
      totalNll += nll;
      tokensScored += count;
    });
  }
  return {
    perplexity: perplexityFromNll(totalNll, tokensScored),
    meanNll: totalNll / tokensScored,
    tokensScored,
    windows: windows.length,
  };
}
