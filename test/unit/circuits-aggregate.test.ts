import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  aggregateAttributions,
  aggregateHeadRelevance,
  aggregateNeuronRelevance,
  aggregateVectors,
  aggregateWeightRelevance,
  differentialScore,
  mlpBlockRelevance,
} from '../../src/circuits/discovery/aggregate';

// Two samples of a 1-layer, 2-head model: head 0 flips sign between samples, head 1 does not.
const HEADS = [[[-1, -2]], [[3, -4]]];

test('head aggregation: signed mean, |mean|, mean of |R|', () => {
  assert.deepEqual(aggregateHeadRelevance(HEADS, 'signed-mean'), [[1, -3]]);
  assert.deepEqual(aggregateHeadRelevance(HEADS, 'abs-mean'), [[1, 3]]);
  assert.deepEqual(aggregateHeadRelevance(HEADS, 'mean-abs'), [[2, 3]]);
  assert.deepEqual(aggregateHeadRelevance(HEADS), [[2, 3]], 'mean-abs (PXP) is the default');
});

test('neuron and weight aggregation keep per-layer / per-tensor shapes', () => {
  const neurons = aggregateNeuronRelevance(
    [
      [Float32Array.from([1, -1, 0]), Float32Array.from([2, 2, 2])],
      [Float32Array.from([-3, -1, 4]), Float32Array.from([0, 0, 0])],
    ],
    'signed-mean',
  );
  assert.deepEqual(neurons.map((layer) => Array.from(layer)), [[-1, -1, 2], [1, 1, 1]]);
  const weights = aggregateWeightRelevance([{ w: Float32Array.from([1, -2]) }, { w: Float32Array.from([-3, 0]) }], 'mean-abs');
  assert.deepEqual(Array.from(weights['w']!), [2, 1]);
});

test('MLP blocks aggregate the per-sample block sums', () => {
  assert.deepEqual(mlpBlockRelevance([Float32Array.from([1, -3, 0.5]), Float32Array.from([2])]), [-1.5, 2]);
  const result = aggregateAttributions([
    { headRelevance: [[1, 0]], mlpRelevance: [Float32Array.from([1, 1])] },
    { headRelevance: [[-1, 0]], mlpRelevance: [Float32Array.from([-1, -3])] },
  ]);
  assert.deepEqual(result.heads, [[1, 0]]);
  assert.deepEqual(result.mlps, [3], 'mean(|2|, |−4|) = 3, not mean over neurons of |R|');
  assert.deepEqual(Array.from(result.neurons![0]!), [1, 2]);
  const headsOnly = aggregateAttributions([{ headRelevance: [[1, 2]], mlpRelevance: null }], 'signed-mean');
  assert.equal(headsOnly.mlps, null);
  assert.equal(headsOnly.neurons, null);
});

test('shape mismatches and empty sets are explicit errors', () => {
  assert.throws(() => aggregateHeadRelevance([[[1, 2]], [[1, 2], [3, 4]]]), /sample 1 has 2 layers, sample 0 has 1/);
  assert.throws(() => aggregateHeadRelevance([[[1, 2]], [[1]]]), /sample 1 layer 0 has 1 heads, expected 2/);
  assert.throws(() => aggregateVectors([], 'mean-abs'), /reference set is empty/);
  assert.throws(() => aggregateVectors([[1]], 'median' as never), /unknown aggregation "median"/);
  assert.throws(() => aggregateWeightRelevance([{ a: [1] }, { b: [1] }]), /sample 1 has tensors \[b\], sample 0 has \[a\]/);
  assert.throws(
    () => aggregateAttributions([{ headRelevance: [[1]], mlpRelevance: null }, { headRelevance: [[1]], mlpRelevance: [Float32Array.from([1])] }]),
    /some samples have neuron relevance and some do not/,
  );
});

test('differential score: general − undesired, most negative = prune first', () => {
  assert.deepEqual(Array.from(differentialScore([1, 2, 3], [0, 5, 1])), [1, -3, 2]);
  assert.throws(() => differentialScore([1], [1, 2]), /differ in size/);
});
