/**
 * PXP-style tuning of the attribution used for pruning (Hatefi et al., arXiv:2408.12568):
 * a seeded TPE search (src/circuits/pruning/tpe.ts) over the attribution settings, with the objective = area under the
 * task-metric-vs-pruning-rate curve (trapezoid rule, as `np.trapz(acc, rates)` in the PXP code).
 *
 * Search space (what the engine can do honestly):
 * - composite: `attnlrp` | `cp-lrp` (softmax rule vs attention as constant; the PXP softmax-rule choice);
 * - target (explained quantity at the last position): `logit_diff` (IO − S), `logit` (the IO
 *   logit) or `contrastive` (IO logit − mean logit, LXT's GPT-2 recommendation).
 *   How `logit` relates to PXP's seed: the engine seeds the modified *gradient* with 1 at the
 *   target logit, so in gradient × input form the relevance at the output is R_out = z_t · 1 = z_t:
 *   the explained quantity is the logit value. PXP (`pxp/attribute.py`, zennit) seeds the
 *   *relevance* with a one-hot 1 at the true class, R_out = 1, whatever the logit. The two differ
 *   per sample by the factor z_t; for a single sample the ranking of components is identical, but
 *   aggregated over samples ours weights each sample by its logit (and a negative logit flips the
 *   sample's signs, which `mean-abs` undoes and `signed-mean` does not). Dividing each sample's
 *   relevances by z_t would give PXP's seed exactly.
 * - aggregation: `mean-abs` (PXP), `abs-mean`, `signed-mean` (PXP's MAG switch).
 * This is the earlier settings search (`tune --search settings`). PXP's own search space, a
 * linear rule per layer group × softmax rule × ranking with PXP's relevance-1 seed, is
 * `pxpSearch` below (`tune --search rules`).
 *
 * Components pruned at each rate (one-shot: scores once on the dense model, masks nested):
 * `neurons` (MLP neurons, ranked globally; PXP/SparC³ structured) or `weights` (elements of
 * the up and down projections, ranked globally; SparC³'s unstructured circuits).
 */

import type { Composite, Target } from '../../engine/api';
import type { Engine } from '../../engine/engine';
import {
  attributionScores,
  applyMask,
  globalMask,
  headRemovalWeights,
  neuronRemovalWeights,
  prunableTensors,
  rankComponents,
  type ExplainedOutput,
} from './prune';
import { ioiMetrics, perPromptIoi, trapezoidAuc, type IoiResult } from './pruneEval';
import { enumerate, tpeSearch, type Config } from './tpe';
import { formatLinearRule, formatRuleSpec, parseLinearRule, PXP_DEFAULT_RULES, specComposite, specRuleTable, type PxpRuleSpec, type SoftmaxRule } from './pxpRules';
import { bootstrap, type Interval } from '../stats';
import { InputError } from '../../models/errors';
import type { TaskExample } from '../tasks/tasks';
import type { Aggregation } from '../../vocabulary';

export type TuneTarget = 'logit_diff' | 'logit' | 'contrastive';

export interface TuneConfig {
  readonly composite: Composite;
  readonly target: TuneTarget;
  readonly aggregation: Aggregation;
}

export const DEFAULT_TUNE_CONFIG: TuneConfig = { composite: 'attnlrp', target: 'logit', aggregation: 'mean-abs' };

export interface TuneOptions {
  /** Prompts the attribution is computed on (reference set). */
  readonly reference: readonly TaskExample[];
  /** Prompts the metric is measured on (keep disjoint from the reference). */
  readonly evaluation: readonly TaskExample[];
  /** Configurations evaluated, the default included (at least 1). */
  readonly budget: number;
  readonly seed?: number;
  readonly unit?: 'neurons' | 'weights';
  readonly rates?: readonly number[];
  readonly metric?: 'accuracy' | 'logit_diff';
  readonly composites?: readonly Composite[];
  readonly targets?: readonly TuneTarget[];
  readonly aggregations?: readonly Aggregation[];
  readonly log?: (line: string) => void;
}

export interface TuneTrial {
  readonly config: TuneConfig;
  readonly auc: number;
  readonly curve: { rate: number; value: number; ioi: IoiResult }[];
  readonly seconds: number;
}

export interface TuneResult {
  readonly best: TuneTrial;
  readonly default: TuneTrial;
  readonly trials: TuneTrial[];
  readonly settings: { unit: 'neurons' | 'weights'; metric: 'accuracy' | 'logit_diff'; rates: number[]; seed: number; budget: number; spaceSize: number; reference: number; evaluation: number };
}

function explained(examples: readonly TaskExample[], target: TuneTarget): ExplainedOutput[] {
  return examples.map((e) => {
    if (e.target === undefined || e.foil === undefined) throw new Error(`${e.origin}: tuning needs target (io) and foil (s) tokens`);
    const position = e.ids.length - 1;
    const t: Target = target === 'logit_diff' ? { kind: 'logit_diff', position, token: e.target, foil: e.foil } : { kind: target, position, token: e.target };
    return { ids: e.ids, target: t };
  });
}


/** One configuration's metric-vs-rate curve and its trapezoid AUC. */
export async function evaluateConfig(engine: Engine, config: TuneConfig, options: Omit<TuneOptions, 'budget'>): Promise<TuneTrial> {
  const t0 = Date.now();
  const unit = options.unit ?? 'neurons';
  const rates = [...(options.rates ?? [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])];
  const metric = options.metric ?? 'accuracy';
  const tensors = prunableTensors(engine).filter((t) => t.roles.includes('up') || t.roles.includes('down'));
  const rel = await attributionScores(engine, explained(options.reference, config.target), {
    mode: config.composite,
    aggregation: config.aggregation,
    weights: unit === 'weights' ? tensors.map((t) => t.name) : [],
  });
  const ranked = unit === 'neurons' ? rankComponents(rel.neurons, 'neurons') : [];
  const curve: TuneTrial['curve'] = [];
  for (const rate of rates) {
    let replaced: Map<string, Float32Array>;
    if (unit === 'neurons') replaced = neuronRemovalWeights(engine, ranked.slice(0, Math.floor(rate * ranked.length)));
    else replaced = applyMask(engine, globalMask({ method: config.composite, tensors, scores: rel.weights, calibration: null, aggregation: config.aggregation, target: null }, rate));
    const pruned = engine.withWeights(replaced);
    try {
      const ioi = await ioiMetrics(pruned, options.evaluation);
      curve.push({ rate, value: metric === 'accuracy' ? ioi.accuracy : ioi.logitDiff, ioi });
    } finally {
      await pruned.dispose();
    }
  }
  return { config, auc: trapezoidAuc(rates, curve.map((c) => c.value)), curve, seconds: (Date.now() - t0) / 1000 };
}

export async function tune(engine: Engine, options: TuneOptions): Promise<TuneResult> {
  if (!Number.isInteger(options.budget) || options.budget < 1) throw new Error(`budget must be an integer ≥ 1, got ${options.budget}`);
  const seed = options.seed ?? 0;
  const log = options.log ?? (() => undefined);
  const space: TuneConfig[] = [];
  for (const composite of options.composites ?? (['attnlrp', 'cp-lrp'] as Composite[]))
    for (const target of options.targets ?? (['logit_diff', 'logit', 'contrastive'] as TuneTarget[]))
      for (const aggregation of options.aggregations ?? (['mean-abs', 'abs-mean', 'signed-mean'] as Aggregation[])) space.push({ composite, target, aggregation });
  // TPE (src/circuits/pruning/tpe.ts; PXP searches by Bayesian optimisation), the default evaluated first.
  const keyOf = (c: { readonly composite?: string; readonly target?: string; readonly aggregation?: string }) => `${c.composite}|${c.target}|${c.aggregation}`;
  const byKey = new Map<string, TuneConfig>([...space, DEFAULT_TUNE_CONFIG].map((c) => [keyOf(c), c]));
  const dims = {
    composite: [...new Set(space.map((c) => c.composite))],
    target: [...new Set(space.map((c) => c.target))],
    aggregation: [...new Set(space.map((c) => c.aggregation))],
  };
  const initial: Config[] = [{ ...DEFAULT_TUNE_CONFIG }];
  const search = await tpeSearch(
    dims,
    async (c) => {
      const config = byKey.get(keyOf(c))!;
      const trial = await evaluateConfig(engine, config, options);
      log(`${config.composite} / ${config.target} / ${config.aggregation}: AUC ${trial.auc.toFixed(4)} (${trial.seconds.toFixed(1)} s)`);
      return { value: trial.auc, result: trial };
    },
    { budget: options.budget, seed, initial, startup: Math.min(4, options.budget) },
  );
  const trials: TuneTrial[] = search.trials.map((t) => t.result);
  const best = trials.reduce((a, b) => (b.auc > a.auc ? b : a));
  const rates = [...(options.rates ?? [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])];
  return {
    best,
    default: trials[0]!,
    trials,
    settings: {
      unit: options.unit ?? 'neurons',
      metric: options.metric ?? 'accuracy',
      rates,
      seed,
      budget: options.budget,
      spaceSize: space.length,
      reference: options.reference.length,
      evaluation: options.evaluation.length,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Per-prompt curves (for the calibration/held-out protocol with bootstrap CIs)

/** The pruned-weights function of one configuration: scores once on `reference`, masks nested in the rate. */
export async function configPruner(engine: Engine, config: TuneConfig, reference: readonly TaskExample[], unit: 'neurons' | 'weights'): Promise<(rate: number) => Map<string, Float32Array>> {
  const tensors = prunableTensors(engine).filter((t) => t.roles.includes('up') || t.roles.includes('down'));
  const rel = await attributionScores(engine, explained(reference, config.target), {
    mode: config.composite,
    aggregation: config.aggregation,
    weights: unit === 'weights' ? tensors.map((t) => t.name) : [],
  });
  if (unit === 'neurons') {
    const ranked = rankComponents(rel.neurons, 'neurons');
    return (rate) => neuronRemovalWeights(engine, ranked.slice(0, Math.floor(rate * ranked.length)));
  }
  return (rate) => applyMask(engine, globalMask({ method: config.composite, tensors, scores: rel.weights, calibration: null, aggregation: config.aggregation, target: null }, rate));
}

/** Per-prompt IO − S logit difference at each rate: `[rate][prompt]`. */
export async function perPromptCurve(
  engine: Engine,
  prune: (rate: number) => Map<string, Float32Array>,
  evaluation: readonly TaskExample[],
  rates: readonly number[],
): Promise<number[][]> {
  const out: number[][] = [];
  for (const rate of rates) {
    const pruned = rate === 0 ? engine : engine.withWeights(prune(rate));
    try {
      out.push((await perPromptIoi(pruned, evaluation)).logitDiff);
    } finally {
      if (pruned !== engine) await pruned.dispose();
    }
  }
  return out;
}

/** Trapezoid AUC over the rates of the mean over `indices` of a per-prompt curve. */
export function curveAuc(curve: readonly number[][], rates: readonly number[], indices: readonly number[]): number {
  return trapezoidAuc(rates, curve.map((row) => indices.reduce((s, i) => s + row[i]!, 0) / indices.length));
}

// ---------------------------------------------------------------------------------------------
// PXP's rule search proper (Hatefi et al. 2024; src/circuits/pruning/pxpRules.ts)

/**
 * One PXP configuration: the rule spec (a linear rule per layer group and the softmax rule) and
 * the ranking, PXP's "MAG" switch: `abs` = |R| per sample, then the mean (our `mean-abs`;
 * `pxp/attribute.py` takes |·| per sample and sums), `signed` = the signed mean.
 */
export interface PxpConfig {
  readonly rules: PxpRuleSpec;
  readonly ranking: 'abs' | 'signed';
}

/** PXP's `configs/test-config.yaml`: ε everywhere, AttnLRP softmax rule, |R| ranking. */
export const PXP_DEFAULT_CONFIG: PxpConfig = { rules: PXP_DEFAULT_RULES, ranking: 'abs' };

/** PXP's per-group choices, with zennit's defaults: ε = 1e-6, γ = 0.25, z⁺ (= α1β0), α2β1. */
export const PXP_RULE_CHOICES: readonly string[] = ['epsilon', 'gamma', 'zplus', 'alpha-beta'];

export type PxpUnit = 'neurons' | 'heads';
export type PxpMetric = 'logit_diff' | 'accuracy';

/** The compact label of a configuration: its rule spec and `rank=abs|signed`. */
export function formatPxpConfig(config: PxpConfig): string {
  return `${formatRuleSpec(config.rules)},rank=${config.ranking}`;
}

/** Scores once on `reference` under a PXP configuration; returns the pruned weights per rate (nested sets). */
export async function pxpPruner(
  engine: Engine,
  config: PxpConfig,
  reference: readonly TaskExample[],
  unit: PxpUnit,
  options: { target?: TuneTarget; relevanceSeed?: 'value' | 'one' } = {},
): Promise<(rate: number) => Map<string, Float32Array>> {
  const rel = await attributionScores(engine, explained(reference, options.target ?? 'logit'), {
    mode: specComposite(config.rules),
    rules: specRuleTable(config.rules),
    aggregation: config.ranking === 'abs' ? 'mean-abs' : 'signed-mean',
    relevanceSeed: options.relevanceSeed ?? 'one',
  });
  const ranked = rankComponents(unit === 'neurons' ? rel.neurons : rel.heads, unit);
  const remove = unit === 'neurons' ? neuronRemovalWeights : headRemovalWeights;
  return (rate) => remove(engine, ranked.slice(0, Math.floor(rate * ranked.length)));
}

/** Per-prompt metric (IO − S logit difference, or 1/0 correct) at each rate: `[rate][prompt]`. */
export async function perPromptMetricCurve(
  engine: Engine,
  prune: (rate: number) => Map<string, Float32Array>,
  evaluation: readonly TaskExample[],
  rates: readonly number[],
  metric: PxpMetric,
): Promise<number[][]> {
  const out: number[][] = [];
  for (const rate of rates) {
    const pruned = rate === 0 ? engine : engine.withWeights(prune(rate));
    try {
      const r = await perPromptIoi(pruned, evaluation);
      out.push(metric === 'accuracy' ? r.correct : r.logitDiff);
    } finally {
      if (pruned !== engine) await pruned.dispose();
    }
  }
  return out;
}

export interface PxpSearchOptions {
  /** Prompts the relevance is computed on (PXP's reference samples). */
  readonly reference: readonly TaskExample[];
  /** Prompts the objective is measured on (the calibration split); disjoint from the reference. */
  readonly calibration: readonly TaskExample[];
  /** Reported on, never searched on: the best configuration and the default, with CIs. */
  readonly heldOut?: readonly TaskExample[];
  readonly unit: PxpUnit;
  /** Configurations evaluated, the default first (at least 1). */
  readonly budget: number;
  readonly seed?: number;
  /** Random draws before TPE proposes (default min(8, budget)). */
  readonly startup?: number;
  readonly rates?: readonly number[];
  readonly metric?: PxpMetric;
  /** Explained output at the last position (default the IO logit: PXP explains the true class). */
  readonly target?: TuneTarget;
  /** Default `one`, PXP's relevance-1 seed (prune.ts `relevanceSeed`). */
  readonly relevanceSeed?: 'value' | 'one';
  /** Per-group choices in the compact form (default PXP_RULE_CHOICES). */
  readonly ruleChoices?: readonly string[];
  readonly softmaxChoices?: readonly SoftmaxRule[];
  readonly rankings?: readonly ('abs' | 'signed')[];
  /** Evaluated first instead of PXP_DEFAULT_CONFIG (the "default" the gain is measured against). */
  readonly baseline?: PxpConfig;
  readonly resamples?: number;
  readonly log?: (line: string) => void;
}

export interface PxpTrial {
  readonly config: PxpConfig;
  readonly label: string;
  /** Calibration AUC of the mean metric vs rate. */
  readonly auc: number;
  readonly seconds: number;
  /** Mean calibration metric per rate. */
  readonly curve: number[];
}

export interface PxpSearchResult {
  readonly trials: PxpTrial[];
  readonly best: PxpTrial;
  readonly default: PxpTrial;
  /** Paired bootstrap over calibration prompts (selected on them: optimistic). */
  readonly calibrationGain: Interval;
  readonly heldOut?: { readonly n: number; readonly default: Interval; readonly best: Interval; readonly gain: Interval; readonly bestCurve: number[]; readonly defaultCurve: number[] };
  readonly settings: { unit: PxpUnit; metric: PxpMetric; rates: number[]; seed: number; budget: number; spaceSize: number; reference: number; calibration: number; target: TuneTarget; relevanceSeed: 'value' | 'one' };
}

export const PXP_RATES: readonly number[] = [0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98];

/**
 * PXP's search: TPE (tpe.ts; PXP uses a GP-based Bayesian optimiser, not in its code) over a
 * linear rule per layer group × softmax rule × ranking; objective = trapezoid AUC of the mean
 * task metric vs pruning rate on the calibration prompts (PXP: `np.trapz(acc, rates)`).
 * Components are pruned globally, least relevant first, masks nested in the rate (PXP's
 * `generate_global_pruning_indices`). With `heldOut`, the best configuration and the default are
 * re-measured there, with percentile bootstrap CIs and the paired gain.
 */
export async function pxpSearch(engine: Engine, options: PxpSearchOptions): Promise<PxpSearchResult> {
  if (!Number.isInteger(options.budget) || options.budget < 1) throw new InputError(`budget must be an integer ≥ 1, got ${options.budget}`);
  if (options.reference.length === 0 || options.calibration.length === 0) throw new InputError('the PXP search needs reference and calibration prompts');
  const seed = options.seed ?? 0;
  const log = options.log ?? (() => undefined);
  const rates = [...(options.rates ?? PXP_RATES)];
  const metric = options.metric ?? 'logit_diff';
  const target = options.target ?? 'logit';
  const relevanceSeed = options.relevanceSeed ?? 'one';
  const choices = [...(options.ruleChoices ?? PXP_RULE_CHOICES)];
  choices.forEach((c) => parseLinearRule(c));
  const baseline = options.baseline ?? PXP_DEFAULT_CONFIG;
  const space = {
    low: choices,
    mid: choices,
    high: choices,
    head: choices,
    softmax: [...(options.softmaxChoices ?? (['attnlrp', 'cp'] as SoftmaxRule[]))],
    rank: [...(options.rankings ?? (['abs', 'signed'] as const))],
  };
  const toConfig = (c: Config): PxpConfig => ({
    rules: { linear: { low: parseLinearRule(c.low!), mid: parseLinearRule(c.mid!), high: parseLinearRule(c.high!), head: parseLinearRule(c.head!) }, softmax: c.softmax as SoftmaxRule },
    ranking: c.rank as 'abs' | 'signed',
  });
  const fromConfig = (p: PxpConfig): Config => ({
    low: formatLinearRule(p.rules.linear.low),
    mid: formatLinearRule(p.rules.linear.mid),
    high: formatLinearRule(p.rules.linear.high),
    head: formatLinearRule(p.rules.linear.head),
    softmax: p.rules.softmax,
    rank: p.ranking,
  });
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const curves = new Map<string, number[][]>();
  const search = await tpeSearch(
    space,
    async (c) => {
      const t0 = Date.now();
      const config = toConfig(c);
      const label = formatPxpConfig(config);
      const prune = await pxpPruner(engine, config, options.reference, options.unit, { target, relevanceSeed });
      const curve = await perPromptMetricCurve(engine, prune, options.calibration, rates, metric);
      curves.set(label, curve);
      const value = curveAuc(curve, rates, all(options.calibration.length));
      const trial: PxpTrial = { config, label, auc: value, seconds: (Date.now() - t0) / 1000, curve: curve.map((row) => row.reduce((s, v) => s + v, 0) / row.length) };
      log(`${label}: calibration AUC ${value.toFixed(4)} (${trial.seconds.toFixed(1)} s)`);
      return { value, result: trial };
    },
    { budget: options.budget, seed, startup: options.startup ?? Math.min(8, options.budget), initial: [fromConfig(baseline)] },
  );
  const trials = search.trials.map((t) => t.result);
  const best = search.best.result;
  const def = trials[0]!;
  const boot = { resamples: options.resamples ?? 2000, seed: 0 };
  const cb = curves.get(best.label)!;
  const cd = curves.get(def.label)!;
  const calibrationGain = bootstrap(options.calibration.length, (idx) => curveAuc(cb, rates, idx) - curveAuc(cd, rates, idx), boot);
  let heldOut: PxpSearchResult['heldOut'];
  if (options.heldOut && options.heldOut.length > 0) {
    const h = options.heldOut;
    const measure = async (config: PxpConfig) => perPromptMetricCurve(engine, await pxpPruner(engine, config, options.reference, options.unit, { target, relevanceSeed }), h, rates, metric);
    const hb = await measure(best.config);
    const hd = best === def ? hb : await measure(def.config);
    const meanCurve = (c: number[][]) => c.map((row) => row.reduce((s, v) => s + v, 0) / row.length);
    heldOut = {
      n: h.length,
      default: bootstrap(h.length, (idx) => curveAuc(hd, rates, idx), boot),
      best: bootstrap(h.length, (idx) => curveAuc(hb, rates, idx), boot),
      gain: bootstrap(h.length, (idx) => curveAuc(hb, rates, idx) - curveAuc(hd, rates, idx), boot),
      bestCurve: meanCurve(hb),
      defaultCurve: meanCurve(hd),
    };
    log(`held-out (${h.length} prompts): default ${heldOut.default.estimate.toFixed(4)}, best ${heldOut.best.estimate.toFixed(4)}, gain ${heldOut.gain.estimate.toFixed(4)} [${heldOut.gain.lo.toFixed(4)}, ${heldOut.gain.hi.toFixed(4)}]`);
  }
  return {
    trials,
    best,
    default: def,
    calibrationGain,
    ...(heldOut ? { heldOut } : {}),
    settings: { unit: options.unit, metric, rates, seed, budget: options.budget, spaceSize: enumerate(space).length, reference: options.reference.length, calibration: options.calibration.length, target, relevanceSeed },
  };
}
