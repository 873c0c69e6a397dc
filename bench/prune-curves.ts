/**
 * Perplexity-vs-sparsity curves for every pruning method on the embedded tiny-ioi-gpt2, the
 * model-correction result and a small PXP tuning run. Run: `node --import tsx bench/prune-curves.ts`
 * (about 6–8 minutes on 2 CPU cores). Prints markdown tables.
 * The README's correction and PXP tables come from bench/correction.ts and bench/pxp.ts (held-out
 * splits, bootstrap CIs); the correction and tuning runs here use the library defaults only.
 *
 * Data split (heldout.txt, 11,643 tokens as one stream):
 * - evaluation: the first 8,192 tokens = 64 windows of 128 (README perplexity definition);
 * - calibration / general reference: 32 windows × 64 tokens taken from the last 3,451 tokens
 *   (disjoint from the evaluated part). The explained outputs are the true next tokens at every
 *   position of each calibration window (32 × 63 = 2,016 backward passes per LRP method).
 * IOI accuracy (ioi.jsonl, 200 prompts) is reported next to perplexity.
 * Correction: undesired reference = the first 50 toxic rows of toxic.jsonl, evaluated on those
 * (ref) and on the other 50 (held); general reference = 16 calibration windows.
 */
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { correct, undesiredOutputs } from '../src/circuits/pruning/correct';
import { calibrationWindows, nextTokenOutputs } from '../src/circuits/pruning/prune';
import { curveTable, ioiMetrics, loadTask, probabilityMetric, readTextIds, sparsityCurves, textPerplexity, toxicSplit, type CurveMethod } from '../src/circuits/pruning/pruneEval';
import { tune } from '../src/circuits/pruning/tune';

const EVAL_TOKENS = 64 * 128;

async function main(): Promise<void> {
  const t0 = Date.now();
  const log = (line: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}\n`);
  const engine = await Engine.load(embeddedModelPath());
  const folder = engine.folder;
  const heldout = readTextIds(engine, path.join(folder, 'heldout.txt'));
  const evalIds = heldout.slice(0, EVAL_TOKENS);
  const calibIds = heldout.slice(EVAL_TOKENS);
  const ioi = loadTask(engine, path.join(folder, 'ioi.jsonl')).examples;
  const full = await textPerplexity(engine, heldout);
  console.log(`# Pruning curves — embedded tiny-ioi-gpt2\n`);
  console.log(`Dense perplexity, full heldout.txt (README definition): ${full.perplexity.toFixed(4)} (${full.tokensScored} tokens scored; reference 5.1961).`);
  console.log(`Evaluation part: first ${EVAL_TOKENS} tokens (${EVAL_TOKENS / 128} windows of 128); calibration: 32 windows × 64 tokens from the remaining ${calibIds.length} tokens.\n`);

  const methods: CurveMethod[] = [];
  for (const scope of ['rowwise', 'global'] as const) {
    for (const method of ['attnlrp', 'cp-lrp', 'wanda', 'gradient', 'magnitude', 'random'] as const) methods.push({ method, scope, label: `${method} (${scope})` });
    // PXP's per-token |R|: every explained position its own sample (window-length times slower).
    methods.push({ method: 'attnlrp', scope, samples: 'position', label: `attnlrp, per position (${scope})` });
  }
  const sparsities = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const curves = await sparsityCurves(engine, { methods, sparsities, calibIds, evalIds, ioi, windows: 32, windowLength: 64, log });
  console.log('## Perplexity (heldout evaluation part) vs sparsity of all decoder-block linear weights\n');
  console.log(curveTable(curves, 'perplexity'));
  console.log('\n## IOI accuracy (ioi.jsonl, logit(io) > logit(s)) vs sparsity\n');
  console.log(curveTable(curves, 'ioi-accuracy'));
  console.log('\nScoring time: ' + [...new Map(curves.rows.map((r) => [r.method, r.scoreSeconds])).entries()].map(([m, s]) => `${m} ${s.toFixed(1)} s`).join(', '));

  // Correction
  const { toxic, control } = toxicSplit(loadTask(engine, path.join(folder, 'toxic.jsonl')));
  const ref = toxic.slice(0, 50);
  const held = toxic.slice(50);
  const general = nextTokenOutputs(calibrationWindows(calibIds, { windows: 16, windowLength: 64 }));
  const evaluate = async (e: Engine) => ({
    toxic_ref: await probabilityMetric(e, ref),
    toxic_held: await probabilityMetric(e, held),
    control: await probabilityMetric(e, control),
    ppl: (await textPerplexity(e, evalIds)).perplexity,
    ioi_acc: (await ioiMetrics(e, ioi)).accuracy,
  });
  for (const [unit, steps] of [['neurons', [8, 16, 32, 48, 64, 96]], ['weights', [100, 300, 1000, 3000]]] as const) {
    const r = await correct(engine, { undesired: undesiredOutputs(ref), general, unit, count: steps[steps.length - 1]!, steps: [...steps], evaluate, log });
    const total = unit === 'neurons' ? '2048 MLP neurons' : `${r.totalComponents} c_fc weights`;
    console.log(`\n## Correction by R_general − R_toxic, ${unit} (of ${total}; ${r.settings.mode}, general ${r.settings.generalAggregation}, undesired ${r.settings.undesiredAggregation}, L1-normalised)\n`);
    console.log('| removed | insult p (toxic, ref 50) | insult p (toxic, held-out 50) | insult p (controls) | perplexity | Δ ppl | IOI acc |');
    console.log('|---|---|---|---|---|---|---|');
    const d = r.steps[0]!.metrics;
    for (const s of r.steps) {
      const m = s.metrics;
      console.log(`| ${s.removed} | ${m.toxic_ref!.toFixed(4)} (${pct(m.toxic_ref! / d.toxic_ref! - 1)}) | ${m.toxic_held!.toFixed(4)} (${pct(m.toxic_held! / d.toxic_held! - 1)}) | ${m.control!.toFixed(4)} | ${m.ppl!.toFixed(3)} | ${pct(m.ppl! / d.ppl! - 1)} | ${(m.ioi_acc! * 100).toFixed(1)}% |`);
    }
  }

  // PXP tuning
  const t = await tune(engine, { reference: ioi.slice(0, 64), evaluation: ioi.slice(64), budget: 8, seed: 0, unit: 'neurons', metric: 'accuracy', log });
  console.log(`\n## PXP tuning (random search, seed 0, budget 8 of ${t.settings.spaceSize}; MLP neurons ranked globally; IOI accuracy on 136 prompts vs rate 0…0.9; AUC by trapezoid, max 0.9)\n`);
  console.log('| composite | target | aggregation | AUC | acc @ 30 % | acc @ 50 % | acc @ 70 % |');
  console.log('|---|---|---|---|---|---|---|');
  for (const trial of t.trials) {
    const at = (rate: number) => `${((trial.curve.find((c) => Math.abs(c.rate - rate) < 1e-9)?.value ?? NaN) * 100).toFixed(1)}%`;
    const mark = trial === t.best ? ' **best**' : trial === t.default ? ' (default)' : '';
    console.log(`| ${trial.config.composite}${mark} | ${trial.config.target} | ${trial.config.aggregation} | ${trial.auc.toFixed(4)} | ${at(0.3)} | ${at(0.5)} | ${at(0.7)} |`);
  }
  console.log(`\nTotal time ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
  await engine.dispose();
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
