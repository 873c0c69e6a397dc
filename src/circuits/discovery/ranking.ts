/**
 * Ranking helpers: rank correlation between two scorings (e.g. relevance vs. ablation effect)
 * and turning per-component scores into an ordered component list.
 */

import { componentId } from '../../models/spec';

/**
 * 1-based ranks in ascending order of value; tied values get the average of the ranks they
 * span (the "fractional" ranking Spearman's ρ needs to stay correct with ties).
 */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.forEach((i) => {
    if (Number.isNaN(values[i]!)) throw new Error(`ranking: value ${i} is NaN`);
  });
  order.sort((a, b) => values[a]! - values[b]!);
  const ranks = new Float64Array(values.length);
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && values[order[end]!] === values[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2; // mean of ranks start+1 … end
    for (let k = start; k < end; k++) ranks[order[k]!] = averageRank;
    start = end;
  }
  return ranks;
}

/** Pearson correlation; NaN when either side is constant (correlation is undefined there). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`correlation: the two score lists differ in length (${x.length} vs ${y.length})`);
  if (x.length < 2) throw new Error('correlation needs at least two items');
  let meanX = 0;
  let meanY = 0;
  for (let i = 0; i < x.length; i++) {
    meanX += x[i]!;
    meanY += y[i]!;
  }
  meanX /= x.length;
  meanY /= y.length;
  let covariance = 0;
  let varianceX = 0;
  let varianceY = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = x[i]! - meanX;
    const dy = y[i]! - meanY;
    covariance += dx * dy;
    varianceX += dx * dx;
    varianceY += dy * dy;
  }
  if (varianceX === 0 || varianceY === 0) return Number.NaN;
  return covariance / Math.sqrt(varianceX * varianceY);
}

/** Spearman's ρ: Pearson correlation of the average ranks (so ties are handled exactly). */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`correlation: the two score lists differ in length (${x.length} vs ${y.length})`);
  return pearson(averageRanks(x), averageRanks(y));
}

export interface ScoredComponent {
  /** TransformerLens/EAP-IG id: `a9.h9`, `m3`, `m3.n17`. */
  readonly id: string;
  readonly score: number;
}

/** Flattens head / MLP-block / neuron score arrays into scored components with their ids. */
export function scoredComponents(scores: {
  readonly heads?: readonly (readonly number[])[];
  readonly mlps?: ArrayLike<number>;
  readonly neurons?: readonly ArrayLike<number>[];
}): ScoredComponent[] {
  const out: ScoredComponent[] = [];
  scores.heads?.forEach((row, layer) => row.forEach((score, head) => out.push({ id: componentId.head(layer, head), score })));
  if (scores.mlps !== undefined) {
    for (let layer = 0; layer < scores.mlps.length; layer++) out.push({ id: componentId.mlp(layer), score: scores.mlps[layer]! });
  }
  scores.neurons?.forEach((layerScores, layer) => {
    for (let neuron = 0; neuron < layerScores.length; neuron++) {
      out.push({ id: componentId.neuron(layer, neuron), score: layerScores[neuron]! });
    }
  });
  return out;
}

/**
 * Most important first: by |score| (default) or by signed score. Ties keep input order, so the
 * ranking is deterministic.
 */
export function rankComponents(components: readonly ScoredComponent[], options: { readonly absolute?: boolean } = {}): ScoredComponent[] {
  const key = options.absolute === false ? (c: ScoredComponent) => c.score : (c: ScoredComponent) => Math.abs(c.score);
  components.forEach((c) => {
    if (!Number.isFinite(c.score)) throw new Error(`ranking: component ${c.id} has a non-finite score (${c.score})`);
  });
  return components
    .map((component, index) => ({ component, index }))
    .sort((a, b) => key(b.component) - key(a.component) || a.index - b.index)
    .map(({ component }) => component);
}
