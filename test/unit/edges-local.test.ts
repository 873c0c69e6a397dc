/**
 * Edges from one ungated pass (Engine.edges, build.ts `localEdges`) against edges the way they
 * are defined (Engine.edgesGated: one gated forward and backward row per downstream node).
 * Same edges in the same order, same inflows and explained values, to 1e-5 relative, on GPT-2
 * (fused c_attn), Llama and Qwen3 (GQA, RoPE, RMSNorm; Qwen3 q/k norms) and OPT, for every
 * composite edges accept, with two prompts of different lengths in one call.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import type { Composite, EdgeAttribution } from '../../src/engine/api';
import { EMBEDDED_MODEL, missingShared, relativeError, sharedModel } from '../helpers';

const MODELS = ['tiny-ioi-gpt2', 'random-tiny-gpt2', 'random-tiny-llama', 'random-tiny-qwen3', 'random-tiny-opt'] as const;
const MODES: readonly Composite[] = ['attnlrp', 'cp-lrp', 'gradient'];

function compare(local: EdgeAttribution, gated: EdgeAttribution, what: string): void {
  assert.equal(local.edges.length, gated.edges.length, `${what}: edge count`);
  local.edges.forEach((e, i) => {
    const g = gated.edges[i]!;
    assert.equal(`${e.source}->${e.target}`, `${g.source}->${g.target}`, `${what}: edge ${i} order`);
  });
  const err = relativeError(
    local.edges.map((e) => e.relevance),
    gated.edges.map((e) => e.relevance),
  );
  assert.ok(err <= 1e-5, `${what}: edges differ by ${err.toExponential(2)} relative`);
  assert.deepEqual(Object.keys(local.inflow), Object.keys(gated.inflow));
  const inflowErr = relativeError(Object.values(local.inflow), Object.values(gated.inflow));
  assert.ok(inflowErr <= 1e-5, `${what}: inflows differ by ${inflowErr.toExponential(2)} relative`);
  assert.ok(Math.abs(local.targetValue - gated.targetValue) <= 1e-5 * Math.max(1, Math.abs(gated.targetValue)), `${what}: target value`);
  // Not a vacuous comparison: the edges carry relevance.
  assert.ok(gated.edges.some((e) => Math.abs(e.relevance) > 1e-6), `${what}: all edges zero`);
}

for (const model of MODELS) {
  const folder = model === 'tiny-ioi-gpt2' ? EMBEDDED_MODEL : sharedModel(model);
  const skip = model === 'tiny-ioi-gpt2' ? false : missingShared(`models/${model}/model.safetensors`);
  describe(`edges from one pass equal the gated rows on ${model}`, { skip }, () => {
    for (const mode of MODES) {
      it(mode, async () => {
        const engine = await Engine.load(folder);
        try {
          const a = model === 'tiny-ioi-gpt2' ? [770, 11, 1038, 468, 1012, 565, 1030, 1034, 1031, 464, 461, 909, 13, 1038, 669, 464] : [5, 17, 30, 42, 9, 77, 28, 3];
          const b = a.slice(0, 5).reverse();
          const prompts = [
            { ids: a, target: { kind: 'logit_diff' as const, position: a.length - 1, token: 12, foil: 40 } },
            { ids: b, target: { kind: 'logit' as const, position: 2, token: 7 } },
          ];
          const local = await engine.edges(prompts, mode);
          const gated = await engine.edgesGated(prompts, mode);
          assert.equal(local.length, 2);
          local.forEach((r, p) => compare(r, gated[p]!, `${model} ${mode} prompt ${p}`));
        } finally {
          await engine.dispose();
        }
      });
    }
  });
}
