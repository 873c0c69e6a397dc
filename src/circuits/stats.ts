/**
 * Uncertainty for every comparison the benchmarks report.
 *
 * - `bootstrap`: percentile bootstrap (Efron & Tibshirani 1993, §13.3) over the units that were
 *   sampled (prompts). The statistic gets the resampled *indices*, so ratios of means
 *   (faithfulness = mean circuit metric / mean full metric), accuracies and areas are all
 *   resampled the same way: whole prompts, with every quantity measured on them.
 * - `pairedBootstrap`: the difference of two methods measured on the same prompts, resampling the
 *   prompts once for both (the paired design removes the prompt-to-prompt variance they share).
 * - `meanSem`: mean ± standard error over seeds (SparC³ Tab. 1 and PXP report mean ± SEM).
 * - `spearmanCI`: Spearman's ρ with a Fisher-z interval. The variance is Bonett & Wright's
 *   (2000) (1 + ρ²/2)/(n − 3) by default (appropriate for rank correlations); `fisher` uses the
 *   Pearson variance 1/(n − 3).
 *
 * All resampling is seeded (mulberry32, src/circuits/prng.ts): the same call gives the same
 * interval, so README tables can be regenerated exactly.
 */

import { Random } from './prng';
import { spearman } from './discovery/ranking';

export interface Interval {
  /** The statistic on the original sample. */
  readonly estimate: number;
  readonly lo: number;
  readonly hi: number;
  /** Confidence level, e.g. 0.95. */
  readonly level: number;
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  readonly resamples?: number;
  readonly seed?: number;
  /** Confidence level (default 0.95). */
  readonly level?: number;
}

/** Linear-interpolation quantile of sorted values (Hyndman & Fan type 7, numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error('quantile of an empty list');
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) throw new Error('mean of an empty list');
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total / values.length;
}

function checkOptions(options: BootstrapOptions): { resamples: number; seed: number; level: number } {
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(resamples) || resamples < 10) throw new Error(`bootstrap: resamples must be an integer ≥ 10, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap: level must be in (0, 1), got ${level}`);
  return { resamples, seed, level };
}

/**
 * Percentile bootstrap of `statistic(indices)` over `n` units. Resamples whose statistic is not
 * finite (e.g. a ratio whose denominator resampled to 0) are dropped; more than 1 % of them is an
 * error, since the interval would then describe a different population.
 */
export function bootstrap(n: number, statistic: (indices: readonly number[]) => number, options: BootstrapOptions = {}): Interval {
  if (!Number.isInteger(n) || n < 2) throw new Error(`bootstrap needs at least 2 units, got ${n}`);
  const { resamples, seed, level } = checkOptions(options);
  const identity = Array.from({ length: n }, (_, i) => i);
  const estimate = statistic(identity);
  const random = new Random(seed);
  const values: number[] = [];
  const indices = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) indices[i] = random.int(n);
    const v = statistic(indices);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length < resamples * 0.99) throw new Error(`bootstrap: ${resamples - values.length} of ${resamples} resamples gave a non-finite statistic`);
  values.sort((a, b) => a - b);
  const alpha = (1 - level) / 2;
  return { estimate, lo: quantileSorted(values, alpha), hi: quantileSorted(values, 1 - alpha), level };
}

/** Bootstrap CI of the mean of per-unit values. */
export function bootstrapMean(values: ArrayLike<number>, options: BootstrapOptions = {}): Interval {
  return bootstrap(values.length, (idx) => {
    let total = 0;
    for (const i of idx) total += values[i]!;
    return total / idx.length;
  }, options);
}

/** Bootstrap CI of mean(a) / mean(b) over the same units (e.g. circuit metric / full metric). */
export function bootstrapRatio(a: ArrayLike<number>, b: ArrayLike<number>, options: BootstrapOptions = {}): Interval {
  if (a.length !== b.length) throw new Error(`bootstrap ratio: ${a.length} vs ${b.length} values`);
  return bootstrap(a.length, (idx) => {
    let sa = 0;
    let sb = 0;
    for (const i of idx) {
      sa += a[i]!;
      sb += b[i]!;
    }
    return sa / sb;
  }, options);
}

/**
 * Paired bootstrap of a difference: `statistic(indices)` is computed for method A and method B on
 * the same resampled units and the interval is of A − B. With plain per-unit values, pass
 * `(idx) => mean over idx` for both.
 */
export function pairedBootstrap(
  n: number,
  statisticA: (indices: readonly number[]) => number,
  statisticB: (indices: readonly number[]) => number,
  options: BootstrapOptions = {},
): Interval {
  return bootstrap(n, (idx) => statisticA(idx) - statisticB(idx), options);
}

/** Paired bootstrap CI of mean(a − b) for per-unit values measured on the same units. */
export function pairedBootstrapMeanDiff(a: ArrayLike<number>, b: ArrayLike<number>, options: BootstrapOptions = {}): Interval {
  if (a.length !== b.length) throw new Error(`paired bootstrap: ${a.length} vs ${b.length} values (the two methods must be measured on the same units)`);
  const d = Array.from({ length: a.length }, (_, i) => a[i]! - b[i]!);
  return bootstrapMean(d, options);
}

export interface MeanSem {
  readonly mean: number;
  /** Standard error of the mean, s/√n with the n − 1 sample standard deviation (0 for n = 1). */
  readonly sem: number;
  readonly n: number;
}

/** Mean ± SEM over seeds. */
export function meanSem(values: ArrayLike<number>): MeanSem {
  const n = values.length;
  const m = mean(values);
  if (n === 1) return { mean: m, sem: 0, n };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - m) ** 2;
  return { mean: m, sem: Math.sqrt(ss / (n - 1) / n), n };
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normal quantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Spearman's ρ with a Fisher-z confidence interval (see the module comment for the variance). */
export function spearmanCI(x: ArrayLike<number>, y: ArrayLike<number>, options: { level?: number; variance?: 'bonett-wright' | 'fisher' } = {}): Interval {
  const level = options.level ?? 0.95;
  const n = x.length;
  if (n < 4) throw new Error(`Spearman CI needs at least 4 pairs, got ${n}`);
  const rho = spearman(x, y);
  if (!Number.isFinite(rho)) return { estimate: rho, lo: Number.NaN, hi: Number.NaN, level };
  if (Math.abs(rho) === 1) return { estimate: rho, lo: rho, hi: rho, level };
  const variance = (options.variance ?? 'bonett-wright') === 'fisher' ? 1 / (n - 3) : (1 + (rho * rho) / 2) / (n - 3);
  const z = Math.atanh(rho);
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(variance);
  return { estimate: rho, lo: Math.tanh(z - half), hi: Math.tanh(z + half), level };
}

/** `0.52 [0.03, 0.81]` with `digits` decimals. */
export function formatInterval(ci: Interval, digits = 3): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  return `${f(ci.estimate)} [${f(ci.lo)}, ${f(ci.hi)}]`;
}

/** `0.52 ± 0.03` (mean ± SEM). */
export function formatMeanSem(m: MeanSem, digits = 3): string {
  return `${m.mean.toFixed(digits)} ± ${m.sem.toFixed(digits)}`;
}
