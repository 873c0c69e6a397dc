import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ForwardRequest, ForwardRow } from '../../src/engine/api';
import {
  ActivationMeans,
  circuitSizeForFraction,
  completeness,
  curveAreas,
  defaultUniverse,
  evaluateCircuit,
  faithfulnessCurve,
  MIB_FRACTIONS,
  normalizedFaithfulness,
} from '../../src/circuits/faithfulness';
import { eapIgEdgeList } from '../../src/circuits/export';
import type { Task } from '../../src/circuits/tasks';
import type { ArchSpec } from '../../src/models/spec';

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
// Plumbing of the async drivers. The runner below is a request recorder, not a model: it returns
// logits whose target-minus-foil difference is simply the number of *kept* components among
// a0.h0…a0.h3, so the tests can check which components each run ablated and what replacement
// activations it sent. Real-model behaviour is covered by the engine's integration tests.

const SPEC = { nLayers: 1, nHeads: 4, headDim: 2, dMlp: 3, dModel: 8, maxPositions: 16 } as unknown as ArchSpec;

function recordingRunner() {
  const requests: ForwardRequest[] = [];
  const runner = {
    spec: SPEC,
    async forward(request: ForwardRequest): Promise<ForwardRow[]> {
      requests.push(request);
      const ablated = new Set(request.interventions?.ablate ?? []);
      return request.ids.map((ids, row) => {
        const kept = [0, 1, 2, 3].filter((h) => !ablated.has(`a0.h${h}`)).length;
        const logitsLast = Float32Array.from([kept, 0, 0]);
        if (!request.hooks) return { logitsLast };
        // Hook activations: every value is the prompt's first token id + row, so means are checkable.
        const value = ids[0]! + row;
        return {
          logitsLast,
          headZ: [new Float32Array(ids.length * 8).fill(value)],
          mlpPost: [new Float32Array(ids.length * 3).fill(value)],
        };
      });
    },
  };
  return { runner, requests };
}

const TASK: Task = {
  name: 'plumbing',
  metric: 'logit_diff',
  examples: [
    { ids: [10, 11], corruptedIds: [20, 21], target: 0, foil: 1, meta: {}, origin: 't:1' },
    { ids: [30, 31], corruptedIds: [40, 41], target: 0, foil: 1, meta: {}, origin: 't:2' },
  ],
};
const RANKED = ['a0.h2', 'a0.h0', 'a0.h3', 'a0.h1'];

test('faithfulnessCurve ablates the ranked components outside the top ⌊f·N⌋ (zero ablation)', async () => {
  const { runner, requests } = recordingRunner();
  const curve = await faithfulnessCurve(runner, TASK, RANKED, 'zero', [0.25, 0.5, 1], { batchSize: 1 });
  assert.equal(curve.full, 4);
  assert.equal(curve.empty, 0);
  assert.deepEqual(curve.points.map((p) => [p.fraction, p.size, p.score, p.faithfulness]), [[0.25, 1, 1, 0.25], [0.5, 2, 2, 0.5], [1, 4, 4, 1]]);
  close(curve.cpr, 0.25 * 0.375 + 0.5 * 0.75);
  // Runs: full, empty, 25 %, 50 % (100 % reuses the full run), one request per example each.
  assert.deepEqual(requests.map((r) => r.interventions?.ablate ?? []), [[], [], RANKED, RANKED, ['a0.h0', 'a0.h3', 'a0.h1'], ['a0.h0', 'a0.h3', 'a0.h1'], ['a0.h3', 'a0.h1'], ['a0.h3', 'a0.h1']]);
  assert.ok(requests.every((r) => r.interventions?.headReplacement === undefined), 'zero ablation sends no replacement');
});

test('faithfulnessCurve with mean ablation sends the reference mean for every row and layer', async () => {
  const { runner, requests } = recordingRunner();
  await faithfulnessCurve(runner, TASK, RANKED, 'mean', [0.5, 1], { batchSize: 2 });
  assert.equal(requests[0]!.hooks, true, 'the reference pass asks for hook activations');
  const ablated = requests.find((r) => r.interventions !== undefined)!;
  // Reference hook values are 10 (row 0) and 31 (row 1): the mean is 20.5 everywhere.
  assert.equal(ablated.interventions!.headReplacement!.length, 2);
  assert.equal(ablated.interventions!.headReplacement![1]![0]!.length, 2 * 8);
  assert.ok(ablated.interventions!.headReplacement![1]![0]!.every((v) => v === 20.5));
  assert.ok(ablated.interventions!.neuronReplacement![0]![0]!.every((v) => v === 20.5));
});

test('resample ablation patches in the corrupted prompt activations of the same example', async () => {
  const { runner, requests } = recordingRunner();
  const result = await evaluateCircuit(runner, TASK, ['a0.h0', 'a0.h1'], 'resample', ['a0.h0', 'a0.h1', 'a0.h2', 'a0.h3'], { batchSize: 2 });
  assert.deepEqual(requests[1]!.ids, [[20, 21], [40, 41]], 'corrupted prompts run with hooks');
  const ablated = requests.find((r) => r.interventions !== undefined)!;
  assert.ok(ablated.interventions!.headReplacement![0]![0]!.every((v) => v === 20));
  assert.ok(ablated.interventions!.headReplacement![1]![0]!.every((v) => v === 41));
  assert.deepEqual(
    { full: result.full, empty: result.empty, circuit: result.circuit, complement: result.complement, faithfulness: result.faithfulness, completeness: result.completeness },
    { full: 4, empty: 0, circuit: 2, complement: 2, faithfulness: 0.5, completeness: 0.5 },
  );
  const noCorrupted: Task = { ...TASK, examples: [{ ids: [1], target: 0, foil: 1, meta: {}, origin: 'u.jsonl:4' }] };
  await assert.rejects(evaluateCircuit(runner, noCorrupted, ['a0.h0'], 'resample'), /u\.jsonl:4: resample ablation needs a corrupted prompt/);
});

test('drivers reject bad component lists before running anything', async () => {
  const { runner, requests } = recordingRunner();
  await assert.rejects(faithfulnessCurve(runner, TASK, [], 'zero'), /ranking is empty/);
  await assert.rejects(faithfulnessCurve(runner, TASK, ['a0.h9'], 'zero'), /head 9 is out of range/);
  await assert.rejects(faithfulnessCurve(runner, TASK, ['a0.h1', 'a0.h1'], 'zero'), /"a0\.h1" is listed twice/);
  await assert.rejects(faithfulnessCurve(runner, TASK, ['logits'], 'zero'), /"logits" cannot be ablated/);
  await assert.rejects(faithfulnessCurve(runner, TASK, ['a0.h1'], 'zero', [0.5, 0.2]), /strictly increasing/);
  await assert.rejects(faithfulnessCurve(runner, TASK, ['a0.h1'], 'noise' as never), /unknown ablation "noise"/);
  await assert.rejects(evaluateCircuit(runner, TASK, ['m0'], 'zero', ['a0.h0']), /m0 is not in the ablation universe/);
  assert.equal(requests.length, 0);
});
