/**
 * LRP rules as data. A composite is one table entry: for each op kind that LRP treats
 * differently from the plain gradient, which rule applies, and what the composite makes of the
 * attention probabilities. The tape's ops and the graph builder read their entry; no code
 * outside this file decides a rule by the composite's name. Every op not listed here (linear
 * maps, adds, constant scalings, RoPE, repeat_kv) keeps its ordinary gradient, which in
 * gradient×input form equals the ε-rule with ε → 0 (methods.md A.0).
 *
 * Equations cite Achtibat et al., "AttnLRP", ICML 2024; conventions for the ops the paper does
 * not treat (soft-capping, q/k norms) are the shared oracle's (reference/oracle/README.md).
 */
import type { Composite } from './api';

export interface RuleTable {
  /** LayerNorm: std treated as constant (Prop. 3.4), or the full gradient. */
  readonly layerNorm: 'std-detached' | 'gradient';
  /** RMSNorm: rsqrt treated as constant, which makes the layer an identity rule (Prop. 3.4, Eq. 9). */
  readonly rmsNorm: 'rsqrt-detached' | 'gradient';
  /**
   * Qwen3's per-head q_norm/k_norm (RMSNorm over head_dim before RoPE): the same rsqrt-detached
   * rule as any RMSNorm (Prop. 3.4), so relevance passes each head unchanged (oracle convention).
   */
  readonly qkNorm: 'rsqrt-detached' | 'gradient';
  /**
   * Element-wise activations. `identity`: g̃x = g̃y · f(x)/(x + 1e-10), so R_x = R_y (Eq. 9).
   * ReLU's identity rule is its ordinary gradient, which the oracle uses (no stabiliser).
   */
  readonly gelu: 'identity' | 'gradient';
  readonly silu: 'identity' | 'gradient';
  /** ReLU (OPT): its ordinary gradient is the identity rule with ε = 0 (x·relu'(x) = relu(x)). */
  readonly relu: 'gradient';
  /**
   * Gemma 2's tanh soft-capping cap·tanh(x/cap) of the attention scores and the logits: an
   * element-wise non-linearity, so the identity rule of Eq. 9, g̃x = g̃y · y/(x + 1e-10)
   * (oracle convention; the explained value is the capped logit).
   */
  readonly softcap: 'identity' | 'gradient';
  /** Gradient factors on the two inputs of Q·Kᵀ (uniform rule, Prop. 3.3: ½ each). */
  readonly qk: readonly [q: number, k: number];
  /** Factors at O = A·V: on the attention probabilities and on V (½ each; CP-LRP: 0 and 1). */
  readonly av: readonly [probs: number, v: number];
  /**
   * `relevance`: the attention probabilities carry relevance (AttnLRP's softmax rule is the
   * ordinary gradient, Prop. 3.1), and head relevance at the probabilities is reported.
   * `detached`: CP-LRP treats them as constants (Ali et al. 2022), so nothing is read there.
   */
  readonly attentionProbs: 'relevance' | 'detached';
  /**
   * Gradient factors on act(gate) and up in a gated MLP (SwiGLU/GeGLU): the uniform rule gives
   * ½ to each factor (Eq. 7); CP-LRP detaches the gate, so up takes all (LXT cp_gated_mlp_forward).
   */
  readonly gatedProduct: readonly [gate: number, up: number];
}

export const COMPOSITE_RULES: Readonly<Record<Composite, RuleTable>> = {
  attnlrp: {
    layerNorm: 'std-detached',
    rmsNorm: 'rsqrt-detached',
    qkNorm: 'rsqrt-detached',
    gelu: 'identity',
    silu: 'identity',
    relu: 'gradient',
    softcap: 'identity',
    qk: [0.5, 0.5],
    av: [0.5, 0.5],
    attentionProbs: 'relevance',
    gatedProduct: [0.5, 0.5],
  },
  'cp-lrp': {
    layerNorm: 'std-detached',
    rmsNorm: 'rsqrt-detached',
    qkNorm: 'rsqrt-detached',
    gelu: 'identity',
    silu: 'identity',
    relu: 'gradient',
    softcap: 'identity',
    // The attention probabilities are constants: no relevance enters the softmax, V takes all.
    qk: [0, 0],
    av: [0, 1],
    attentionProbs: 'detached',
    gatedProduct: [0, 1],
  },
  gradient: {
    layerNorm: 'gradient',
    rmsNorm: 'gradient',
    qkNorm: 'gradient',
    gelu: 'gradient',
    silu: 'gradient',
    relu: 'gradient',
    softcap: 'gradient',
    qk: [1, 1],
    av: [1, 1],
    attentionProbs: 'relevance',
    gatedProduct: [1, 1],
  },
  // The LN-rule alone (Ali et al. 2022, "XAI for Transformers", §3.2): the normalisations'
  // std/rsqrt treated as constant (Prop. 3.4 here), every other op its plain gradient.
  'ln-gradient': {
    layerNorm: 'std-detached',
    rmsNorm: 'rsqrt-detached',
    qkNorm: 'rsqrt-detached',
    gelu: 'gradient',
    silu: 'gradient',
    relu: 'gradient',
    softcap: 'gradient',
    qk: [1, 1],
    av: [1, 1],
    attentionProbs: 'relevance',
    gatedProduct: [1, 1],
  },
};

/** Whether a composite reports relevance at the attention probabilities (and scores). */
export function reportsProbs(composite: Composite): boolean {
  return COMPOSITE_RULES[composite].attentionProbs === 'relevance';
}

/** The identity rule's stabiliser (lxt `identity_rule_implicit`); not sign-aware, safe as f(0) = 0. */
export const IDENTITY_RULE_EPSILON = 1e-10;
