import assert from 'node:assert/strict';
import { test } from 'node:test';
import { averageRanks, pearson, rankComponents, scoredComponents, spearman } from '../../src/circuits/discovery/ranking';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

test('average ranks for ties', () => {
  assert.deepEqual(Array.from(averageRanks([10, 20, 20, 30])), [1, 2.5, 2.5, 4]);
  assert.deepEqual(Array.from(averageRanks([3, 1, 3, 3])), [3, 1, 3, 3]);
  assert.throws(() => averageRanks([1, Number.NaN]), /value 1 is NaN/);
});

test('Spearman: the IQ / TV-hours example (no ties) gives −29/165', () => {
  const iq = [106, 100, 86, 101, 99, 103, 97, 113, 112, 110];
  const tv = [7, 27, 2, 50, 28, 29, 20, 12, 6, 17];
  close(spearman(iq, tv), -29 / 165); // −0.175757…
});

test('Spearman with ties uses average ranks (scipy.stats.spearmanr agrees: 0.8207826816681233)', () => {
  // ranks of y: [1, 2, 3.5, 5, 3.5] → ρ = 8 / √95
  close(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 8 / Math.sqrt(95));
  close(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 0.8207826816681233);
});

test('Spearman extremes and undefined cases', () => {
  close(spearman([1, 2, 3, 4], [1, 4, 9, 16]), 1);
  close(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.ok(Number.isNaN(spearman([1, 2, 3], [7, 7, 7])), 'a constant list has no rank correlation');
  assert.throws(() => spearman([1, 2], [1, 2, 3]), /differ in length \(2 vs 3\)/);
  assert.throws(() => pearson([1], [1]), /at least two items/);
  close(pearson([1, 2, 3], [2, 4, 7]), 0.9933992677987828);
});

test('components are scored with TransformerLens ids and ranked by |score|, ties in input order', () => {
  const scored = scoredComponents({ heads: [[0.5, -3]], mlps: [2], neurons: [[0, -2]] });
  assert.deepEqual(scored.map((c) => c.id), ['a0.h0', 'a0.h1', 'm0', 'm0.n0', 'm0.n1']);
  assert.deepEqual(rankComponents(scored).map((c) => c.id), ['a0.h1', 'm0', 'm0.n1', 'a0.h0', 'm0.n0']);
  assert.deepEqual(rankComponents(scored, { absolute: false }).map((c) => c.id), ['m0', 'a0.h0', 'm0.n0', 'm0.n1', 'a0.h1']);
  assert.throws(() => rankComponents([{ id: 'a0.h0', score: Number.POSITIVE_INFINITY }]), /a0\.h0 has a non-finite score/);
});
