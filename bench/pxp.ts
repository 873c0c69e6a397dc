/**
 * PXP-style search (Hatefi et al. 2024) over what the composite table offers today, with an honest
 * split: TPE (src/circuits/pruning/tpe.ts) chooses composite × explained target × aggregation on a
 * calibration split; the chosen configuration and the default are then measured on a held-out
 * split, and the gain carries a paired bootstrap CI over held-out prompts.
 *
 * - components: MLP neurons, ranked globally, pruned least relevant first at the rates below
 *   (one-shot, nested masks; PXP's structured pruning);
 * - objective: area under the IOI logit difference (IO − S) vs pruning rate (trapezoids). The
 *   logit difference, not accuracy: accuracy stays at its dense value up to ~90 % of neurons on
 *   this model (bench/prune-curve.ts), which leaves nothing to optimise;
 * - attribution reference: ioi.jsonl rows 0–63; calibration objective: rows 64–199; held-out:
 *   200 prompts of the held-out IOI split (ACDC templates, `heldOutIoiTask`);
 * - search: 27 configurations (attnlrp | cp-lrp | gradient) × (logit | logit_diff | contrastive)
 *   × (mean-abs | abs-mean | signed-mean); budget 10, the default first, 4 random start-up draws.
 * Not searched: PXP's per-layer-group ε/γ/z⁺/α2β1 rules and its z⁺ softmax rule (not in the rule
 * table on this branch).
 *
 * Run: nice -n 10 node --import tsx bench/pxp.ts   (about 3 minutes on 2 cores)
 */
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import type { Composite } from '../src/engine/api';
import { heldOutIoiTask } from '../src/circuits/tasks/generators';
import type { Aggregation } from '../src/vocabulary';
import { bootstrap, formatInterval } from '../src/circuits/stats';
import { loadTaskFile } from '../src/circuits/tasks/tasks';
import { tpeSearch, type Config } from '../src/circuits/pruning/tpe';
import { configPruner, curveAuc, DEFAULT_TUNE_CONFIG, perPromptCurve, type TuneConfig, type TuneTarget } from '../src/circuits/pruning/tune';

const RATES = [0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98];

async function main(): Promise<void> {
  const t0 = Date.now();
  const log = (line: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}\n`);
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const ioi = loadTaskFile(path.join(folder, 'ioi.jsonl'));
  const reference = ioi.examples.slice(0, 64);
  const calibration = ioi.examples.slice(64);
  const heldOut = heldOutIoiTask(engine.tokenizer!, 200, ioi.examples.map((e) => e.prompt ?? '')).examples;
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
  console.log(`\n### PXP search on the embedded model (TPE, 10 of 27 configurations; MLP neurons; AUC of IOI logit difference vs rate ${RATES.join(', ')})\n`);
  console.log('| # | composite | target | aggregation | calibration AUC (136 prompts) |');
  console.log('|---|---|---|---|---|');
  search.trials.forEach((t, i) => console.log(`| ${i + 1} | ${t.config.composite} | ${t.config.target} | ${t.config.aggregation} | ${t.value.toFixed(3)}${t === best ? ' **best**' : i === 0 ? ' (default)' : ''} |`));
  const heldCurve = async (c: Config) => perPromptCurve(engine, await configPruner(engine, toConfig(c), reference, 'neurons'), heldOut, RATES);
  const hb = await heldCurve(best.config);
  const hd = best === def ? hb : await heldCurve(def.config);
  const opts = { resamples: 2000, seed: 0 };
  const n = heldOut.length;
  const aucBest = bootstrap(n, (idx) => curveAuc(hb, RATES, idx), opts);
  const aucDef = bootstrap(n, (idx) => curveAuc(hd, RATES, idx), opts);
  const gain = bootstrap(n, (idx) => curveAuc(hb, RATES, idx) - curveAuc(hd, RATES, idx), opts);
  const calGain = bootstrap(calibration.length, (idx) => curveAuc(best.result, RATES, idx) - curveAuc(def.result, RATES, idx), opts);
  console.log(`\nHeld-out (${n} prompts): default ${formatInterval(aucDef)}, best ${formatInterval(aucBest)}, gain ${formatInterval(gain)} (paired bootstrap).`);
  console.log(`Calibration gain (selected on these prompts, optimistic): ${formatInterval(calGain)}.`);
  console.log(`Dense held-out logit difference ${(hb[0]!.reduce((s, v) => s + v, 0) / n).toFixed(3)}; total ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
  await engine.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
