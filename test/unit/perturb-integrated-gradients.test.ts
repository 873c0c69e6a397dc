/**
 * Integrated gradients through the integration-path graph (build.ts `embeddingScale`,
 * Engine.integratedGradients) with real ONNX Runtime sessions: completeness (Sundararajan et al.
 * 2017, Prop. 1: Σ_t IG_t = f(x) − f(x')) within the midpoint rule's O(1/m²) error, on the
 * embedded GPT-2 (learned positions kept in the baseline; zero and replaced-prompt baselines) and
 * on stories260k (Llama: RoPE, RMSNorm; replaced-prompt baseline). f(x) and, for a baseline
 * prompt, f(x') are checked against the separate forward-only graph.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { checkMemory, estimateModelBytes, estimateRunBytes } from '../../src/engine/memory';
import { parameterCount } from '../../src/models/load';
import type { Target } from '../../src/engine/api';
import { baselinePrompts, meanCurves, tokenScores, type IgBaseline } from '../../src/circuits/discovery/perturbation';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import { captureCli, EMBEDDED_MODEL, missingShared, sharedModel } from '../helpers';

test('mean curves over prompts of different lengths: read at common fractions, then averaged', () => {
  // T = 2 (fractions 0, ½, 1) and T = 4 (0, ¼, ½, ¾, 1), read at 0, ½, 1 and at ¼ (interpolated for T = 2).
  const a = { morf: [4, 2, 0], lerf: [4, 4, 2], abc: 0 };
  const b = { morf: [8, 6, 4, 2, 0], lerf: [8, 8, 8, 8, 8], abc: 0 };
  const m = meanCurves([a, b], 5);
  assert.deepEqual(m.fraction, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(m.morf, [6, (3 + 6) / 2, (2 + 4) / 2, (1 + 2) / 2, 0]);
  assert.deepEqual(m.lerf, [6, 6, 6, (3 + 8) / 2, 5]);
  assert.throws(() => meanCurves([]), /at least one/);
  assert.deepEqual(baselinePrompts([[1, 5, 6]], { replacement: 0, from: 1 }), [[1, 0, 0]]);
  assert.equal(baselinePrompts([[1, 5, 6]], 'zero'), 'zero');
});

let engine: Engine;
before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
after(() => engine.dispose());

/** Each prompt's top-1 next token at its last position, as the perturbation test explains it. */
async function topTargets(runner: Engine, prompts: number[][]): Promise<Target[]> {
  const rows = await runner.forward({ ids: prompts });
  return rows.map((r, i) => {
    let best = 0;
    for (let v = 1; v < r.logitsLast.length; v++) if (r.logitsLast[v]! > r.logitsLast[best]!) best = v;
    return { kind: 'logit', position: prompts[i]!.length - 1, token: best };
  });
}

const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

async function checkCompleteness(runner: Engine, prompts: number[][], label: string, baseline: IgBaseline): Promise<void> {
  const targets = await topTargets(runner, prompts);
  const forward = await runner.forward({ ids: prompts });
  const baselineIds = baselinePrompts(prompts, baseline);
  const baselineForward = baselineIds === 'zero' ? undefined : await runner.forward({ ids: baselineIds });
  const coarse = await runner.integratedGradients({ ids: prompts, targets, steps: 4, baseline: baselineIds });
  const fine = await runner.integratedGradients({ ids: prompts, targets, steps: 64, baseline: baselineIds });
  const plain = await runner.attribute({ ids: prompts, targets, mode: 'gradient', neurons: false });
  prompts.forEach((p, i) => {
    const t = targets[i]!;
    const r = fine[i]!;
    // f(x) is the α = 1 row, f(x') the α = 0 row: the same logits as the forward-only graph.
    assert.ok(Math.abs(r.targetValue - forward[i]!.logitsLast[t.token]!) < 1e-4, `${label} ${i}: f(x) ${r.targetValue}`);
    if (baselineForward) assert.ok(Math.abs(r.baselineValue - baselineForward[i]!.logitsLast[t.token]!) < 1e-4, `${label} ${i}: f(x') ${r.baselineValue}`);
    const difference = r.targetValue - r.baselineValue;
    assert.ok(Math.abs(difference) > 1, `${label} ${i}: f(x) − f(x') = ${difference} (the baseline must move the logit)`);
    const gapFine = Math.abs(sum(r.tokenRelevance) - difference);
    const gapCoarse = Math.abs(sum(coarse[i]!.tokenRelevance) - difference);
    assert.ok(gapFine < 2e-3 * Math.abs(difference), `${label} ${i}: completeness gap ${gapFine} at 64 steps for f(x) − f(x') = ${difference}`);
    // Midpoint rule: the error falls as 1/m² (÷256 from 4 to 64 steps); ask for ÷10 to stay clear of float noise.
    assert.ok(gapFine < gapCoarse / 10 || gapCoarse < 1e-4, `${label} ${i}: gap ${gapCoarse} at 4 steps, ${gapFine} at 64`);
    assert.equal(r.gradientTimesInput.length, p.length);
    if (baselineIds === 'zero') {
      // With the zero baseline the α = 1 row is plain gradient × input, as the ordinary gradient graph computes it.
      r.gradientTimesInput.forEach((v, k) => assert.ok(Math.abs(v - plain[i]!.tokenRelevance[k]!) < 1e-4 * (1 + Math.abs(v)), `${label} ${i}: G×I at ${k}`));
      // IG is not G×I: the model is not linear along the path (G×I does not sum to f(x) − f(x')).
      const gxiGap = Math.abs(sum(r.gradientTimesInput) - difference);
      assert.ok(gxiGap > 20 * gapFine, `${label} ${i}: G×I gap ${gxiGap} vs IG gap ${gapFine}`);
    } else {
      // A token equal to its baseline token has no displacement, so no IG (here: the kept BOS).
      p.forEach((id, k) => {
        if (id === baselineIds[i]![k]) assert.equal(r.tokenRelevance[k], 0, `${label} ${i}: IG at unchanged position ${k}`);
      });
    }
  });
}

test('integrated gradients on the embedded GPT-2: Σ IG = f(x) − f(x′) within the midpoint error (zero and replaced-prompt baselines)', async () => {
  const task = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl'));
  const prompts = task.examples.slice(0, 5).map((e) => [...e.ids]);
  await checkCompleteness(engine, prompts, 'embedded, zero baseline', 'zero');
  await checkCompleteness(engine, prompts, 'embedded, <|endoftext|> baseline', { replacement: 2087 });
});

test('integrated gradients on stories260k (Llama: RoPE, RMSNorm, SwiGLU)', { skip: missingShared('models/stories260k') }, async () => {
  const s = await Engine.load(sharedModel('stories260k'));
  try {
    const tok = s.tokenizer!;
    const prompts = ['Once upon a time there was', 'Tom and his dog went to the park and'].map((t) => {
      const ids = tok.encodeIds(t);
      return ids[0] === 1 ? ids : [1, ...ids];
    });
    // BOS stays (as in the perturbation test); every other token moves from <unk> (id 0).
    await checkCompleteness(s, prompts, 'stories260k', { replacement: 0, from: 1 });
  } finally {
    await s.dispose();
  }
});

test('integrated gradients from a token baseline is complete on every architecture family (learned positions, RoPE, OPT, NeoX, Gemma 2, Qwen 3)', { skip: missingShared('models/random-tiny-gemma2') }, async () => {
  for (const name of ['random-tiny-gpt2', 'random-tiny-llama', 'random-tiny-opt', 'random-tiny-neox', 'random-tiny-gemma2', 'random-tiny-qwen3']) {
    const m = await Engine.load(sharedModel(name));
    try {
      const V = m.spec.vocabSize;
      const prompts = [[3, 17, 5, 9, 11, 4, 8], [7, 2, 13, 6, 10]].map((p) => p.map((x) => x % V));
      const targets = await topTargets(m, prompts);
      const ig = await m.integratedGradients({ ids: prompts, targets, steps: 128, baseline: prompts.map((p) => p.map(() => 1)) });
      const forward = await m.forward({ ids: prompts.map((p) => p.map(() => 1)) });
      ig.forEach((r, i) => {
        const difference = r.targetValue - r.baselineValue;
        assert.ok(Math.abs(r.baselineValue - forward[i]!.logitsLast[targets[i]!.token]!) < 1e-4, `${name} ${i}: f(x') ${r.baselineValue}`);
        // 128 midpoint steps: measured ≤ 0.006 % except OPT (ReLU kinks, 0.65 %).
        assert.ok(Math.abs(sum(r.tokenRelevance) - difference) < 0.01 * Math.abs(difference), `${name} ${i}: Σ IG ${sum(r.tokenRelevance)} vs f(x) − f(x') ${difference}`);
      });
    } finally {
      await m.dispose();
    }
  }
});

test('integrated gradients as a perturbation method: scores per token, completeness gaps, bad steps refused', async () => {
  const task = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl'));
  const prompts = task.examples.slice(0, 3).map((e) => [...e.ids]);
  const { scores, targets, completenessGap } = await tokenScores(engine, prompts, 'integrated-gradients', 0, { steps: 32 });
  assert.equal(scores.length, 3);
  scores.forEach((s, i) => assert.equal(s.length, prompts[i]!.length));
  assert.equal(targets.length, 3);
  assert.ok(completenessGap!.every((g) => Math.abs(g) < 0.1), `gaps ${completenessGap!.join(', ')}`);
  // Prompts of different lengths share runs (padded rows): each prompt's IG matches its own run.
  const mixed = [prompts[0]!, prompts[1]!.slice(0, 6)];
  const together = await engine.integratedGradients({ ids: mixed, targets: await topTargets(engine, mixed), steps: 8 });
  const alone = await engine.integratedGradients({ ids: [mixed[1]!], targets: (await topTargets(engine, mixed)).slice(1), steps: 8 });
  together[1]!.tokenRelevance.forEach((v, k) => assert.ok(Math.abs(v - alone[0]!.tokenRelevance[k]!) < 1e-4 * (1 + Math.abs(v))));
  await assert.rejects(engine.integratedGradients({ ids: prompts, targets: targets.map((token, i) => ({ kind: 'logit', position: prompts[i]!.length - 1, token })), steps: 0 }), /steps/);
  await assert.rejects(tokenScores({ forward: engine.forward.bind(engine), attribute: engine.attribute.bind(engine) }, prompts, 'integrated-gradients'), /integratedGradients/);
});

test('CLI perturb --methods integrated-gradients: ABC with a CI and the completeness gap; bad --ig-steps exits 2', async () => {
  await captureCli(async (main) => {
    assert.equal(await main(['perturb', '--task', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--methods', 'integrated-gradients', '--ig-steps', '0']), 2);
    assert.equal(await main(['perturb', '--task', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--methods', 'integrated-gradients', '--ig-steps', '5000']), 2);
    assert.equal(await main(['perturb', '--task', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--methods', 'integrated-gradients', '--ig-baseline', 'blur']), 2);
  });
  const { result: code, printed: out } = await captureCli((main) => main(['perturb', '--task', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--n', '6', '--methods', 'integrated-gradients,random', '--ig-steps', '8', '--json']));
  assert.equal(code, 0, out.join(''));
  const json = JSON.parse(out.filter((s) => s.startsWith('{"prompts"')).pop()!);
  const ig = json.results[0];
  assert.equal(ig.method, 'integrated-gradients');
  assert.ok(ig.abc.lo <= ig.abc.estimate && ig.abc.estimate <= ig.abc.hi);
  assert.ok(ig.minus_random.estimate > 0, `IG − random ${ig.minus_random.estimate}`);
  assert.equal(ig.curves.fraction.length, 11);
  assert.ok(Math.abs(ig.curves.morf[0] - ig.curves.lerf[0]) < 1e-9, 'both curves start at the unperturbed logit');
  assert.ok(Math.abs(ig.curves.morf[10] - ig.curves.lerf[10]) < 1e-4, 'and end at the fully replaced prompt');
  assert.equal(json.integrated_gradients.steps, 8);
  assert.equal(json.integrated_gradients.baseline, 'replacement');
  assert.ok(json.integrated_gradients.mean_abs_gap < 0.5, `gap ${json.integrated_gradients.mean_abs_gap}`);
  assert.ok(Number.isFinite(json.integrated_gradients.max_relative_gap) && json.integrated_gradients.max_relative_gap >= 0);
});

test('integrated gradients with more steps than one run holds: rows are split across runs, not refused, and the result is the one-run result', async () => {
  // 100 steps are 102 rows per prompt, more than IG_ROWS_PER_RUN (72). A memory cap between the
  // estimates for 72 and 102 rows of 120 tokens refuses one run of a whole prompt's rows.
  const spec = engine.spec;
  const T = 120;
  const limitBytes = (estimateRunBytes(spec, 72, T, true) + estimateRunBytes(spec, 102, T, true)) / 2;
  assert.ok(estimateModelBytes(parameterCount(engine.loaded.weights)) < limitBytes, 'the cap leaves room for the model');
  const capped = await Engine.load(EMBEDDED_MODEL, { memory: { share: 1, limitBytes } });
  try {
    const prompts = [0, 1].map((seed) => Array.from({ length: T - seed * 7 }, (_, t) => (t * 37 + seed * 11 + 5) % spec.vocabSize));
    const targets = await topTargets(engine, prompts);
    assert.throws(() => checkMemory(estimateRunBytes(spec, 102, T, true), 'one run of 102 rows', { share: 1, limitBytes }, ''), /needs an estimated/);
    const split = await capped.integratedGradients({ ids: prompts, targets, steps: 100 });
    const whole = await engine.integratedGradients({ ids: prompts, targets, steps: 100 });
    split.forEach((r, i) => {
      const w = whole[i]!;
      assert.ok(Math.abs(r.targetValue - w.targetValue) < 1e-4 && Math.abs(r.baselineValue - w.baselineValue) < 1e-4, `prompt ${i}: f(x), f(x')`);
      r.tokenRelevance.forEach((v, t) => assert.ok(Math.abs(v - w.tokenRelevance[t]!) < 1e-4 * (1 + Math.abs(v)), `prompt ${i}: IG at ${t}: ${v} vs ${w.tokenRelevance[t]}`));
      assert.equal(r.gradientTimesInput.length, prompts[i]!.length);
      r.gradientTimesInput.forEach((v, t) => assert.ok(Math.abs(v - w.gradientTimesInput[t]!) < 1e-4 * (1 + Math.abs(v)), `prompt ${i}: G×I at ${t}: ${v} vs ${w.gradientTimesInput[t]}`));
    });
  } finally {
    await capped.dispose();
  }
});
