/** JSON shapes the CLI prints; field names match `reference/<model>/lrp_reference.json`. */
import type { Attribution, Composite, Target } from '../engine/api';
import type { Engine } from '../engine/engine';

export function topK(logits: Float32Array, k: number, engine: Engine): { id: number; token: string | null; logit: number }[] {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
  return order.slice(0, k).map((id) => ({ id, token: engine.tokenizer ? engine.tokenizer.tokenString(id) : null, logit: logits[id]! }));
}

const sum = (xs: ArrayLike<number>): number => Array.from(xs).reduce((a, b) => a + b, 0);

export function attributionJson(
  engine: Engine,
  prompt: { ids: number[]; tokens: string[] | null; text: string | null },
  target: Target,
  mode: Composite,
  a: Attribution,
) {
  const tokenString = (id: number | undefined) => (id === undefined || !engine.tokenizer ? null : engine.tokenizer.tokenString(id));
  return {
    mode,
    ids: prompt.ids,
    tokens: prompt.tokens,
    target: {
      kind: target.kind,
      position: target.position,
      token: target.token,
      token_string: tokenString(target.token),
      ...(target.foil !== undefined ? { minus: target.foil, minus_string: tokenString(target.foil) } : {}),
    },
    target_value: a.targetValue,
    token_relevance: Array.from(a.tokenRelevance),
    position_relevance: a.positionRelevance ? Array.from(a.positionRelevance) : null,
    head_relevance: a.headRelevance,
    head_relevance_probs: a.headRelevanceProbs,
    mlp_relevance: a.mlpRelevance?.map((layer) => Array.from(layer)) ?? null,
    resid_pre: a.residPre,
    resid_mid: a.residMid,
    resid_final: a.residFinal,
    bias_relevance: { linear: a.biasRelevance.linear, layernorm: a.biasRelevance.layernorm },
    sums: {
      token: sum(a.tokenRelevance),
      position: a.positionRelevance ? sum(a.positionRelevance) : 0,
      bias_linear: a.biasRelevance.linear,
      bias_layernorm: a.biasRelevance.layernorm,
    },
    weight_relevance: Object.fromEntries(Object.entries(a.weightRelevance).map(([k, v]) => [k, Array.from(v)])),
  };
}
