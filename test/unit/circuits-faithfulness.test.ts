import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { EMBEDDED_MODEL } from '../helpers';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import {
  ActivationMeans,
  activationShape,
  circuitSizeForFraction,
  completeness,
  curveAreas,
  defaultUniverse,
  evaluateCircuit,
  faithfulnessCurve,
  MIB_FRACTIONS,
  normalizedFaithfulness,
} from '../../src/circuits/discovery/faithfulness';
import { eapIgEdgeList } from '../../src/circuits/exporters/export';
import type { Task } from '../../src/circuits/tasks/tasks';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

test('normalized faithfulness and completeness', () => {
  close(normalizedFaithfulness(8, 2, 10), 0.75);
  close(normalizedFaithfulness(12, 2, 10), 1.25); // a circuit can beat the full model
  close(normalizedFaithfulness(2, 2, 10), 0);
  // KL-style metric (lower is better, full = 0): the normalisation still maps full → 1, ∅ → 0.
  close(normalizedFaithfulness(0.5, 2, 0), 0.75);
  close(completeness(3, 2, 10), 0.875); // ablating the circuit alone leaves 3 of the 10
  assert.throws(() => normalizedFaithfulness(1, 4, 4), /full model \(4\) and the fully ablated model \(4\) score the same/);
});

test('circuit sizes are ⌊fraction · N⌋ like MIB, and MIB edge counts follow from the graph shape', () => {
  assert.deepEqual(MIB_FRACTIONS, [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]);
  // MIB's EDGE_COUNTS: gpt2 32491 (12 layers × 12 heads), qwen2.5 179749 (24 × 14).
  assert.equal(eapIgEdgeList({ n_layers: 12, n_heads: 12 }).length, 32491);
  assert.equal(eapIgEdgeList({ n_layers: 24, n_heads: 14 }).length, 179749);
  assert.deepEqual(MIB_FRACTIONS.map((f) => circuitSizeForFraction(f, 32491)), [32, 64, 162, 324, 649, 1624, 3249, 6498, 16245, 32491]);
  assert.equal(circuitSizeForFraction(0.5, 7), 3);
  assert.throws(() => circuitSizeForFraction(1.5, 7), /fraction must be in \[0, 1\]/);
});

test('CPR and CMD are trapezoid areas over the fraction axis', () => {
  // f = 0.2, 0.6, 1.0 at 10 %, 50 %, 100 %:
  // CPR = 0.4·(0.2+0.6)/2 + 0.5·(0.6+1)/2 = 0.56; CMD = 0.4·(0.8+0.4)/2 + 0.5·(0.4+0)/2 = 0.34
  const { cpr, cmd } = curveAreas([0.1, 0.5, 1], [0.2, 0.6, 1]);
  close(cpr, 0.56);
  close(cmd, 0.34);
  // Over-faithful circuits: CMD counts |1 − f|, so overshooting costs too.
  const over = curveAreas([0, 1], [1.5, 1]);
  close(over.cpr, 1.25);
  close(over.cmd, 0.25);
  // A perfect curve on MIB's grid: area 0.999 (from 0.1 % to 100 %), distance 0.
  const perfect = curveAreas(MIB_FRACTIONS, MIB_FRACTIONS.map(() => 1));
  close(perfect.cpr, 0.999);
  close(perfect.cmd, 0);
  assert.throws(() => curveAreas([0.5, 0.1], [1, 1]), /strictly increasing/);
  assert.throws(() => curveAreas([1], [1]), /at least two points/);
});

const SHAPE = { nLayers: 1, headWidth: 2, dMlp: 1 };
// Prompt A (2 tokens) and prompt B (1 token) of a 1-layer model with head width 2 and 1 neuron.
const PROMPT_A = { length: 2, headZ: [Float32Array.from([1, 2, 3, 4])], mlpPost: [Float32Array.from([10, 20])] };
const PROMPT_B = { length: 1, headZ: [Float32Array.from([7, 8])], mlpPost: [Float32Array.from([40])] };

test('mean ablation: one mean over all tokens of all reference prompts, tiled per position', () => {
  const means = new ActivationMeans(SHAPE);
  means.add(PROMPT_A);
  means.add(PROMPT_B);
  const replacement = means.overall(2);
  // heads: ((1+3+7)/3, (2+4+8)/3) = (11/3, 14/3); neuron: (10+20+40)/3 = 70/3
  Array.from(replacement.head[0]!).forEach((value, i) => close(value, [11 / 3, 14 / 3, 11 / 3, 14 / 3][i]!, 1e-6));
  Array.from(replacement.neuron[0]!).forEach((value) => close(value, 70 / 3, 1e-5));
});

test('positional mean: per position over the prompts that reach it, overall mean beyond', () => {
  const means = new ActivationMeans(SHAPE);
  means.add(PROMPT_A);
  means.add(PROMPT_B);
  const replacement = means.positional(3);
  // position 0: mean of A₀ and B₀; position 1: A₁ only; position 2: nobody → overall mean
  const expectedHead = [4, 5, 3, 4, 11 / 3, 14 / 3];
  Array.from(replacement.head[0]!).forEach((value, i) => close(value, expectedHead[i]!, 1e-6));
  const expectedNeuron = [25, 20, 70 / 3];
  Array.from(replacement.neuron[0]!).forEach((value, i) => close(value, expectedNeuron[i]!, 1e-5));
  assert.throws(() => new ActivationMeans(SHAPE).overall(1), /reference set is empty/);
  assert.throws(() => means.add({ length: 2, headZ: [new Float32Array(3)], mlpPost: [new Float32Array(2)] }), /head z has 3 values, expected T·H·dh = 2·2/);
});

test('default ablation universe: all heads and MLP blocks, or all neurons for a neuron circuit', () => {
  const spec = { nLayers: 2, nHeads: 2, dMlp: 2 };
  assert.deepEqual(defaultUniverse(spec), ['a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1']);
  assert.deepEqual(defaultUniverse(spec, ['m1.n0']), ['a0.h0', 'a0.h1', 'm0.n0', 'm0.n1', 'a1.h0', 'a1.h1', 'm1.n0', 'm1.n1']);
});

// ---------------------------------------------------------------------------------------------
// The async drivers, on the real engine and the embedded model: every score they report must
// equal the same ablation done by hand with engine.forward and its intervention inputs.

const IOI = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl'));
const TASK: Task = { ...IOI, examples: IOI.examples.slice(0, 8) };
const RANKED = ['a2.h2', 'a0.h1', 'a3.h1', 'a0.h2'];
const HEADS = Array.from({ length: 16 }, (_, i) => `a${Math.floor(i / 4)}.h${i % 4}`);

let engine: Engine;
before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
after(() => engine.dispose());

async function byHand(ablate: readonly string[], replacement?: (row: number) => { head: Float32Array[]; neuron: Float32Array[] }): Promise<number> {
  const ids = TASK.examples.map((e) => e.ids);
  const rows = await engine.forward({
    ids,
    ...(ablate.length > 0 && {
      interventions: {
        ablate,
        ...(replacement && { headReplacement: ids.map((_, i) => replacement(i).head), neuronReplacement: ids.map((_, i) => replacement(i).neuron) }),
      },
    }),
  });
  return rows.reduce((sum, row, i) => sum + row.logitsLast[TASK.examples[i]!.target!]! - row.logitsLast[TASK.examples[i]!.foil!]!, 0) / rows.length;
}

test('faithfulnessCurve (zero ablation) scores each size exactly as ablating the rest by hand', async () => {
  const curve = await faithfulnessCurve(engine, TASK, RANKED, 'zero', [0.25, 0.5, 1], { batchSize: 3 });
  close(curve.full, await byHand([]), 1e-5);
  close(curve.empty, await byHand(RANKED), 1e-5);
  const expected = [1, 2, 4].map((size) => byHand(RANKED.slice(size)));
  for (const [i, point] of curve.points.entries()) {
    close(point.score, await expected[i]!, 1e-5);
    close(point.faithfulness, normalizedFaithfulness(point.score, curve.empty, curve.full), 1e-12);
  }
  assert.deepEqual(curve.points.map((p) => p.size), [1, 2, 4]);
  close(curve.points[2]!.faithfulness, 1, 1e-9);
});

test('mean ablation replaces with the token mean over the reference prompts', async () => {
  const ids = TASK.examples.map((e) => e.ids);
  const hooked = await engine.forward({ ids, hooks: true });
  const means = new ActivationMeans(activationShape(engine.spec));
  hooked.forEach((row, i) => means.add({ length: ids[i]!.length, headZ: row.headZ!, mlpPost: row.mlpPost! }));
  const circuit = ['a2.h2', 'a0.h1'];
  const result = await evaluateCircuit(engine, TASK, circuit, 'mean', HEADS, { batchSize: 5 });
  const outside = HEADS.filter((h) => !circuit.includes(h));
  close(result.circuit, await byHand(outside, (i) => means.overall(ids[i]!.length)), 1e-5);
  close(result.complement, await byHand(circuit, (i) => means.overall(ids[i]!.length)), 1e-5);
  close(result.empty, await byHand(HEADS, (i) => means.overall(ids[i]!.length)), 1e-5);
});

test('resample ablation patches in the activations of each example\'s own corrupted prompt', async () => {
  const corrupted = await engine.forward({ ids: TASK.examples.map((e) => e.corruptedIds!), hooks: true });
  const circuit = ['a2.h2', 'a3.h1'];
  const result = await evaluateCircuit(engine, TASK, circuit, 'resample', HEADS, { batchSize: 3 });
  const replacement = (i: number) => ({ head: corrupted[i]!.headZ!, neuron: corrupted[i]!.mlpPost! });
  close(result.circuit, await byHand(HEADS.filter((h) => !circuit.includes(h)), replacement), 1e-5);
  close(result.complement, await byHand(circuit, replacement), 1e-5);
  const noCorrupted: Task = { ...TASK, examples: [{ ids: [1], target: 0, foil: 1, meta: {}, origin: 'u.jsonl:4' }] };
  await assert.rejects(evaluateCircuit(engine, noCorrupted, ['a0.h0'], 'resample'), /u\.jsonl:4: resample ablation needs a corrupted prompt/);
});

test('drivers reject bad component lists before running anything', async () => {
  let runs = 0;
  const counted = { spec: engine.spec, forward: (r: Parameters<Engine['forward']>[0]) => (runs++, engine.forward(r)) };
  await assert.rejects(faithfulnessCurve(counted, TASK, [], 'zero'), /ranking is empty/);
  await assert.rejects(faithfulnessCurve(counted, TASK, ['a0.h9'], 'zero'), /head 9 is out of range/);
  await assert.rejects(faithfulnessCurve(counted, TASK, ['a0.h1', 'a0.h1'], 'zero'), /"a0\.h1" is listed twice/);
  await assert.rejects(faithfulnessCurve(counted, TASK, ['logits'], 'zero'), /"logits" cannot be ablated/);
  await assert.rejects(faithfulnessCurve(counted, TASK, ['a0.h1'], 'zero', [0.5, 0.2]), /strictly increasing/);
  await assert.rejects(faithfulnessCurve(counted, TASK, ['a0.h1'], 'noise' as never), /unknown ablation "noise"/);
  await assert.rejects(evaluateCircuit(counted, TASK, ['m0'], 'zero', ['a0.h0']), /m0 is not in the ablation universe/);
  assert.equal(runs, 0);
});
