/**
 * Conservation, the check that no op is missing a rule (methods.md A.3, G.3): on a bias-free
 * Llama, Qwen3 (q/k norms) and Gemma 2 (four (1+w) norms, √d scale, soft-caps, sliding window),
 * CP-LRP conserves the target logit exactly; AttnLRP loses exactly the softmax rule's leak;
 * GPT-2/OPT/GPT-NeoX (parallel and sequential) balance once biases and positions are counted;
 * nothing after the explained position gets relevance.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { missingShared, sharedModel, tempDir, EMBEDDED_MODEL } from '../helpers';

const sum = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0);
const PROMPTS = [
  [5, 17, 300, 42, 9, 77, 128, 3],
  [400, 2, 2, 19, 250, 33, 61, 90, 11, 7, 501, 64],
];

describe('conservation on the bias-free random Llama', { skip: missingShared('models/random-tiny-llama/model.safetensors') }, () => {
  let engine: Engine;
  after(() => engine?.dispose());

  it('CP-LRP: Σ token relevance equals the target logit within 1e-5 relative, for logits and logit differences', async () => {
    engine = await Engine.load(sharedModel('random-tiny-llama'));
    for (const ids of PROMPTS) {
      for (const target of [
        { kind: 'logit' as const, position: ids.length - 1, token: 10 },
        { kind: 'logit_diff' as const, position: ids.length - 1, token: 10, foil: 20 },
      ]) {
        const [a] = await engine.attribute({ ids: [ids], targets: [target], mode: 'cp-lrp' });
        const total = sum(a!.tokenRelevance);
        assert.ok(Math.abs(total - a!.targetValue) <= 1e-5 * Math.abs(a!.targetValue), `${total} vs ${a!.targetValue}`);
        // Every residual-stream cut carries the whole logit too.
        for (const r of [...a!.residPre, ...a!.residMid, a!.residFinal]) assert.ok(Math.abs(r - a!.targetValue) <= 1e-5 * Math.abs(a!.targetValue));
      }
    }
  });

  it('AttnLRP: the gap between the logit and Σ token relevance is the softmax leak Σ(R_probs − R_scores)', async () => {
    engine ??= await Engine.load(sharedModel('random-tiny-llama'));
    for (const ids of PROMPTS) {
      const [a] = await engine.attribute({ ids: [ids], targets: [{ kind: 'logit', position: ids.length - 1, token: 10 }], mode: 'attnlrp' });
      const leak = sum(a!.headRelevanceProbs!.flat()) - sum(a!.headRelevanceScores!.flat());
      const gap = a!.targetValue - sum(a!.tokenRelevance);
      assert.ok(Math.abs(leak) > 1e-4, 'the softmax rule leaks on this prompt');
      assert.ok(Math.abs(gap - leak) <= 1e-5 * Math.abs(a!.targetValue), `gap ${gap} vs leak ${leak}`);
    }
  });

  it('relevance after the explained position is exactly 0, and equals explaining the prefix', async () => {
    engine ??= await Engine.load(sharedModel('random-tiny-llama'));
    const ids = PROMPTS[1]!;
    const p = 5;
    for (const mode of ['attnlrp', 'cp-lrp', 'gradient'] as const) {
      const [full] = await engine.attribute({ ids: [ids], targets: [{ kind: 'logit', position: p, token: 10 }], mode });
      for (let t = p + 1; t < ids.length; t++) assert.equal(full!.tokenRelevance[t], 0);
      const [prefix] = await engine.attribute({ ids: [ids.slice(0, p + 1)], targets: [{ kind: 'logit', position: p, token: 10 }], mode });
      for (let t = 0; t <= p; t++) assert.ok(Math.abs(full!.tokenRelevance[t]! - prefix!.tokenRelevance[t]!) < 1e-5);
    }
  });
});

/** A copy of a shared fixture with some config fields changed (weights copied as they are). */
function variantOf(model: string, changes: Record<string, unknown>): string {
  const dir = tempDir(`${model}-variant`);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = JSON.parse(fs.readFileSync(path.join(sharedModel(model), 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...changes }));
  fs.copyFileSync(path.join(sharedModel(model), 'model.safetensors'), path.join(dir, 'model.safetensors'));
  return dir;
}

const within = (a: number, b: number, rel: number, what: string) => assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

// Bias-free families: every relevance budget is the target itself.
for (const [model, label] of [
  ['random-tiny-qwen3', 'Qwen3 (q/k norms)'],
  ['random-tiny-gemma2', 'Gemma 2 (soft-caps, window 8 on layer 0)'],
] as const) {
  describe(`conservation on the bias-free ${label}`, { skip: missingShared(`models/${model}/model.safetensors`) }, () => {
    let engine: Engine;
    after(() => engine?.dispose());

    it('CP-LRP: Σ token relevance and every residual cut equal the target within 1e-5 relative', async () => {
      engine ??= await Engine.load(sharedModel(model));
      for (const ids of PROMPTS) {
        for (const target of [
          { kind: 'logit' as const, position: ids.length - 1, token: 10 },
          { kind: 'logit_diff' as const, position: ids.length - 1, token: 10, foil: 20 },
        ]) {
          const [a] = await engine.attribute({ ids: [ids], targets: [target], mode: 'cp-lrp' });
          within(sum(a!.tokenRelevance), a!.targetValue, 1e-5, `${target.kind} Σ tokens`);
          for (const r of [...a!.residPre, ...a!.residMid, a!.residFinal]) within(r, a!.targetValue, 1e-5, `${target.kind} residual cut`);
          assert.equal(a!.biasRelevance.linear, 0);
        }
      }
    });

    it('AttnLRP: the gap between the logit and Σ token relevance is the softmax leak Σ(R_probs − R_scores)', async () => {
      engine ??= await Engine.load(sharedModel(model));
      for (const ids of PROMPTS) {
        const [a] = await engine.attribute({ ids: [ids], targets: [{ kind: 'logit', position: ids.length - 1, token: 10 }], mode: 'attnlrp' });
        // The score soft-cap's identity rule passes relevance unchanged (up to its 1e-10 stabiliser),
        // so R_scores read after the cap is the softmax input's relevance.
        const leak = sum(a!.headRelevanceProbs!.flat()) - sum(a!.headRelevanceScores!.flat());
        const gap = a!.targetValue - sum(a!.tokenRelevance);
        assert.ok(Math.abs(leak) > 1e-4, 'the softmax rule leaks on this prompt');
        within(gap, leak, 1e-5, 'gap vs leak');
      }
    });
  });
}

describe('bias bookkeeping on GPT-NeoX, parallel and sequential residual', { skip: missingShared('models/random-tiny-neox/model.safetensors') }, () => {
  for (const parallel of [true, false]) {
    it(`${parallel ? 'parallel' : 'sequential'}: CP-LRP token + linear biases + LayerNorm β = target within 1e-5 relative`, async () => {
      const folder = parallel ? sharedModel('random-tiny-neox') : variantOf('random-tiny-neox', { use_parallel_residual: false, rotary_pct: 0.5 });
      const engine = await Engine.load(folder);
      try {
        for (const ids of PROMPTS) {
          for (const target of [
            { kind: 'logit' as const, position: ids.length - 1, token: 10 },
            { kind: 'logit_diff' as const, position: ids.length - 1, token: 10, foil: 20 },
          ]) {
            const [a] = await engine.attribute({ ids: [ids], targets: [target], mode: 'cp-lrp' });
            assert.equal(a!.positionRelevance, null);
            const total = sum(a!.tokenRelevance) + a!.biasRelevance.linear + a!.biasRelevance.layernorm;
            within(total, a!.targetValue, 1e-5, `${target.kind} budget`);
            assert.ok(Math.abs(a!.biasRelevance.linear) > 1e-3, 'the biases carry relevance');
            // resid_pre[0] is the token relevance; with a parallel residual resid_mid leaves out the
            // MLP's share (oracle convention), sequentially it is the budget minus later biases too.
            within(a!.residPre[0]!, sum(a!.tokenRelevance), 1e-5, 'resid_pre[0]');
          }
        }
      } finally {
        await engine.dispose();
      }
    });
  }
});

describe('bias bookkeeping on GPT-2 (the embedded model)', () => {
  it('CP-LRP: token + position + linear biases + LayerNorm β = target, within 1e-4 relative', async () => {
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const ids = [770, 11, 1038, 468, 1012, 565, 1030, 1034, 1031, 464, 461, 909, 13, 1038, 669, 464, 591, 457, 887, 464];
      for (const kind of ['logit', 'contrastive'] as const) {
        const [a] = await engine.attribute({ ids: [ids], targets: [{ kind, position: ids.length - 1, token: 1012 }], mode: 'cp-lrp' });
        const total = sum(a!.tokenRelevance) + sum(a!.positionRelevance!) + a!.biasRelevance.linear + a!.biasRelevance.layernorm;
        assert.ok(Math.abs(total - a!.targetValue) <= 1e-4 * Math.max(1, Math.abs(a!.targetValue)), `${kind}: ${total} vs ${a!.targetValue}`);
      }
    } finally {
      await engine.dispose();
    }
  });
});

describe('sequence attribution', () => {
  it('explaining every position in one backward pass equals the sum of one pass per position', async () => {
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const ids = [770, 11, 1038, 468, 1012, 565, 1030, 1034, 1031, 464, 461, 909, 13, 1038, 669, 464];
      const next = ids.slice(1);
      const weights = ['transformer.h.1.mlp.c_fc.weight', 'transformer.h.0.attn.c_attn.weight'];
      for (const contrastive of [false, true]) {
        const [sequence] = await engine.attributeSequence({ ids: [ids], targets: [next], mode: 'attnlrp', weights, contrastive });
        const rows = await engine.attribute({
          ids: next.map(() => ids),
          targets: next.map((token, position) => ({ kind: contrastive ? ('contrastive' as const) : ('logit' as const), position, token })),
          mode: 'attnlrp',
          weights,
        });
        const total = (pick: (a: (typeof rows)[number]) => ArrayLike<number>) => {
          const out = new Float64Array(pick(rows[0]!).length);
          for (const r of rows) Array.from(pick(r)).forEach((v, i) => (out[i]! += v));
          return out;
        };
        assert.ok(Math.abs(sequence!.targetValue - sum(rows.map((r) => r.targetValue))) < 1e-3);
        for (const name of weights) {
          const expected = total((r) => r.weightRelevance[name]!);
          const scale = Math.max(...expected.map(Math.abs));
          const err = Math.max(...Array.from(sequence!.weightRelevance[name]!, (v, i) => Math.abs(v - expected[i]!)));
          assert.ok(err <= 1e-4 * scale, `${name}: ${err} of ${scale}`);
        }
        const tokens = total((r) => r.tokenRelevance);
        sequence!.tokenRelevance.forEach((v, i) => assert.ok(Math.abs(v - tokens[i]!) < 1e-3));
      }
    } finally {
      await engine.dispose();
    }
  });
});
