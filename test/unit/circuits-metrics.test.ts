import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  argmax,
  exampleMetric,
  isCorrect,
  isTop1,
  klDivergence,
  logitDiff,
  logSoftmax,
  perplexityFromNll,
  perplexityWindows,
  probabilityDiff,
  probabilityMass,
  softmax,
  windowNll,
} from '../../src/circuits/metrics';
import type { TaskExample } from '../../src/circuits/tasks/tasks';

const close = (actual: number, expected: number, tolerance = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

// softmax([1, 2, 3]): log Σ exp = 3 + ln(e⁻² + e⁻¹ + 1) = 3.40760596444438
const LOGITS_123 = Float32Array.from([1, 2, 3]);
const LOG_P_123 = [-2.40760596444438, -1.40760596444438, -0.40760596444438];
const P_123 = [0.0900305731703805, 0.244728471054798, 0.665240955774822];

test('log-softmax and softmax match hand-computed values', () => {
  logSoftmax(LOGITS_123).forEach((value, i) => close(value, LOG_P_123[i]!));
  softmax(LOGITS_123).forEach((value, i) => close(value, P_123[i]!));
});

test('log-softmax is stable for huge and tiny logits', () => {
  // Shifting all logits changes nothing; a naive exp would overflow to Infinity at 1000.
  logSoftmax(Float32Array.from([1001, 1002, 1003])).forEach((value, i) => close(value, LOG_P_123[i]!, 1e-6));
  logSoftmax(Float32Array.from([-1001, -1000, -999])).forEach((value, i) => close(value, LOG_P_123[i]!, 1e-6));
  const p = softmax(Float32Array.from([0, -200]));
  close(p[0]!, 1);
  assert.ok(p[1]! > 0 && p[1]! < 1e-80, 'the tiny probability is kept, not rounded to 0 in float32');
  assert.throws(() => logSoftmax(new Float32Array(0)), /logits are empty/);
});

test('logit difference, accuracy, top-1', () => {
  const logits = Float32Array.from([1, 5, 2, 5]);
  assert.equal(logitDiff(logits, 1, 2), 3);
  assert.equal(logitDiff(logits, 2, 1), -3);
  assert.equal(isCorrect(logits, 1, 2), true);
  assert.equal(isCorrect(logits, 1, 3), false, 'a tie is not correct');
  assert.equal(argmax(logits), 1, 'first maximum on ties');
  assert.equal(isTop1(logits, 1), true);
  assert.equal(isTop1(logits, 3), false);
  assert.throws(() => logitDiff(logits, 4, 0), /target token id 4 is outside the logits \(vocabulary 4\)/);
});

test('probability mass and difference use the full-vocabulary softmax', () => {
  close(probabilityMass(LOGITS_123, [2]), P_123[2]!);
  close(probabilityMass(LOGITS_123, [2, 2]), P_123[2]!, 1e-12); // duplicates count once
  close(probabilityDiff(LOGITS_123, [2], [0, 1]), P_123[2]! - P_123[0]! - P_123[1]!); // 0.330481
  close(probabilityDiff(LOGITS_123, [], [0]), -P_123[0]!);
  assert.throws(() => probabilityDiff(LOGITS_123, [3], []), /good token id 3/);
});

test('KL(full ‖ ablated) in nats', () => {
  // P = (1/2, 1/2), Q = (3/4, 1/4): KL = ½ ln(2/3) + ½ ln 2 = ½ ln(4/3)
  close(klDivergence(Float32Array.from([0, 0]), Float64Array.from([Math.log(3), 0])), 0.5 * Math.log(4 / 3));
  assert.equal(klDivergence(LOGITS_123, LOGITS_123), 0);
  // Not symmetric: KL(Q ‖ P) = ¾ ln(3/2) + ¼ ln(1/2)
  close(klDivergence(Float64Array.from([Math.log(3), 0]), Float32Array.from([0, 0])), 0.75 * Math.log(1.5) + 0.25 * Math.log(0.5));
  assert.throws(() => klDivergence(LOGITS_123, Float32Array.from([1, 2])), /differ in size/);
});

test('exampleMetric dispatches on the metric name', () => {
  const example: TaskExample = { ids: [0], target: 2, foil: 0, goodTokens: [2], badTokens: [0, 1], meta: {}, origin: 'x.jsonl:1' };
  assert.equal(exampleMetric('logit_diff', example, LOGITS_123), 2);
  assert.equal(exampleMetric('accuracy', example, LOGITS_123), 1);
  assert.equal(exampleMetric('top1', example, LOGITS_123), 1);
  close(exampleMetric('prob', example, LOGITS_123), P_123[2]!);
  close(exampleMetric('prob_diff', example, LOGITS_123), P_123[2]! - P_123[0]! - P_123[1]!);
  assert.equal(exampleMetric('kl', example, LOGITS_123, LOGITS_123), 0);
  assert.throws(() => exampleMetric('kl', example, LOGITS_123), /x\.jsonl:1: the metric "kl" needs the full model's logits/);
  assert.throws(() => exampleMetric('logit_diff', { ids: [0], meta: {}, origin: 'y:3' }, LOGITS_123), /y:3: the metric "logit_diff" needs a target token/);
});

test('perplexity windows: consecutive, non-overlapping, first token of each window unscored', () => {
  const ids = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(perplexityWindows(ids, 4), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  // N tokens score N − ⌈N/ctx⌉: e.g. 11,643 tokens in 128-token windows score 11,552
  // (the count reference.json reports for heldout.txt).
  const windows = perplexityWindows(new Array(11643).fill(0), 128);
  assert.equal(windows.length, 91);
  assert.equal(windows.reduce((sum, w) => sum + w.length - 1, 0), 11552);
  assert.throws(() => perplexityWindows(ids, 1), /context length must be an integer ≥ 2/);
});

test('window NLL and perplexity from hand-computed logits', () => {
  // Uniform over 4 tokens: every prediction costs ln 4, so perplexity is exactly 4.
  const uniform = windowNll(new Float32Array(3 * 4), [0, 1, 2]);
  assert.equal(uniform.count, 2);
  close(uniform.nll, 2 * Math.log(4));
  close(perplexityFromNll(uniform.nll, uniform.count), 4);
  // Position 0 has logits [1, 2, 3] and the next token is 2: NLL = 0.40760596…
  const single = windowNll(Float32Array.from([1, 2, 3, 0, 0, 0]), [0, 2]);
  close(single.nll, -LOG_P_123[2]!, 1e-6);
  close(perplexityFromNll(single.nll, single.count), Math.exp(-LOG_P_123[2]!), 1e-6);
  assert.deepEqual(windowNll(Float32Array.from([1, 2, 3]), [5]), { nll: 0, count: 0 });
  assert.throws(() => windowNll(new Float32Array(7), [0, 1]), /7 logits do not split into 2 positions/);
  assert.throws(() => windowNll(new Float32Array(6), [0, 3]), /token id 3 at position 1 is outside the vocabulary \(3\)/);
  assert.throws(() => perplexityFromNll(0, 0), /no token was scored/);
});
