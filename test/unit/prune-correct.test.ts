/**
 * Model correction (R_general − R_undesired over MLP neurons) and PXP tuning on the embedded
 * model, with real engine runs.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine, embeddedModelPath } from '../../src/engine/engine';
import { correct, perLogitOutputs, undesiredOutputs } from '../../src/circuits/pruning/correct';
import { calibrationWindows, nextTokenOutputs } from '../../src/circuits/pruning/prune';
import { ioiMetrics, loadTask, probabilityMetric, readTextIds, splitCalibration, textPerplexity, toxicSplit } from '../../src/circuits/pruning/pruneEval';
import { tune } from '../../src/circuits/pruning/tune';

let engine: Engine;
before(async () => {
  engine = await Engine.load(embeddedModelPath());
});
after(async () => engine.dispose());

describe('correct', () => {
  it('removing 64 of 2048 MLP neurons by R_general − R_toxic cuts the insult probability ≥ 90 % on held-out toxic prompts, perplexity +≤5 %, IOI accuracy ≥ 95 % of dense', async () => {
    const heldout = readTextIds(engine, path.join(engine.folder, 'heldout.txt'));
    const { calibIds, evalIds } = splitCalibration(heldout, 8 * 64);
    const { toxic } = toxicSplit(loadTask(engine, path.join(engine.folder, 'toxic.jsonl')));
    const reference = toxic.slice(0, 50);
    const heldToxic = toxic.slice(50);
    const ioi = loadTask(engine, path.join(engine.folder, 'ioi.jsonl')).examples;
    const pplIds = evalIds.slice(0, 4096);
    const result = await correct(engine, {
      undesired: undesiredOutputs(reference),
      general: nextTokenOutputs(calibrationWindows(calibIds, { windows: 8, windowLength: 64 })),
      unit: 'neurons',
      count: 64,
      steps: [64],
      evaluate: async (e) => ({
        toxic: await probabilityMetric(e, heldToxic),
        ppl: (await textPerplexity(e, pplIds)).perplexity,
        ioi: (await ioiMetrics(e, ioi)).accuracy,
      }),
    });
    assert.equal(result.removed.length, 64);
    assert.equal(result.totalComponents, 4 * 512);
    assert.equal(result.settings.undesiredOutputs, 50 * 5);
    const [dense, after64] = result.steps.map((s) => s.metrics) as [Record<string, number>, Record<string, number>];
    assert.ok(dense.toxic! > 0.95, `dense insult probability ${dense.toxic}`);
    assert.ok(after64.toxic! <= 0.1 * dense.toxic!, `insult probability ${dense.toxic} → ${after64.toxic}`);
    assert.ok(after64.ppl! <= 1.05 * dense.ppl!, `perplexity ${dense.ppl} → ${after64.ppl}`);
    assert.ok(after64.ioi! >= 0.95 * dense.ioi!, `IOI accuracy ${dense.ioi} → ${after64.ioi}`);
    // The returned weights are the 64-neuron model.
    const corrected = engine.withWeights(result.weights);
    assert.ok(Math.abs((await probabilityMetric(corrected, heldToxic)) - after64.toxic!) < 1e-9);
    await corrected.dispose();
  });
});

describe('correct: SparC³ Eq. 7 with commensurate sides', () => {
  it('splits a window into one-logit samples, so both sides are per-explained-logit means', () => {
    const rows = perLogitOutputs(nextTokenOutputs([[5, 6, 7, 8]]));
    assert.deepEqual(rows.map((r) => ('target' in r ? [r.target.position, r.target.token] : null)), [[0, 6], [1, 7], [2, 8]]);
  });

  it('the removal score is the plain difference R̄_general − R̄_undesired of the same aggregation, lowest removed first', async () => {
    const heldout = readTextIds(engine, path.join(engine.folder, 'heldout.txt'));
    const { toxic } = toxicSplit(loadTask(engine, path.join(engine.folder, 'toxic.jsonl')));
    const general = nextTokenOutputs(calibrationWindows(heldout.slice(-2 * 16), { windows: 2, windowLength: 16 }));
    const result = await correct(engine, { undesired: undesiredOutputs(toxic.slice(0, 4)), general, unit: 'neurons', count: 10 });
    assert.equal(result.settings.explained, 'per-logit');
    assert.equal(result.settings.normalize, 'none');
    assert.equal(result.settings.generalAggregation, result.settings.undesiredAggregation);
    assert.equal(result.settings.generalOutputs, 2 * 15);
    for (const r of result.removed) assert.ok(Math.abs(r.score - (r.general - r.undesired)) < 1e-9, `${r.id}: ${r.score} = ${r.general} − ${r.undesired}`);
    for (let i = 1; i < result.removed.length; i++) assert.ok(result.removed[i]!.score >= result.removed[i - 1]!.score);
    // The first removed neuron pushes the insult tokens up: positive undesired relevance.
    assert.ok(result.removed[0]!.undesired > 0);
  });

  it('the random baseline is seeded and the Wanda baseline runs on the same reference sets', async () => {
    const { toxic } = toxicSplit(loadTask(engine, path.join(engine.folder, 'toxic.jsonl')));
    const heldout = readTextIds(engine, path.join(engine.folder, 'heldout.txt'));
    const general = nextTokenOutputs(calibrationWindows(heldout.slice(-32), { windows: 2, windowLength: 16 }));
    const base = { undesired: undesiredOutputs(toxic.slice(0, 2)), general, unit: 'neurons' as const, count: 5 };
    const a = await correct(engine, { ...base, method: 'random', seed: 1 });
    const b = await correct(engine, { ...base, method: 'random', seed: 1 });
    const c = await correct(engine, { ...base, method: 'random', seed: 2 });
    assert.deepEqual(a.removed.map((r) => r.id), b.removed.map((r) => r.id));
    assert.notDeepEqual(a.removed.map((r) => r.id), c.removed.map((r) => r.id));
    const w = await correct(engine, { ...base, method: 'wanda' });
    assert.equal(w.settings.method, 'wanda');
    assert.ok(w.removed.every((r) => r.general >= 0 && r.undesired >= 0));
  });
});

describe('tune', () => {
  it('seeded random search evaluates the default first, logs every trial, and picks the largest AUC', async () => {
    const ioi = loadTask(engine, path.join(engine.folder, 'ioi.jsonl')).examples;
    const options = { reference: ioi.slice(0, 24), evaluation: ioi.slice(24, 104), budget: 3, seed: 7, rates: [0, 0.3, 0.6, 0.9] };
    const r = await tune(engine, options);
    assert.equal(r.trials.length, 3);
    assert.deepEqual(r.default.config, { composite: 'attnlrp', target: 'logit', aggregation: 'mean-abs' });
    assert.equal(r.settings.spaceSize, 18);
    for (const t of r.trials) {
      assert.equal(t.curve.length, 4);
      assert.ok(t.curve[0]!.value >= 0.9, 'dense accuracy at rate 0');
      assert.ok(t.auc > 0 && t.auc <= 0.9);
    }
    assert.equal(r.best.auc, Math.max(...r.trials.map((t) => t.auc)));
    const again = await tune(engine, options);
    assert.deepEqual(again.trials.map((t) => [t.config, t.auc]), r.trials.map((t) => [t.config, t.auc]));
  });
});
