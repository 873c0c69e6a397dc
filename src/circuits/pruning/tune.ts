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
 * Not searched yet: ε / γ / z⁺ rules per layer group. They *are* expressible in the
 * modified-gradient form (each is a modified VJP of the linear layer; issue 11) and are being
 * added to the rule table separately; this search covers what the composite table offers today.
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
  neuronRemovalWeights,
  prunableTensors,
  rankComponents,
  type ExplainedOutput,
} from './prune';
import { ioiMetrics, perPromptIoi, trapezoidAuc, type IoiResult } from './pruneEval';
import { tpeSearch, type Config } from './tpe';
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
