import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/circuits/prng';
import { spearman } from '../../src/circuits/discovery/ranking';
import {
  bootstrap,
  bootstrapMean,
  bootstrapRatio,
  meanSem,
  normalQuantile,
  pairedBootstrapMeanDiff,
  quantileSorted,
  spearmanCI,
} from '../../src/circuits/stats';

const close = (actual: number, expected: number, tolerance: number) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected} ± ${tolerance}, got ${actual}`);

/** Box–Muller normal draws from the seeded PRNG. */
function normals(n: number, seed: number, mu = 0, sigma = 1): number[] {
  const r = new Random(seed);
  return Array.from({ length: n }, () => mu + sigma * Math.sqrt(-2 * Math.log(1 - r.float())) * Math.cos(2 * Math.PI * r.float()));
}

test('quantiles interpolate linearly (numpy.percentile: [1,2,3,4] → 1.75 at 25 %, 3.25 at 75 %)', () => {
  close(quantileSorted([1, 2, 3, 4], 0.25), 1.75, 1e-12);
  close(quantileSorted([1, 2, 3, 4], 0.75), 3.25, 1e-12);
  close(quantileSorted([5], 0.9), 5, 0);
  assert.throws(() => quantileSorted([], 0.5), /empty/);
});

test('normal quantile matches scipy.stats.norm.ppf', () => {
  close(normalQuantile(0.975), 1.959963984540054, 1e-8);
  close(normalQuantile(0.5), 0, 1e-12);
  close(normalQuantile(0.001), -3.090232306167813, 1e-8);
  close(normalQuantile(0.995), 2.5758293035489004, 1e-8);
});

test('mean ± SEM uses the n − 1 standard deviation', () => {
  const m = meanSem([1, 2, 3]);
  close(m.mean, 2, 1e-12);
  close(m.sem, 1 / Math.sqrt(3), 1e-12);
  assert.equal(meanSem([4]).sem, 0);
});

test('the bootstrap is seeded: the same seed gives the same interval, another seed another one', () => {
  const x = normals(40, 1);
  const a = bootstrapMean(x, { seed: 7 });
  const b = bootstrapMean(x, { seed: 7 });
  const c = bootstrapMean(x, { seed: 8 });
  assert.deepEqual(a, b);
  assert.notEqual(a.lo, c.lo);
  close(a.estimate, x.reduce((s, v) => s + v, 0) / x.length, 1e-12);
});

test('bootstrap CI of a mean ≈ mean ± 1.96·s/√n for a large normal sample', () => {
  const x = normals(400, 2, 3, 2);
  const ci = bootstrapMean(x, { seed: 1, resamples: 4000 });
  const m = meanSem(x);
  close(ci.hi - ci.lo, 2 * 1.96 * m.sem, 0.15 * 2 * 1.96 * m.sem);
  assert.ok(ci.lo < ci.estimate && ci.estimate < ci.hi);
});

test('95 % bootstrap intervals cover the true mean about 95 % of the time', () => {
  let covered = 0;
  const trials = 200;
  for (let t = 0; t < trials; t++) {
    const ci = bootstrapMean(normals(50, 100 + t, 1, 1), { seed: t, resamples: 500 });
    if (ci.lo <= 1 && 1 <= ci.hi) covered++;
  }
  // Percentile intervals undercover slightly at n = 50; a binomial 99.9 % band around 0.94.
  assert.ok(covered >= 170 && covered <= 198, `covered ${covered} of ${trials}`);
});

test('a constant sample has a zero-width interval; a ratio of means resamples whole units', () => {
  const ci = bootstrapMean([2, 2, 2, 2]);
  assert.equal(ci.lo, 2);
  assert.equal(ci.hi, 2);
  const r = bootstrapRatio([1, 2, 3, 4], [2, 4, 6, 8]);
  close(r.estimate, 0.5, 1e-12);
  close(r.lo, 0.5, 1e-12); // every resample keeps a/b = 1/2 per unit
  close(r.hi, 0.5, 1e-12);
  assert.throws(() => bootstrapRatio([1, 2], [1]), /2 vs 1/);
  assert.throws(() => bootstrap(1, () => 0), /at least 2 units/);
});

test('paired bootstrap removes the variance two methods share', () => {
  // Per-prompt difficulty varies a lot (sd 5); method A is better by 0.1 on every prompt, ± 0.05.
  const base = normals(60, 3, 0, 5);
  const noise = normals(60, 4, 0.1, 0.05);
  const a = base.map((v, i) => v + noise[i]!);
  const paired = pairedBootstrapMeanDiff(a, base, { seed: 1 });
  assert.ok(paired.lo > 0, `the paired CI excludes 0: ${paired.lo}`);
  assert.ok(paired.hi - paired.lo < 0.05, `and is narrow: ${paired.hi - paired.lo}`);
  const unpairedWidth = bootstrapMean(a, { seed: 1 }).hi - bootstrapMean(a, { seed: 1 }).lo;
  assert.ok(unpairedWidth > 1, `a single method's CI is wide: ${unpairedWidth}`);
  assert.throws(() => pairedBootstrapMeanDiff([1, 2], [1]), /same units/);
});

test('Spearman CI: Fisher z with 1/(n − 3) or Bonett–Wright (1 + ρ²/2)/(n − 3)', () => {
  const x = Array.from({ length: 16 }, (_, i) => i);
  const y = [0, 2, 1, 5, 3, 4, 9, 6, 8, 7, 12, 15, 10, 11, 14, 13].map((v, i) => (i % 3 === 0 ? 15 - v : v));
  const rho = spearman(x, y);
  const fisher = spearmanCI(x, y, { variance: 'fisher' });
  const half = 1.959963984540054 / Math.sqrt(13);
  close(fisher.lo, Math.tanh(Math.atanh(rho) - half), 1e-8);
  close(fisher.hi, Math.tanh(Math.atanh(rho) + half), 1e-8);
  const bw = spearmanCI(x, y);
  assert.ok(bw.lo < fisher.lo && bw.hi > fisher.hi, 'Bonett–Wright is wider');
  // The example: ρ = 0.52 over 16 heads has the Fisher interval [0.03, 0.81].
  const z = Math.atanh(0.52);
  close(Math.tanh(z - half), 0.03, 0.005);
  close(Math.tanh(z + half), 0.81, 0.005);
  assert.throws(() => spearmanCI([1, 2, 3], [1, 2, 3]), /at least 4/);
});
