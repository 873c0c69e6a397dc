/**
 * Forward logits, tokenization and AttnLRP / CP-LRP relevance against the float64 PyTorch
 * oracle (`../shared/reference/<model>/lrp_reference.json`) for all eight models (GPT-2, OPT,
 * Llama, GPT-NeoX, Gemma 2, Qwen3 random fixtures and the two trained models).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import type { Attribution, Composite, Target } from '../../src/engine/api';
import { MODELS, SHARED, maxAbsDiff, missingShared, readJson, relativeError, sharedModel } from '../helpers';

const RELATIVE = 1e-4;
const LOGITS_ABS = 1e-4;

for (const model of MODELS) {
  const skip = missingShared(`reference/${model}/lrp_reference.json`) || missingShared(`models/${model}/model.safetensors`);
  describe(`${model} against the oracle`, { skip }, () => {
    if (skip) return;
    const reference = readJson(path.join(SHARED, 'reference', model, 'lrp_reference.json'));
    let engine: Engine;
    const load = async () => (engine ??= await Engine.load(sharedModel(model)));
    after(() => engine?.dispose());

    it('forward logits at the last position match within 1e-4 absolute', async () => {
      const e = await load();
      const rows = await e.forward({ ids: reference.prompts.map((p: any) => p.tokens) });
      reference.prompts.forEach((p: any, i: number) => {
        assert.ok(maxAbsDiff(rows[i]!.logitsLast, p.forward.logits_last) < LOGITS_ABS, `prompt ${i}: ${maxAbsDiff(rows[i]!.logitsLast, p.forward.logits_last)}`);
      });
    });

    const withAll = reference.prompts.filter((p: any) => p.forward.logits);
    it('logits at every position match where the reference has them', { skip: withAll.length === 0 && 'this reference stores last-position logits only' }, async () => {
      const e = await load();
      const rows = await e.forward({ ids: withAll.map((p: any) => p.tokens), allLogits: true });
      withAll.forEach((p: any, i: number) => {
        const diff = maxAbsDiff(rows[i]!.logits!, p.forward.logits.flat());
        assert.ok(diff < LOGITS_ABS, `prompt ${i}: ${diff}`);
      });
    });

    it('tokenizes every reference prompt to the reference ids', { skip: reference.prompts[0].text === undefined && 'token-id fixture' }, async () => {
      const e = await load();
      for (const p of reference.prompts) assert.deepEqual(e.tokenizer!.encode(p.text).ids, p.tokens);
    });

    for (const mode of ['attnlrp', 'cp-lrp'] as const) {
      it(`${mode}: every field of every explanation within 1e-4 relative`, async () => {
        const e = await load();
        for (const [i, p] of reference.prompts.entries()) {
          for (const explanation of p.explanations) {
            const expected = explanation[mode];
            const weights = expected.weight_samples.map((s: any) => s.param);
            const [ours] = await e.attribute({ ids: [p.tokens], targets: [targetOf(explanation.target)], mode, weights });
            compare(ours!, expected, explanation.target_value, mode, `prompt ${i} ${explanation.target.kind}`, float32Floor(p, explanation.target));
          }
        }
      });
    }

    it('batched rows of different lengths give the same relevance as one at a time', async () => {
      const e = await load();
      const prompts = reference.prompts.slice(0, 3);
      const targets = prompts.map((p: any) => targetOf(p.explanations[0].target));
      const batch = await e.attribute({ ids: prompts.map((p: any) => p.tokens), targets, mode: 'attnlrp' });
      for (const [i, p] of prompts.entries()) {
        const [single] = await e.attribute({ ids: [p.tokens], targets: [targets[i]!], mode: 'attnlrp' });
        assert.ok(relativeError(batch[i]!.tokenRelevance, single!.tokenRelevance) < 1e-5);
        assert.ok(relativeError(batch[i]!.headRelevance.flat(), single!.headRelevance.flat()) < 1e-5);
      }
    });
  });
}

function targetOf(t: { kind: 'logit' | 'logit_diff'; position: number; token: number; minus?: number }): Target {
  return { kind: t.kind, position: t.position, token: t.token, ...(t.minus !== undefined ? { foil: t.minus } : {}) };
}

/**
 * What float32 cannot resolve: a few ulps (8·2⁻²³) of the logits the explained quantity is made
 * of. A logit difference of two nearly equal logits (random-tiny-gemma2 prompt 2: 0.0069 from
 * logits near 3) is itself known only to ~1e-7 absolute in float32, and so is every sum that
 * conserves it; 1e-4 relative to 0.0069 asks for more than float32 holds. For a plain logit the
 * floor is ~1e-6·|logit|, far below the relative tolerance.
 */
function float32Floor(prompt: any, target: { token: number; minus?: number }): number {
  const logits = prompt.forward.logits_last as number[];
  const magnitude = Math.abs(logits[target.token]!) + (target.minus !== undefined ? Math.abs(logits[target.minus]!) : 0);
  return 8 * 2 ** -23 * magnitude;
}

function compare(ours: Attribution, expected: any, targetValue: number, mode: Composite, where: string, floor: number): void {
  const check = (field: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
    const diff = maxAbsDiff(a, b);
    const scale = Math.max(...Array.from(b, Math.abs));
    const err = relativeError(a, b);
    assert.ok(err < RELATIVE || diff <= RELATIVE * scale + floor, `${where} ${mode} ${field}: relative error ${err.toExponential(2)} (|diff| ${diff.toExponential(2)}, float32 floor ${floor.toExponential(2)})`);
  };
  assert.ok(Math.abs(ours.targetValue - targetValue) < LOGITS_ABS, `${where}: target value ${ours.targetValue} vs ${targetValue}`);
  check('token_relevance', ours.tokenRelevance, expected.token_relevance);
  if (expected.position_relevance) check('position_relevance', ours.positionRelevance!, expected.position_relevance);
  else assert.equal(ours.positionRelevance, null);
  check('head_relevance', ours.headRelevance.flat(), expected.head_relevance.flat());
  if (expected.head_relevance_probs) check('head_relevance_probs', ours.headRelevanceProbs!.flat(), expected.head_relevance_probs.flat());
  else assert.equal(ours.headRelevanceProbs, null);
  check('resid_pre', ours.residPre, expected.resid_pre);
  check('resid_mid', ours.residMid, expected.resid_mid);
  check('resid_final', [ours.residFinal], [expected.resid_final]);
  // Bias sums are scalars: relative to the reference value (the hint's max |diff| / max |reference|),
  // or to the target value where that is larger (they are exactly 0 for Llama). A logit difference
  // can be near 0 (random-tiny-neox prompt 4: 6.6e-4) while its bias sums are O(1).
  for (const [field, value, reference] of [['bias_linear', ours.biasRelevance.linear, expected.sums.bias_linear], ['bias_layernorm', ours.biasRelevance.layernorm, expected.sums.bias_layernorm]] as const) {
    const scale = Math.max(Math.abs(targetValue), Math.abs(reference), 1e-6);
    assert.ok(Math.abs(value - reference) <= RELATIVE * scale + floor, `${where} ${field}: ${value} vs ${reference}`);
  }
  for (const top of expected.mlp_top50) {
    const layer = ours.mlpRelevance![top.layer]!;
    check(`mlp_top50[${top.layer}]`, top.index.map((i: number) => layer[i]!), top.value);
    check(`mlp sum[${top.layer}]`, [layer.reduce((a, b) => a + b, 0)], [top.sum]);
  }
  for (const sample of expected.weight_samples) {
    const relevance = ours.weightRelevance[sample.param]!;
    const cols = sample.shape[1];
    const values = sample.entries.map((entry: any) => relevance[entry.index[0] * cols + entry.index[1]]!);
    // All-zero samples (CP-LRP sends nothing into q/k) must come out exactly 0.
    const scaleW = Math.max(...sample.entries.map((entry: any) => Math.abs(entry.value)), 1e-12);
    const err = Math.max(...sample.entries.map((entry: any, i: number) => Math.abs(values[i] - entry.value))) / scaleW;
    assert.ok(err < RELATIVE, `${where} ${mode} weight ${sample.param}: relative error ${err.toExponential(2)}`);
    const total = relevance.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - sample.sum) / Math.max(Math.abs(sample.sum), scaleW) < RELATIVE, `${where} weight sum ${sample.param}: ${total} vs ${sample.sum}`);
  }
}
