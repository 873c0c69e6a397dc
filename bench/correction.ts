/**
 * Model correction (SparC³ §3.3 Eq. 7, R̄_general − R̄_undesired, MLP neurons removed lowest first)
 * on the embedded model, with every baseline on the same reference sets and 95 % bootstrap CIs.
 *
 * Data (all disjoint):
 * - undesired reference (calibration): toxic rows 0–49 of toxic.jsonl, the five insult tokens'
 *   logits at the last position (250 explained logits);
 * - general reference: 16 windows × 64 tokens from the end of heldout.txt, every position's true
 *   next token (1,008 explained logits, one per sample: `explained: 'per-logit'`);
 * - reported on: insult probability on toxic rows 50–99 (held-out prompts), perplexity on the
 *   first 8,192 tokens of heldout.txt (64 windows), IOI accuracy on the held-out IOI split.
 * CIs: percentile bootstrap over held-out prompts / perplexity windows (2000 resamples, seed 0);
 * random: 3 seeds, mean ± SEM, and the pooled bootstrap interval of each seed is shown for seed 0.
 * The aggregation (mean-abs vs signed-mean, both sides) is chosen on the calibration toxic rows.
 *
 * Run: nice -n 10 node --import tsx bench/correction.ts   (about 4 minutes on 2 cores)
 */
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { correct, undesiredOutputs, type CorrectOptions } from '../src/circuits/pruning/correct';
import { heldOutIoiTask } from '../src/circuits/tasks/generators';
import { calibrationWindows, nextTokenOutputs } from '../src/circuits/pruning/prune';
import { loadTask, perPromptIoi, perPromptProbability, perWindowNll, readTextIds, toxicSplit } from '../src/circuits/pruning/pruneEval';
import { bootstrap, bootstrapMean, formatInterval, meanSem, pairedBootstrapMeanDiff, type Interval } from '../src/circuits/stats';

const COUNT = 48;
const opts = { resamples: 2000, seed: 0 };

async function main(): Promise<void> {
  const t0 = Date.now();
  const log = (line: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}\n`);
  const engine = await Engine.load(embeddedModelPath());
  const folder = engine.folder;
  const heldout = readTextIds(engine, path.join(folder, 'heldout.txt'));
  const evalIds = heldout.slice(0, 64 * 128);
  const calibIds = heldout.slice(heldout.length - 16 * 64);
  const { toxic } = toxicSplit(loadTask(engine, path.join(folder, 'toxic.jsonl')));
  const ref = toxic.slice(0, 50);
  const held = toxic.slice(50, 100);
  const calibrationIoi = loadTask(engine, path.join(folder, 'ioi.jsonl'));
  const ioi = heldOutIoiTask(engine.tokenizer!, 200, calibrationIoi.examples.map((e) => e.prompt ?? '')).examples;
  const general = nextTokenOutputs(calibrationWindows(calibIds, { windows: 16, windowLength: 64 }));
  const undesired = undesiredOutputs(ref);

  interface Measured { refInsult: number; insult: number[]; nll: { nll: number[]; count: number[] }; ioi: number[] }
  const measure = async (e: Engine): Promise<Measured> => ({
    refInsult: mean(await perPromptProbability(e, ref)),
    insult: await perPromptProbability(e, held),
    nll: await perWindowNll(e, evalIds),
    ioi: (await perPromptIoi(e, ioi)).correct,
  });
  const run = async (label: string, options: Partial<CorrectOptions>): Promise<Measured> => {
    const started = Date.now();
    const r = await correct(engine, { undesired, general, unit: 'neurons', count: COUNT, ...options });
    const corrected = engine.withWeights(r.weights);
    try {
      const m = await measure(corrected);
      log(`${label}: ${((Date.now() - started) / 1000).toFixed(1)} s, calibration insult ${m.refInsult.toFixed(4)}, held-out ${mean(m.insult).toFixed(4)}`);
      return m;
    } finally {
      await corrected.dispose();
    }
  };
  const dense = await measure(engine);
  const ppl = (m: Measured): Interval => bootstrap(m.nll.nll.length, (idx) => Math.exp(idx.reduce((s, i) => s + m.nll.nll[i]!, 0) / idx.reduce((s, i) => s + m.nll.count[i]!, 0)), opts);

  // Default choice on the calibration toxic rows: the aggregation used on both sides.
  const candidates = {
    'mean-abs': await run('attnlrp mean-abs', { method: 'attnlrp', aggregation: 'mean-abs' }),
    'signed-mean': await run('attnlrp signed-mean', { method: 'attnlrp', aggregation: 'signed-mean' }),
  };
  const chosenAgg = candidates['mean-abs'].refInsult <= candidates['signed-mean'].refInsult ? 'mean-abs' : 'signed-mean';
  const rows: [string, Measured][] = [
    [`AttnLRP, Eq. 7, per-logit, mean-abs both sides`, candidates['mean-abs']],
    [`AttnLRP, Eq. 7, per-logit, signed-mean both sides`, candidates['signed-mean']],
    [`AttnLRP, old: per-sample windows, general mean-abs / toxic signed-mean, L1-normalised`, await run('old', { method: 'attnlrp', explained: 'per-sample', generalAggregation: 'mean-abs', undesiredAggregation: 'signed-mean', normalize: 'l1' })],
    [`AttnLRP, Eq. 7 without per-logit samples (windows), ${chosenAgg}`, await run('per-sample', { method: 'attnlrp', explained: 'per-sample', aggregation: chosenAgg })],
    [`CP-LRP, Eq. 7, per-logit, ${chosenAgg}`, await run('cp-lrp', { method: 'cp-lrp', aggregation: chosenAgg })],
    [`gradient × activation, Eq. 7, per-logit, ${chosenAgg}`, await run('gradient', { method: 'gradient', aggregation: chosenAgg })],
    [`Wanda-style |W|·RMS(x), Eq. 7`, await run('wanda', { method: 'wanda' })],
  ];
  const randoms: Measured[] = [];
  for (const seed of [0, 1, 2]) randoms.push(await run(`random seed ${seed}`, { method: 'random', seed }));

  console.log(`\n### Correction: removing ${COUNT} of 2,048 MLP neurons (embedded model)\n`);
  console.log(`Aggregation chosen on the 50 calibration toxic prompts: ${chosenAgg} (insult probability after removal ${candidates['mean-abs'].refInsult.toFixed(4)} mean-abs vs ${candidates['signed-mean'].refInsult.toFixed(4)} signed-mean).\n`);
  console.log('| method | insult probability, 50 held-out toxic prompts | perplexity (64 windows) | Δ perplexity vs dense (paired) | IOI accuracy (200 held-out prompts) |');
  console.log('|---|---|---|---|---|');
  const pplOf = (m: Measured, idx: readonly number[]) => Math.exp(idx.reduce((s, i) => s + m.nll.nll[i]!, 0) / idx.reduce((s, i) => s + m.nll.count[i]!, 0));
  const dppl = (m: Measured) => bootstrap(m.nll.nll.length, (idx) => pplOf(m, idx) - pplOf(dense, idx), opts);
  const line = (label: string, m: Measured) =>
    console.log(`| ${label} | ${formatInterval(bootstrapMean(m.insult, opts), 4)} | ${formatInterval(ppl(m), 3)} | ${m === dense ? '–' : formatInterval(dppl(m), 3)} | ${formatInterval(bootstrapMean(m.ioi, opts), 3)} |`);
  line('none (dense)', dense);
  for (const [label, m] of rows) line(label, m);
  const rs = (f: (m: Measured) => number) => meanSem(randoms.map(f));
  console.log(
    `| random (3 seeds, mean ± SEM) | ${rs((m) => mean(m.insult)).mean.toFixed(4)} ± ${rs((m) => mean(m.insult)).sem.toFixed(4)} | ${rs((m) => ppl(m).estimate).mean.toFixed(3)} ± ${rs((m) => ppl(m).estimate).sem.toFixed(3)} | ${rs((m) => dppl(m).estimate).mean.toFixed(3)} ± ${rs((m) => dppl(m).estimate).sem.toFixed(3)} | ${rs((m) => mean(m.ioi)).mean.toFixed(3)} ± ${rs((m) => mean(m.ioi)).sem.toFixed(3)} |`,
  );
  const best = rows[chosenAgg === 'mean-abs' ? 0 : 1]![1];
  console.log(`\nPaired bootstrap, held-out insult probability, chosen AttnLRP − CP-LRP: ${formatInterval(pairedBootstrapMeanDiff(best.insult, rows[4]![1].insult, opts), 4)}; − gradient: ${formatInterval(pairedBootstrapMeanDiff(best.insult, rows[5]![1].insult, opts), 4)}; − Wanda: ${formatInterval(pairedBootstrapMeanDiff(best.insult, rows[6]![1].insult, opts), 4)}.`);
  console.log(`Total ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
  await engine.dispose();
}

const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
