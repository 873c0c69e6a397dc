/**
 * LRP rules as data. A composite is one table entry: for each op kind that LRP treats
 * differently from the plain gradient, which rule applies, and what the composite makes of the
 * attention probabilities. The tape's ops and the graph builder read their entry; no code
 * outside this file decides a rule by the composite's name. Linear maps follow `linear` (ε = 0,
 * the ordinary gradient, unless a composite says otherwise). Every op not listed here (adds, constant scalings, RoPE, repeat_kv) keeps its ordinary gradient, which in
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
  /**
   * The rule of every linear map (q/k/v/o, MLP up/gate/down) per layer group: the decoder
   * blocks split into thirds by index (`low`/`mid`/`high`, as PXP's per-group configs; see
   * `layerGroup`) and the unembedding (`head`). ε = 0 is the ordinary gradient and compiles to
   * exactly the graph without the rule (no op added). See `LinearRule` for the equations.
   */
  readonly linear: LinearRules;
}

/**
 * One linear layer's LRP rule in VJP (gradient×input) form, z = xW + b, W [in, out]. All three
 * are the generic rule of Montavon et al. 2019 ("Layer-wise relevance propagation: an
 * overview", Eq. 2.4 ε, 2.5 γ, and z⁺ as γ → ∞), used per layer group by PXP (Hatefi et al.
 * 2024, §3, composites of zennit):
 *   R_i = Σ_j x_i w^ρ_ij / z^ρ_j · R_j,  R_j = z_j g̃_z_j,
 * i.e. g̃_x = W_ρᵀ (g̃_z ⊙ z / z_ρ) with
 *   ε:  W_ρ = W, z_ρ = z + ε·sign(z) (sign(0) = 1);
 *   γ:  W_ρ = W + γW⁺, b_ρ = b + γb⁺, z_ρ = xW_ρ + b_ρ, stabilised by RULE_STABILISER·sign(z_ρ);
 *   z⁺: W_ρ = W⁺, b_ρ = b⁺ (γ → ∞ up to the scale that cancels in z/z_ρ), stabilised likewise.
 * Weight relevance is R_W = W ⊙ g̃_W with g̃_W = (W_ρ/W) ⊙ xᵀ(g̃_z ⊙ z/z_ρ), i.e. the share
 * x_i w^ρ_ij/z^ρ_j · R_j of the same redistribution (W_ρ/W is 1 for ε, 1 + γ[W > 0] for γ and
 * [W > 0] for z⁺, never a division): Σ_j R_W_ij = Σ_t R_x_ti, and the bias keeps
 * b_ρ ⊙ (g̃_z ⊙ z/z_ρ).
 */
export type LinearRule =
  | { readonly kind: 'epsilon'; readonly epsilon: number }
  | { readonly kind: 'gamma'; readonly gamma: number }
  | { readonly kind: 'zplus' }
  | AlphaBetaRule;

/**
 * zennit's `AlphaBeta(alpha, beta)` (Bach et al. 2015; zennit `rules.py`), the rule PXP's
 * composites take for "AlphaBeta" (α = 2, β = 1); α = 1, β = 0 is zennit's `ZPlus`, which PXP
 * takes for "ZPlus" (zennit: "the same as AlphaBeta(alpha=1, beta=0)"). Positive and negative
 * contributions are split by the signs of input *and* weight (x⁺ = max(x, 0), x⁻ = min(x, 0),
 * likewise W⁺, W⁻, b⁺, b⁻):
 *   z_p = x⁺W⁺ + x⁻W⁻ + b⁺,  z_n = x⁺W⁻ + x⁻W⁺ + b⁻,
 *   R_i = α Σ_j (x⁺_i w⁺_ij + x⁻_i w⁻_ij) R_j / z_p_j − β Σ_j (x⁺_i w⁻_ij + x⁻_i w⁺_ij) R_j / z_n_j,
 * each denominator stabilised by RULE_STABILISER·sign (zennit `stabilize`). In VJP form, with
 * s_p = g̃_z ⊙ z / z_p and s_n = g̃_z ⊙ z / z_n (R_j = z_j g̃_z_j):
 *   g̃_x = where(x > 0, α s_p W⁺ᵀ − β s_n W⁻ᵀ, α s_p W⁻ᵀ − β s_n W⁺ᵀ)
 * (at x = 0 both give R_i = 0). Weight relevance W ⊙ g̃_W with
 * g̃_W = [W > 0] ⊙ (α x⁺ᵀs_p − β x⁻ᵀs_n) + [W < 0] ⊙ (α x⁻ᵀs_p − β x⁺ᵀs_n), bias relevance
 * α b⁺ s_p − β b⁻ s_n: the same shares, so Σ_i R_i + R_b = α R − β R = R up to the stabiliser.
 * zennit requires α − β = 1 and α, β ≥ 0; so does `checkLinearRule`.
 */
export interface AlphaBetaRule {
  readonly kind: 'alpha-beta';
  readonly alpha: number;
  readonly beta: number;
}

/** A clear error for a rule zennit would refuse (and for non-finite parameters). */
export function checkLinearRule(rule: LinearRule): void {
  const bad = (what: string) => {
    throw new RangeError(`linear rule ${JSON.stringify(rule)}: ${what}`);
  };
  if (rule.kind === 'epsilon' && !(Number.isFinite(rule.epsilon) && rule.epsilon >= 0)) bad('ε must be a finite number ≥ 0');
  if (rule.kind === 'gamma' && !(Number.isFinite(rule.gamma) && rule.gamma >= 0)) bad('γ must be a finite number ≥ 0');
  if (rule.kind === 'alpha-beta') {
    if (!(Number.isFinite(rule.alpha) && Number.isFinite(rule.beta) && rule.alpha >= 0 && rule.beta >= 0)) bad('α and β must be finite numbers ≥ 0');
    if (Math.abs(rule.alpha - rule.beta - 1) > 1e-12) bad('α − β must be 1 (conservation; zennit refuses other values)');
  }
}

export interface LinearRules {
  readonly low: LinearRule;
  readonly mid: LinearRule;
  readonly high: LinearRule;
  /** The unembedding (lm_head). */
  readonly head: LinearRule;
}

export type LayerGroup = keyof LinearRules;

/** ε = 0 everywhere: the ordinary gradient, which is the ε-rule with ε → 0 (methods.md A.0). */
export const GRADIENT_LINEAR: LinearRules = {
  low: { kind: 'epsilon', epsilon: 0 },
  mid: { kind: 'epsilon', epsilon: 0 },
  high: { kind: 'epsilon', epsilon: 0 },
  head: { kind: 'epsilon', epsilon: 0 },
};

/** Blocks split into thirds by index: l < L/3 low, l < 2L/3 mid, else high. */
export function layerGroup(layer: number, nLayers: number): Exclude<LayerGroup, 'head'> {
  const third = Math.floor((3 * layer) / nLayers);
  return third <= 0 ? 'low' : third === 1 ? 'mid' : 'high';
}

/** Whether a linear rule is the ordinary gradient (and so adds no op). */
export function isPlainGradient(rule: LinearRule): boolean {
  return rule.kind === 'epsilon' && rule.epsilon === 0;
}

/** zennit's `stabilize` default (used by PXP's γ/z⁺ rules): z_ρ + 1e-6·sign(z_ρ), sign(0) = 1. */
export const RULE_STABILISER = 1e-6;

const ATTNLRP: RuleTable = {
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
  linear: GRADIENT_LINEAR,
};

const GRADIENT: RuleTable = {
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
  linear: GRADIENT_LINEAR,
};

/** Each composite, written as the rules in which it differs from AttnLRP or the plain gradient. */
export const COMPOSITE_RULES: Readonly<Record<Composite, RuleTable>> = {
  attnlrp: ATTNLRP,
  'cp-lrp': {
    ...ATTNLRP,
    // The attention probabilities are constants: no relevance enters the softmax, V takes all.
    qk: [0, 0],
    av: [0, 1],
    attentionProbs: 'detached',
    gatedProduct: [0, 1],
  },
  gradient: GRADIENT,
  // The LN-rule alone (Ali et al. 2022, "XAI for Transformers", §3.2): the normalisations'
  // std/rsqrt treated as constant (Prop. 3.4 here), every other op its plain gradient.
  'ln-gradient': { ...GRADIENT, layerNorm: 'std-detached', rmsNorm: 'rsqrt-detached', qkNorm: 'rsqrt-detached' },
  // PXP-style (Hatefi et al. 2024): AttnLRP's non-linear rules, and per layer group a linear
  // rule as in PXP's LRP composites (zennit's EpsilonGamma family: γ near the input, ε near the
  // output): γ = 0.25 in the low and mid thirds of the blocks (favours positive contributions),
  // ε = 1e-6 in the high third and at the unembedding (the explained logit stays conserved).
  'pxp-gamma': {
    ...ATTNLRP,
    linear: {
      low: { kind: 'gamma', gamma: 0.25 },
      mid: { kind: 'gamma', gamma: 0.25 },
      high: { kind: 'epsilon', epsilon: 1e-6 },
      head: { kind: 'epsilon', epsilon: 1e-6 },
    },
  },
};

/** Whether a composite reports relevance at the attention probabilities (and scores). */
export function reportsProbs(composite: Composite): boolean {
  return COMPOSITE_RULES[composite].attentionProbs === 'relevance';
}

/** The identity rule's stabiliser (lxt `identity_rule_implicit`); not sign-aware, safe as f(0) = 0. */
export const IDENTITY_RULE_EPSILON = 1e-10;
