/**
 * AttnLRP's input-perturbation faithfulness test (src/circuits/discovery/perturbation.ts): MoRF and LeRF
 * token replacement, area between the curves (ABC, logit units, higher = more faithful), for
 * AttnLRP, CP-LRP, gradient × input, integrated gradients and random (3 seeds), on the embedded model (60 held-out IOI
 * prompts, replacement <|endoftext|>) and ../shared/models/stories260k when present (40 greedy
 * 24-token continuations of story openings, replacement <unk>, BOS never replaced).
 * 95 % bootstrap CIs over prompts (2000 resamples, seed 0); method differences by paired bootstrap.
 *
 * Integrated gradients (16 midpoint steps through the plain gradient, Engine.integratedGradients)
 * runs from two baselines: the fully replaced prompt (every token the test may replace set to the
 * replacement token; the point where both curves end) and zero token embeddings (positions kept).
 * Their completeness gaps |Σ IG − (f(x) − f(x'))| are printed under the table.
 *
 * Run: nice -n 10 node --import tsx bench/perturbation.ts   (about 1 minute on 2 cores)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { heldOutIoiTask } from '../src/circuits/tasks/generators';
import { perturbationCurves, tokenScores, type PerturbationMethod } from '../src/circuits/discovery/perturbation';
import { bootstrapMean, formatInterval, meanSem, pairedBootstrapMeanDiff } from '../src/circuits/stats';
import { loadTaskFile } from '../src/circuits/tasks/tasks';

const METHODS = ['attnlrp', 'cp-lrp', 'gradient', 'integrated-gradients', 'ig-64', 'ig-zero'] as const;
const LABEL: Record<string, string> = {
  attnlrp: 'AttnLRP',
  'cp-lrp': 'CP-LRP',
  gradient: 'gradient × input',
  'integrated-gradients': 'IG, replaced-prompt baseline, 16 steps',
  'ig-64': 'IG, replaced-prompt baseline, 64 steps',
  'ig-zero': 'IG, zero baseline, 16 steps',
};
const opts = { resamples: 2000, seed: 0 };
const OPENINGS = [
  'Once upon a time', 'One day, a little girl', 'Tom and his dog', 'There was a big tree', 'Lily wanted to play',
  'The sun was shining', 'A small bird', 'Mom said', 'Ben had a red ball', 'In the park',
  'The cat saw', 'Sam was sad because', 'One morning', 'The little boy', 'Sue found a box',
  'It was a rainy day', 'The dog ran', 'Anna liked to', 'Once there was a', 'The kids went',
];

async function run(label: string, engine: Engine, prompts: number[][], replacement: number, from: number): Promise<void> {
  const abc = new Map<string, number[]>();
  const gaps = new Map<string, { gap: number[]; difference: number[] }>();
  for (const method of [...METHODS, 'random-0', 'random-1', 'random-2']) {
    const m: PerturbationMethod = method.startsWith('random') ? 'random' : method.startsWith('ig-') ? 'integrated-gradients' : (method as PerturbationMethod);
    const started = Date.now();
    const ig = { baseline: method === 'ig-zero' ? ('zero' as const) : { replacement, from }, steps: method === 'ig-64' ? 64 : 16 };
    const { scores, targets, completenessGap, explainedDifference } = await tokenScores(engine, prompts, m, m === 'random' ? Number(method.split('-')[1]) : 0, ig);
    if (completenessGap) gaps.set(method, { gap: completenessGap, difference: explainedDifference! });
    console.error(`${label}: ${method} scored in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const values: number[] = [];
    for (let i = 0; i < prompts.length; i++) values.push((await perturbationCurves(engine, prompts[i]!, scores[i]!, targets[i]!, replacement, from)).abc);
    abc.set(method, values);
  }
  console.log(`\n### ${label}: ${prompts.length} prompts, ${prompts[0]!.length} tokens (first), top-1 logit explained\n`);
  console.log('| method | ABC (logit units) | − random (paired) |');
  console.log('|---|---|---|');
  const random = abc.get('random-0')!.map((_, i) => (abc.get('random-0')![i]! + abc.get('random-1')![i]! + abc.get('random-2')![i]!) / 3);
  for (const method of METHODS) {
    console.log(`| ${LABEL[method]} | ${formatInterval(bootstrapMean(abc.get(method)!, opts))} | ${formatInterval(pairedBootstrapMeanDiff(abc.get(method)!, random, opts))} |`);
  }
  const seeds = meanSem(['random-0', 'random-1', 'random-2'].map((k) => abc.get(k)!.reduce((s, v) => s + v, 0) / prompts.length));
  console.log(`| random (3 seeds) | ${seeds.mean.toFixed(3)} ± ${seeds.sem.toFixed(3)} (mean ± SEM over seeds) | – |`);
  const diff = (a: string, b: string) => `${LABEL[a]} − ${LABEL[b]}: ${formatInterval(pairedBootstrapMeanDiff(abc.get(a)!, abc.get(b)!, opts))}`;
  const pairs: [string, string][] = [
    ['attnlrp', 'cp-lrp'], ['attnlrp', 'gradient'], ['attnlrp', 'integrated-gradients'], ['cp-lrp', 'integrated-gradients'],
    ['integrated-gradients', 'gradient'], ['ig-64', 'integrated-gradients'], ['integrated-gradients', 'ig-zero'],
  ];
  console.log(`\nPaired bootstrap differences:\n${pairs.map(([a, b]) => `- ${diff(a, b)}`).join('\n')}`);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  console.log(`\nIntegrated gradients completeness, |Σ IG − (f(x) − f(x'))| in logit units (relative: / |f(x) − f(x')|):`);
  for (const [method, { gap, difference }] of gaps) {
    const abs = gap.map(Math.abs);
    const rel = gap.map((g, i) => Math.abs(g) / Math.abs(difference[i]!));
    console.log(`- ${LABEL[method]}: mean ${mean(abs).toFixed(4)}, max ${Math.max(...abs).toFixed(4)}; relative median ${pct(median(rel))}, max ${pct(Math.max(...rel))}; mean |f(x) − f(x')| ${mean(difference.map(Math.abs)).toFixed(2)}`);
  }
}

const pct = (x: number) => `${(100 * x).toPrecision(2)} %`;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const calibration = loadTaskFile(path.join(folder, 'ioi.jsonl'));
  const ioi = heldOutIoiTask(engine.tokenizer!, 60, calibration.examples.map((e) => e.prompt ?? ''));
  await run('embedded tiny-ioi-gpt2 (held-out IOI prompts)', engine, ioi.examples.map((e) => [...e.ids]), 2087, 0);
  await engine.dispose();

  const stories = path.resolve(__dirname, '..', '..', 'shared', 'models', 'stories260k');
  if (!fs.existsSync(stories)) {
    console.log('\n../shared/models/stories260k is not present: the second model is skipped.');
    return;
  }
  const s = await Engine.load(stories);
  const tok = s.tokenizer!;
  const prompts: number[][] = [];
  for (const opening of OPENINGS.concat(OPENINGS.map((o) => `${o} and`))) {
    const ids = [...tok.encodeIds(opening)];
    while (ids.length < 24) {
      const [row] = await s.forward({ ids: [ids] });
      let best = 0;
      for (let v = 1; v < row!.logitsLast.length; v++) if (row!.logitsLast[v]! > row!.logitsLast[best]!) best = v;
      ids.push(best);
    }
    prompts.push(ids);
  }
  const from = prompts[0]![0] === 1 ? 1 : 0; // Llama BOS (id 1) stays in place
  await run('stories260k (greedy story continuations)', s, prompts, 0, from);
  await s.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
