/**
 * SparC³'s circuit protocol on the embedded model (src/circuits/pruning/pruneCurve.ts): IOI accuracy vs
 * sparsity, structured (heads + MLP neurons, global) and unstructured (MLP up/down weights; global
 * for LRP/gradient/random, row-wise for Wanda), AttnLRP vs Wanda vs gradient vs activation vs
 * random, 3 reference sets of 128 generated IOI prompts (seeds 1, 2, 3; ACDC templates), accuracy
 * on the model's 200 ioi.jsonl prompts, mean ± SEM over the reference sets. The circuit is the
 * sparsest model keeping 90 % of dense accuracy.
 *
 * Run: nice -n 10 node --import tsx bench/prune-curve.ts   (about 3 minutes on 2 cores)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { generateIoiTask } from '../src/circuits/tasks/generators';
import { pruneCurves } from '../src/circuits/pruning/pruneCurve';
import { loadTaskFile } from '../src/circuits/tasks/tasks';

async function main(): Promise<void> {
  const t0 = Date.now();
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const encode = (t: string) => engine.tokenizer!.encodeIds(t);
  const references = [1, 2, 3].map((seed) => generateIoiTask({ count: 128, seed, encode }).examples);
  const evaluation = loadTaskFile(path.join(folder, 'ioi.jsonl')).examples;
  const result = await pruneCurves(engine, { references, evaluation, log: (l) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${l}\n`) });
  console.log(`\nDense IOI accuracy ${result.dense.toFixed(3)} (${evaluation.length} prompts); mean ± SEM over ${references.length} reference sets of 128.\n`);
  for (const mode of ['structured', 'unstructured'] as const) {
    const series = result.series.filter((s) => s.mode === mode);
    const rates = series[0]!.rates;
    console.log(`\n### ${mode} (${mode === 'structured' ? `${series[0]!.total} heads + MLP neurons` : `${series[0]!.total} MLP weights`})\n`);
    console.log(`| method | scope | ${rates.filter((r) => r > 0).map((r) => `${Math.round(r * 100)} %`).join(' | ')} | circuit (≥ 90 % of dense) |`);
    console.log(`|---|---|${rates.filter((r) => r > 0).map(() => '---').join('|')}|---|`);
    for (const s of series) {
      const cells = rates.map((r, i) => (r > 0 ? `${s.mean[i]!.toFixed(3)} ± ${s.sem[i]!.toFixed(3)}` : null)).filter((c) => c !== null);
      console.log(`| ${s.method} | ${s.scope} | ${cells.join(' | ')} | ${Math.round(s.circuitRate * 100)} % pruned, ${s.circuitSize} left |`);
    }
  }
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'prune-curve-latest.json'), JSON.stringify(result, null, 1) + '\n');
  console.log(`\nTotal ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
  await engine.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
