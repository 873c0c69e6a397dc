/**
 * PXP's attribution configuration (Hatefi et al. 2024; `pxp/composites.py` and
 * `configs/test-config.yaml` of erfanhatefi/Pruning-by-eXplaining-in-PyTorch) as a rule spec:
 * one linear-layer rule per layer group (low/mid/high thirds of the blocks and the unembedding,
 * PXP's `low/mid/high_level_hidden_layer_rule` and `fully_connected_layers_rule`) and a softmax
 * rule (PXP's `softmax_rule`). It maps onto the engine's rule table (src/engine/rules.ts): the
 * non-linear rules are AttnLRP's (PXP's ViT composite: LayerNorm ε with std detached, GELU
 * pass, Q·Kᵀ and A·V by the uniform ε-rule), the softmax rule picks AttnLRP's (PXP "Epsilon")
 * or CP-LRP's (PXP "CP": no relevance through the probabilities, A·V an ε-rule on V).
 *
 * Compact form (CLI `--rules`, bench tables), comma-separated `key=value`:
 *   low=RULE,mid=RULE,high=RULE,head=RULE,softmax=attnlrp|cp
 * with RULE one of
 *   epsilon[:E]      ε-rule, E default 1e-6 (zennit's Epsilon default; PXP "Epsilon")
 *   gamma[:G]        γ-rule W + γW⁺, G default 0.25 (zennit's default; PXP "Gamma", see below)
 *   zplus            zennit's ZPlus = α1β0: x⁺W⁺ + x⁻W⁻ (PXP "ZPlus")
 *   alpha-beta[:A:B] zennit's AlphaBeta, default 2:1 (PXP "AlphaBeta")
 *   zplus-w          z⁺ with W⁺ only (Montavon et al. 2019's z⁺ for inputs ≥ 0; not PXP's)
 *   gradient         ε = 0, the ordinary gradient
 * Keys left out take ε = 1e-6 and the AttnLRP softmax rule: PXP's `configs/test-config.yaml`.
 * A JSON object with the same keys is accepted too (values in the compact form or as
 * rules.ts `LinearRule` objects).
 *
 * Deviation: PXP's `get_rule_by_name('Gamma')` builds the rule but returns None (no `return`),
 * so PXP's code leaves "Gamma" layers without a rule; zennit's own `Gamma` is the generalised
 * one for signed inputs. Ours is Montavon's γ-rule (W + γW⁺ for every input sign), as
 * src/engine/rules.ts documents. PXP's two z⁺ softmax rules (`ZPlus_vbias_T/F`, z⁺ on the
 * linearised softmax Jacobian) are not offered: the engine has no per-query Jacobian op.
 */
import type { Composite } from '../../engine/api';
import { COMPOSITE_RULES, checkLinearRule, type LinearRule, type LinearRules, type RuleTable } from '../../engine/rules';
import { InputError } from '../../models/errors';

export type SoftmaxRule = 'attnlrp' | 'cp';

export interface PxpRuleSpec {
  readonly linear: LinearRules;
  readonly softmax: SoftmaxRule;
}

export const LINEAR_GROUPS = ['low', 'mid', 'high', 'head'] as const;

/** zennit's defaults: ε = 1e-6, γ = 0.25, α2β1. */
export const ZENNIT_EPSILON = 1e-6;

/** PXP's `configs/test-config.yaml`: ε everywhere, the AttnLRP ("Epsilon") softmax rule. */
export const PXP_DEFAULT_RULES: PxpRuleSpec = {
  linear: { low: { kind: 'epsilon', epsilon: ZENNIT_EPSILON }, mid: { kind: 'epsilon', epsilon: ZENNIT_EPSILON }, high: { kind: 'epsilon', epsilon: ZENNIT_EPSILON }, head: { kind: 'epsilon', epsilon: ZENNIT_EPSILON } },
  softmax: 'attnlrp',
};

/** The composite whose readouts and non-linear rules the spec uses. */
export function specComposite(spec: PxpRuleSpec): Composite {
  return spec.softmax === 'cp' ? 'cp-lrp' : 'attnlrp';
}

/** The engine rule table of a spec. */
export function specRuleTable(spec: PxpRuleSpec): RuleTable {
  return { ...COMPOSITE_RULES[specComposite(spec)], linear: spec.linear };
}

function parseNumber(text: string, what: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new InputError(`rule spec: ${what} "${text}" is not a number`);
  return v;
}

/** One linear rule from its compact form (see the module comment). */
export function parseLinearRule(text: string): LinearRule {
  const [name, ...args] = text.trim().split(':');
  const arity = (max: number) => {
    if (args.length > max) throw new InputError(`rule spec: "${text}" takes at most ${max} parameter${max === 1 ? '' : 's'}`);
  };
  let rule: LinearRule;
  switch (name) {
    case 'epsilon':
      arity(1);
      rule = { kind: 'epsilon', epsilon: args[0] !== undefined ? parseNumber(args[0], 'ε') : ZENNIT_EPSILON };
      break;
    case 'gamma':
      arity(1);
      rule = { kind: 'gamma', gamma: args[0] !== undefined ? parseNumber(args[0], 'γ') : 0.25 };
      break;
    case 'zplus':
      arity(0);
      rule = { kind: 'alpha-beta', alpha: 1, beta: 0 };
      break;
    case 'alpha-beta':
      if (args.length !== 0 && args.length !== 2) throw new InputError(`rule spec: "${text}": alpha-beta takes α:β (e.g. alpha-beta:2:1) or nothing`);
      rule = { kind: 'alpha-beta', alpha: args[0] !== undefined ? parseNumber(args[0], 'α') : 2, beta: args[1] !== undefined ? parseNumber(args[1], 'β') : 1 };
      break;
    case 'zplus-w':
      arity(0);
      rule = { kind: 'zplus' };
      break;
    case 'gradient':
      arity(0);
      rule = { kind: 'epsilon', epsilon: 0 };
      break;
    default:
      throw new InputError(`rule spec: unknown rule "${name}" (use epsilon[:E], gamma[:G], zplus, alpha-beta[:A:B], zplus-w, gradient)`);
  }
  try {
    checkLinearRule(rule);
  } catch (err) {
    throw new InputError(`rule spec: ${(err as Error).message}`);
  }
  return rule;
}

/** The compact form of one linear rule (inverse of `parseLinearRule`). */
export function formatLinearRule(rule: LinearRule): string {
  switch (rule.kind) {
    case 'epsilon':
      return rule.epsilon === 0 ? 'gradient' : rule.epsilon === ZENNIT_EPSILON ? 'epsilon' : `epsilon:${rule.epsilon}`;
    case 'gamma':
      return rule.gamma === 0.25 ? 'gamma' : `gamma:${rule.gamma}`;
    case 'zplus':
      return 'zplus-w';
    case 'alpha-beta':
      return rule.alpha === 1 && rule.beta === 0 ? 'zplus' : rule.alpha === 2 && rule.beta === 1 ? 'alpha-beta' : `alpha-beta:${rule.alpha}:${rule.beta}`;
  }
}

function linearFromJson(value: unknown, key: string): LinearRule {
  if (typeof value === 'string') return parseLinearRule(value);
  if (value && typeof value === 'object' && 'kind' in value) {
    const rule = value as LinearRule;
    if (!['epsilon', 'gamma', 'zplus', 'alpha-beta'].includes(rule.kind)) throw new InputError(`rule spec: ${key}: unknown kind "${String(rule.kind)}"`);
    try {
      checkLinearRule(rule);
    } catch (err) {
      throw new InputError(`rule spec: ${key}: ${(err as Error).message}`);
    }
    return rule;
  }
  throw new InputError(`rule spec: ${key} must be a rule string or a {kind, …} object`);
}

/** A rule spec from its compact form or JSON (see the module comment). */
export function parseRuleSpec(text: string): PxpRuleSpec {
  const trimmed = text.trim();
  const entries: [string, unknown][] = [];
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new InputError(`rule spec: invalid JSON (${(err as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InputError('rule spec: JSON must be an object');
    entries.push(...Object.entries(parsed as Record<string, unknown>));
  } else {
    if (trimmed === '') throw new InputError('rule spec is empty');
    for (const part of trimmed.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) throw new InputError(`rule spec: "${part}" is not key=value`);
      entries.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
    }
  }
  const linear: Record<string, LinearRule> = { ...PXP_DEFAULT_RULES.linear };
  let softmax: SoftmaxRule = PXP_DEFAULT_RULES.softmax;
  const seen = new Set<string>();
  for (const [key, value] of entries) {
    if (seen.has(key)) throw new InputError(`rule spec: "${key}" given twice`);
    seen.add(key);
    if (key === 'softmax') {
      if (value !== 'attnlrp' && value !== 'cp') throw new InputError(`rule spec: softmax must be attnlrp or cp, got "${String(value)}"`);
      softmax = value;
    } else if ((LINEAR_GROUPS as readonly string[]).includes(key)) {
      linear[key] = linearFromJson(value, key);
    } else {
      throw new InputError(`rule spec: unknown key "${key}" (use ${LINEAR_GROUPS.join(', ')}, softmax)`);
    }
  }
  return { linear: linear as unknown as LinearRules, softmax };
}

/** The compact form of a spec, every key written (parseRuleSpec(formatRuleSpec(s)) equals s). */
export function formatRuleSpec(spec: PxpRuleSpec): string {
  return [...LINEAR_GROUPS.map((g) => `${g}=${formatLinearRule(spec.linear[g])}`), `softmax=${spec.softmax}`].join(',');
}
