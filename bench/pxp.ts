/**
 * PXP's rule search (Hatefi et al. 2024) on the embedded model, with an honest split: TPE
 * (src/circuits/pruning/tpe.ts) chooses a configuration on a calibration split; the chosen
 * configuration and PXP's default are then measured on a held-out split, and the gain carries a
 * paired bootstrap CI over held-out prompts (src/circuits/pruning/tune.ts `pxpSearch`).
 *
 * - search space (PXP's `pxp/composites.py`): a linear rule per layer group, low (block 0–1),
 *   mid (block 2), high (block 3) and the unembedding, each ε (1e-6) | γ (0.25) | z⁺ (zennit's,
 *   = α1β0) | α2β1; softmax rule AttnLRP | CP; ranking |R| | signed: 4⁴ × 2 × 2 = 1,024
 *   configurations. Default: PXP's `configs/test-config.yaml` (ε everywhere, AttnLRP softmax, |R|);
 * - seed: PXP's relevance 1 at the IO logit (each sample's relevances divided by its logit);
 * - structures, searched separately as PXP does: MLP neurons (2,048) and attention heads (16),
 *   pruned globally, least relevant first (one-shot, nested masks);
 * - objective: area under the IOI logit difference (IO − S) vs pruning rate (trapezoids,
 *   PXP's `np.trapz`). The logit difference, not accuracy: accuracy stays at its dense value up
 *   to ~90 % of neurons on this model (bench/prune-curve.ts), which leaves little to optimise;
 * - reference: ioi.jsonl rows 0–63; calibration objective: rows 64–199; held-out: 200 prompts
 *   of the held-out IOI split (ACDC templates, `heldOutIoiTask`).
 *
 * `--space settings` runs the earlier search instead (README "PXP search", first table): TPE
 * over composite (attnlrp | cp-lrp | gradient) × target (logit | logit_diff | contrastive) ×
 * aggregation (mean-abs | abs-mean | signed-mean), 10 of 27, the engine's logit-value seed, MLP
 * neurons, same splits and objective.
 *
 * `--confirm SPEC --ranking abs|signed --units U` skips the search and measures one configuration
 * against PXP's default on the held-out split (logit-difference and accuracy AUC, paired), e.g.
 * to re-check a search result in a few minutes.
 *
 * Run: nice -n 10 node --import tsx bench/pxp.ts [--budget 30] [--units neurons,heads] [--space rules|settings]
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { heldOutIoiTask } from '../src/circuits/tasks/generators';
import { bootstrap, formatInterval } from '../src/circuits/stats';
import { loadTaskFile } from '../src/circuits/tasks/tasks';
import { curveAuc, formatPxpConfig, perPromptMetricCurve, pxpPruner, pxpSearch, PXP_DEFAULT_CONFIG, PXP_RATES, type PxpConfig, type PxpMetric, type PxpUnit } from '../src/circuits/pruning/tune';
import { parseRuleSpec } from '../src/circuits/pruning/pxpRules';
import { configPruner, DEFAULT_TUNE_CONFIG, perPromptCurve, type TuneConfig, type TuneTarget } from '../src/circuits/pruning/tune';
import { tpeSearch, type Config } from '../src/circuits/pruning/tpe';
import type { Composite } from '../src/engine/api';
import type { Aggregation } from '../src/vocabulary';
import type { TaskExample } from '../src/circuits/tasks/tasks';

/** The earlier search over composite × target × aggregation (MLP neurons, logit-value seed). */
async function settingsSearch(engine: Engine, reference: readonly TaskExample[], calibration: readonly TaskExample[], heldOut: readonly TaskExample[], log: (line: string) => void): Promise<void> {
  const RATES = PXP_RATES;
  const toConfig = (c: Config): TuneConfig => ({ composite: c.composite as Composite, target: c.target as TuneTarget, aggregation: c.aggregation as Aggregation });
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const space = { composite: ['attnlrp', 'cp-lrp', 'gradient'], target: ['logit', 'logit_diff', 'contrastive'], aggregation: ['mean-abs', 'abs-mean', 'signed-mean'] };
  const search = await tpeSearch(
    space,
    async (c) => {
      const prune = await configPruner(engine, toConfig(c), reference, 'neurons');
      const curve = await perPromptCurve(engine, prune, calibration, RATES);
      const value = curveAuc(curve, RATES, all(calibration.length));
      log(`${c.composite} / ${c.target} / ${c.aggregation}: calibration AUC ${value.toFixed(3)}`);
      return { value, result: curve };
    },
    { budget: 10, seed: 0, startup: 4, initial: [{ ...DEFAULT_TUNE_CONFIG }] },
  );
  const best = search.best;
  const def = search.trials[0]!;
  console.log(`\n### Settings search on the embedded model (TPE, 10 of 27 configurations; MLP neurons; AUC of IOI logit difference vs rate ${RATES.join(', ')})\n`);
  console.log('| # | composite | target | aggregation | calibration AUC (136 prompts) |');
  console.log('|---|---|---|---|---|');
  search.trials.forEach((t, i) => console.log(`| ${i + 1} | ${t.config.composite} | ${t.config.target} | ${t.config.aggregation} | ${t.value.toFixed(3)}${t === best ? ' **best**' : i === 0 ? ' (default)' : ''} |`));
  const heldCurve = async (c: Config) => perPromptCurve(engine, await configPruner(engine, toConfig(c), reference, 'neurons'), heldOut, RATES);
  const hb = await heldCurve(best.config);
  const hd = best === def ? hb : await heldCurve(def.config);
  const opts = { resamples: 2000, seed: 0 };
  const n = heldOut.length;
  console.log(`\nHeld-out (${n} prompts): default ${formatInterval(bootstrap(n, (idx) => curveAuc(hd, RATES, idx), opts))}, best ${formatInterval(bootstrap(n, (idx) => curveAuc(hb, RATES, idx), opts))}, gain ${formatInterval(bootstrap(n, (idx) => curveAuc(hb, RATES, idx) - curveAuc(hd, RATES, idx), opts))} (paired bootstrap).`);
  console.log(`Calibration gain (selected on these prompts, optimistic): ${formatInterval(bootstrap(calibration.length, (idx) => curveAuc(best.result, RATES, idx) - curveAuc(def.result, RATES, idx), opts))}.`);
}

/**
 * Held-out AUC of `chosen` and `baseline` with the paired gain, per metric. The logit difference
 * can rise above its dense value when pruning removes components that work against IO (it is
 * unbounded); IOI accuracy, PXP's kind of metric, is bounded.
 */
async function heldOutComparison(engine: Engine, unit: PxpUnit, chosen: PxpConfig, baseline: PxpConfig, reference: readonly TaskExample[], heldOut: readonly TaskExample[], metrics: readonly PxpMetric[]): Promise<void> {
  const rates = PXP_RATES;
  const boot = { resamples: 2000, seed: 0 };
  const n = heldOut.length;
  const pc = await pxpPruner(engine, chosen, reference, unit);
  const pb = await pxpPruner(engine, baseline, reference, unit);
  for (const metric of metrics) {
    const cc = await perPromptMetricCurve(engine, pc, heldOut, rates, metric);
    const cb = await perPromptMetricCurve(engine, pb, heldOut, rates, metric);
    console.log(
      `held-out ${metric} AUC (${unit}): default ${formatInterval(bootstrap(n, (idx) => curveAuc(cb, rates, idx), boot))}, chosen ${formatInterval(bootstrap(n, (idx) => curveAuc(cc, rates, idx), boot))}, gain ${formatInterval(bootstrap(n, (idx) => curveAuc(cc, rates, idx) - curveAuc(cb, rates, idx), boot))} (paired)`,
    );
    const mean = (c: number[][]) => c.map((row) => (row.reduce((x, v) => x + v, 0) / row.length).toFixed(3)).join(' ');
    console.log(`held-out ${metric} curve, default: ${mean(cb)}`);
    console.log(`held-out ${metric} curve, chosen:  ${mean(cc)}`);
  }
}

/** `--confirm`: one configuration against PXP's default, no search. */
async function confirm(engine: Engine, unit: PxpUnit, chosen: PxpConfig, reference: readonly TaskExample[], heldOut: readonly TaskExample[]): Promise<void> {
  console.log(`\n### ${unit}: ${formatPxpConfig(chosen)} vs PXP's default, held-out (${heldOut.length} prompts)\n`);
  await heldOutComparison(engine, unit, chosen, PXP_DEFAULT_CONFIG, reference, heldOut, ['logit_diff', 'accuracy']);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      budget: { type: 'string', default: '30' },
      units: { type: 'string', default: 'neurons,heads' },
      space: { type: 'string', default: 'rules' },
      confirm: { type: 'string' },
      ranking: { type: 'string', default: 'abs' },
    },
  });
  if (values.space !== 'rules' && values.space !== 'settings') throw new Error(`--space must be rules or settings, got ${values.space}`);
  const budget = Number(values.budget);
  const units = values.units!.split(',') as PxpUnit[];
  const t0 = Date.now();
  const log = (line: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}\n`);
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const ioi = loadTaskFile(path.join(folder, 'ioi.jsonl'));
  const reference = ioi.examples.slice(0, 64);
  const calibration = ioi.examples.slice(64);
  const heldOut = heldOutIoiTask(engine.tokenizer!, 200, ioi.examples.map((e) => e.prompt ?? '')).examples;
  const rates = PXP_RATES;
  if (values.space === 'settings') {
    await settingsSearch(engine, reference, calibration, heldOut, log);
    await engine.dispose();
    return;
  }
  if (values.confirm !== undefined) {
    const chosen: PxpConfig = { rules: parseRuleSpec(values.confirm), ranking: values.ranking === 'signed' ? 'signed' : 'abs' };
    for (const unit of units) await confirm(engine, unit, chosen, reference, heldOut);
    await engine.dispose();
    return;
  }
  for (const unit of units) {
    const result = await pxpSearch(engine, { reference, calibration, heldOut, unit, budget, seed: 0, rates, metric: 'logit_diff', log });
    const { best } = result;
    console.log(`\n### PXP rule search, ${unit} (TPE, ${budget} of ${result.settings.spaceSize} configurations; AUC of IOI logit difference vs rate ${rates.join(', ')})\n`);
    console.log('| # | low | mid | high | head | softmax | ranking | calibration AUC (136 prompts) |');
    console.log('|---|---|---|---|---|---|---|---|');
    result.trials.forEach((t, i) => {
      const l = t.config.rules.linear;
      const f = (r: (typeof l)['low']) => (r.kind === 'epsilon' ? 'ε' : r.kind === 'gamma' ? 'γ' : r.kind === 'alpha-beta' ? (r.alpha === 1 ? 'z⁺' : 'α2β1') : 'z⁺(W⁺)');
      console.log(`| ${i + 1} | ${f(l.low)} | ${f(l.mid)} | ${f(l.high)} | ${f(l.head)} | ${t.config.rules.softmax} | ${t.config.ranking} | ${t.auc.toFixed(3)}${t === best ? ' **best**' : ''}${i === 0 ? ' (default)' : ''} |`);
    });
    console.log(`\nbest: \`--rules ${best.label.replace(/,rank=\w+$/, '')} --ranking ${best.config.ranking}\``);
    console.log(`calibration gain (selected on these prompts, optimistic): ${formatInterval(result.calibrationGain)}`);
    const h = result.heldOut!;
    console.log(`held-out (${h.n} prompts): default ${formatInterval(h.default)}, best ${formatInterval(h.best)}, gain ${formatInterval(h.gain)} (paired bootstrap)`);
    console.log(`held-out mean curve, default: ${h.defaultCurve.map((v) => v.toFixed(2)).join(' ')}`);
    console.log(`held-out mean curve, best:    ${h.bestCurve.map((v) => v.toFixed(2)).join(' ')}`);
    await heldOutComparison(engine, unit, best.config, result.default.config, reference, heldOut, ['accuracy']);
    if (unit === 'neurons') {
      // The engine's own default (AttnLRP, ε = 0, seed = the logit value, mean |R|) on the same
      // held-out prompts: how PXP's relevance-1 seed compares with ours.
      const engineDefault = await perPromptMetricCurve(engine, await configPruner(engine, DEFAULT_TUNE_CONFIG, reference, 'neurons'), heldOut, rates, 'logit_diff');
      console.log(`held-out, engine default (AttnLRP, logit-value seed, mean-abs): ${formatInterval(bootstrap(heldOut.length, (idx) => curveAuc(engineDefault, rates, idx), { resamples: 2000, seed: 0 }))}`);
    }
  }
  console.log(`\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  await engine.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
