/**
 * Per-component relevance over a reference set (SparC³ Eq. 1 and its variants, methods.md B.1).
 *
 * The paper writes a plain mean and does not say where absolute values go, so all three readings
 * are offered:
 * - `signed-mean`: mean_i R(x_i). Positive and negative contributions cancel across samples.
 * - `abs-mean`: |mean_i R(x_i)|. Ranks components by net effect, sign dropped.
 * - `mean-abs` (default): mean_i |R(x_i)|. PXP's behaviour (`abs_flag=True`): a component that
 *   matters strongly but with varying sign is not cancelled away. PXP sums instead of averaging,
 *   which gives the same ranking.
 *
 * Sums are accumulated in float64 so thousands of samples do not lose precision.
 */

import type { Attribution } from '../../engine/api';

import { AGGREGATIONS, type Aggregation } from '../../vocabulary';

export const DEFAULT_AGGREGATION: Aggregation = 'mean-abs';

function checkMode(mode: Aggregation): void {
  if (!AGGREGATIONS.includes(mode)) {
    throw new Error(`unknown aggregation "${String(mode)}" (known: ${AGGREGATIONS.join(', ')})`);
  }
}

/** Aggregates equally long per-sample vectors element-wise. */
export function aggregateVectors(samples: readonly ArrayLike<number>[], mode: Aggregation = DEFAULT_AGGREGATION, label = 'relevance'): Float64Array {
  checkMode(mode);
  if (samples.length === 0) throw new Error(`cannot aggregate ${label}: the reference set is empty`);
  const length = samples[0]!.length;
  const sum = new Float64Array(length);
  samples.forEach((sample, index) => {
    if (sample.length !== length) {
      throw new Error(`cannot aggregate ${label}: sample ${index} has ${sample.length} entries, sample 0 has ${length}`);
    }
    for (let j = 0; j < length; j++) {
      const value = sample[j]!;
      sum[j] = sum[j]! + (mode === 'mean-abs' ? Math.abs(value) : value);
    }
  });
  for (let j = 0; j < length; j++) {
    const meanValue = sum[j]! / samples.length;
    sum[j] = mode === 'abs-mean' ? Math.abs(meanValue) : meanValue;
  }
  return sum;
}

/** Per-sample `[L][H]` head relevance → aggregated `[L][H]`. */
export function aggregateHeadRelevance(
  samples: readonly (readonly (readonly number[])[])[],
  mode: Aggregation = DEFAULT_AGGREGATION,
): number[][] {
  if (samples.length === 0) throw new Error('cannot aggregate head relevance: the reference set is empty');
  const layers = samples[0]!.length;
  const heads = samples[0]![0]?.length ?? 0;
  const flat = samples.map((matrix, index) => {
    if (matrix.length !== layers) {
      throw new Error(`cannot aggregate head relevance: sample ${index} has ${matrix.length} layers, sample 0 has ${layers}`);
    }
    const out = new Float64Array(layers * heads);
    matrix.forEach((row, layer) => {
      if (row.length !== heads) {
        throw new Error(`cannot aggregate head relevance: sample ${index} layer ${layer} has ${row.length} heads, expected ${heads}`);
      }
      out.set(row, layer * heads);
    });
    return out;
  });
  const aggregated = aggregateVectors(flat, mode, 'head relevance');
  return Array.from({ length: layers }, (_, layer) => Array.from(aggregated.subarray(layer * heads, (layer + 1) * heads)));
}

/** Per-sample `[L][dMlp]` neuron relevance → aggregated `[L][dMlp]`. */
export function aggregateNeuronRelevance(
  samples: readonly (readonly ArrayLike<number>[])[],
  mode: Aggregation = DEFAULT_AGGREGATION,
): Float64Array[] {
  if (samples.length === 0) throw new Error('cannot aggregate neuron relevance: the reference set is empty');
  const layers = samples[0]!.length;
  samples.forEach((sample, index) => {
    if (sample.length !== layers) {
      throw new Error(`cannot aggregate neuron relevance: sample ${index} has ${sample.length} layers, sample 0 has ${layers}`);
    }
  });
  return Array.from({ length: layers }, (_, layer) =>
    aggregateVectors(samples.map((sample) => sample[layer]!), mode, `neuron relevance of layer ${layer}`),
  );
}

/**
 * Relevance of each whole MLP block for one sample: the sum of its neurons' relevance. By LRP
 * conservation through the down projection this is the relevance of the block's output (up to
 * the share absorbed by the down-projection bias).
 */
export function mlpBlockRelevance(neurons: readonly ArrayLike<number>[]): number[] {
  return neurons.map((layer) => {
    let sum = 0;
    for (let i = 0; i < layer.length; i++) sum += layer[i]!;
    return sum;
  });
}

/** Per-sample weight relevance (tensor name → R_W) → aggregated per tensor. */
export function aggregateWeightRelevance(
  samples: readonly Readonly<Record<string, ArrayLike<number>>>[],
  mode: Aggregation = DEFAULT_AGGREGATION,
): Record<string, Float64Array> {
  if (samples.length === 0) throw new Error('cannot aggregate weight relevance: the reference set is empty');
  const names = Object.keys(samples[0]!).sort();
  samples.forEach((sample, index) => {
    const own = Object.keys(sample).sort();
    if (own.length !== names.length || own.some((name, i) => name !== names[i])) {
      throw new Error(`cannot aggregate weight relevance: sample ${index} has tensors [${own.join(', ')}], sample 0 has [${names.join(', ')}]`);
    }
  });
  const out: Record<string, Float64Array> = {};
  for (const name of names) out[name] = aggregateVectors(samples.map((sample) => sample[name]!), mode, `weight relevance of ${name}`);
  return out;
}

export interface ComponentRelevance {
  /** `[L][H]` */
  readonly heads: number[][];
  /** `[L]` whole MLP blocks (from the per-sample neuron sums); null without neuron relevance. */
  readonly mlps: number[] | null;
  /** `[L][dMlp]`; null without neuron relevance. */
  readonly neurons: Float64Array[] | null;
}

/**
 * Aggregates the engine's per-sample attributions. MLP blocks are aggregated from each sample's
 * block sum (so `mean-abs` is mean |Σ_n R_n|, not Σ_n mean |R_n|).
 */
export function aggregateAttributions(
  attributions: readonly Pick<Attribution, 'headRelevance' | 'mlpRelevance'>[],
  mode: Aggregation = DEFAULT_AGGREGATION,
): ComponentRelevance {
  if (attributions.length === 0) throw new Error('cannot aggregate attributions: none were given');
  const heads = aggregateHeadRelevance(attributions.map((a) => a.headRelevance), mode);
  const withNeurons = attributions.filter((a) => a.mlpRelevance !== null);
  if (withNeurons.length === 0) return { heads, mlps: null, neurons: null };
  if (withNeurons.length !== attributions.length) {
    throw new Error('cannot aggregate attributions: some samples have neuron relevance and some do not');
  }
  const neuronSamples = attributions.map((a) => a.mlpRelevance!);
  return {
    heads,
    mlps: Array.from(aggregateVectors(neuronSamples.map(mlpBlockRelevance), mode, 'MLP block relevance')),
    neurons: aggregateNeuronRelevance(neuronSamples, mode),
  };
}

/**
 * SparC³'s differential score (Eq. 7): R̄_general − R̄_undesired. Sorted ascending, the first
 * components are the ones relevant to the undesired behaviour and not to general text: prune those.
 */
export function differentialScore(general: ArrayLike<number>, undesired: ArrayLike<number>): Float64Array {
  if (general.length !== undesired.length) {
    throw new Error(`differential score: the general (${general.length}) and undesired (${undesired.length}) scores differ in size`);
  }
  const out = new Float64Array(general.length);
  for (let i = 0; i < out.length; i++) out[i] = general[i]! - undesired[i]!;
  return out;
}
