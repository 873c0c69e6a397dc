/**
 * LRP rules as data. A composite is one table: for each op kind that LRP treats differently
 * from the plain gradient, which rule applies. The tape's ops read their entry; every op not
 * listed here (linear maps, adds, constant scalings, RoPE, repeat_kv) keeps its ordinary
 * gradient, which in gradient×input form equals the ε-rule with ε → 0 (methods.md A.0).
 *
 * Equations cite Achtibat et al., "AttnLRP", ICML 2024.
 */
import type { Composite } from './api';

export interface RuleTable {
  /** LayerNorm: std treated as constant (Prop. 3.4), or the full gradient. */
  readonly layerNorm: 'std-detached' | 'gradient';
  /** RMSNorm: rsqrt treated as constant, which makes the layer an identity rule (Prop. 3.4, Eq. 9). */
  readonly rmsNorm: 'rsqrt-detached' | 'gradient';
  /**
   * Element-wise activations. `identity`: g̃x = g̃y · f(x)/(x + 1e-10), so R_x = R_y (Eq. 9).
   * ReLU's identity rule is its ordinary gradient, which the oracle uses (no stabiliser).
   */
  readonly gelu: 'identity' | 'gradient';
  readonly silu: 'identity' | 'gradient';
  /** Gradient factors on the two inputs of Q·Kᵀ (uniform rule, Prop. 3.3: ½ each). */
  readonly qk: readonly [q: number, k: number];
  /** Factors at O = A·V: on the attention probabilities and on V (½ each; CP-LRP: 0 and 1). */
  readonly av: readonly [probs: number, v: number];
  /** Gated MLP act(gate)·up: `uniform` gives ½ to each factor (Eq. 7); `gate-detached` gives all to up (CP-LRP). */
  readonly gatedProduct: 'uniform' | 'gate-detached' | 'gradient';
}

export const COMPOSITE_RULES: Readonly<Record<Composite, RuleTable>> = {
  attnlrp: {
    layerNorm: 'std-detached',
    rmsNorm: 'rsqrt-detached',
    gelu: 'identity',
    silu: 'identity',
    qk: [0.5, 0.5],
    av: [0.5, 0.5],
    gatedProduct: 'uniform',
  },
  'cp-lrp': {
    layerNorm: 'std-detached',
    rmsNorm: 'rsqrt-detached',
    gelu: 'identity',
    silu: 'identity',
    // The attention probabilities are constants: no relevance enters the softmax, V takes all.
    qk: [0, 0],
    av: [0, 1],
    gatedProduct: 'gate-detached',
  },
  gradient: {
    layerNorm: 'gradient',
    rmsNorm: 'gradient',
    gelu: 'gradient',
    silu: 'gradient',
    qk: [1, 1],
    av: [1, 1],
    gatedProduct: 'gradient',
  },
};

/** The identity rule's stabiliser (lxt `identity_rule_implicit`); not sign-aware, safe as f(0) = 0. */
export const IDENTITY_RULE_EPSILON = 1e-10;
