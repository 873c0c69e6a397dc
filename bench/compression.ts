/**
 * Compression with error bars (SparC³ Tab. 1 protocol at this scale): row-wise unstructured
 * pruning of every decoder-block linear weight at 50 % and 70 %, AttnLRP (per-window samples,
 * mean-abs) vs Wanda vs gradient vs magnitude, 3 calibration seeds (each: 32 of the 53 windows
 * of 64 tokens from the end of heldout.txt, drawn with that seed), perplexity on the first 8,192
 * tokens (64 windows of 128). Reported: mean ± SEM over the calibration seeds (as SparC³), and
 * for seed 0 the paired bootstrap over evaluation windows of AttnLRP − each baseline.
 *
 * Run: nice -n 10 node --import tsx bench/compression.ts   (about 2 minutes on 2 cores)
 */
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { Random } from '../src/circuits/prng';
import { applyMask, rowwiseMask, weightScores } from '../src/circuits/pruning/prune';
import type { PruneMethod } from '../src/vocabulary';
import { perWindowNll, readTextIds } from '../src/circuits/pruning/pruneEval';
import { bootstrap, formatInterval, meanSem } from '../src/circuits/stats';

const METHODS: PruneMethod[] = ['attnlrp', 'wanda', 'gradient', 'magnitude'];
const SPARSITIES = [0.5, 0.7];

async function main(): Promise<void> {
  const t0 = Date.now();
  const engine = await Engine.load(embeddedModelPath());
  const heldout = readTextIds(engine, path.join(engine.folder, 'heldout.txt'));
  const evalIds = heldout.slice(0, 64 * 128);
  const rest = heldout.slice(64 * 128);
  const all = Array.from({ length: Math.floor(rest.length / 64) }, (_, i) => rest.slice(i * 64, (i + 1) * 64));
  const ppl = (w: { nll: number[]; count: number[] }, idx: readonly number[]) => Math.exp(idx.reduce((s, i) => s + w.nll[i]!, 0) / idx.reduce((s, i) => s + w.count[i]!, 0));
  const results = new Map<string, { nll: number[]; count: number[] }[]>(); // method@sparsity → per seed
  for (const seed of [0, 1, 2]) {
    const windows = new Random(seed).sample(all, 32);
    const stream = windows.flat();
    for (const method of METHODS) {
      const scores = await weightScores(engine, stream, { method, windows: 32, windowLength: 64 });
      for (const s of SPARSITIES) {
        const pruned = engine.withWeights(applyMask(engine, rowwiseMask(scores, s)));
        try {
          const key = `${method}@${s}`;
          results.set(key, [...(results.get(key) ?? []), await perWindowNll(pruned, evalIds)]);
        } finally {
          await pruned.dispose();
        }
      }
    }
    process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] calibration seed ${seed} done\n`);
  }
  const dense = await perWindowNll(engine, evalIds);
  const every = dense.nll.map((_, i) => i);
  console.log(`\n### Row-wise compression, embedded model: perplexity on 64 evaluation windows (dense ${ppl(dense, every).toFixed(3)})\n`);
  console.log(`| method | ${SPARSITIES.map((s) => `${s * 100} % (mean ± SEM, 3 seeds)`).join(' | ')} | ${SPARSITIES.map((s) => `AttnLRP − method at ${s * 100} % (seed 0, paired)`).join(' | ')} |`);
  console.log(`|---|${SPARSITIES.map(() => '---').join('|')}|${SPARSITIES.map(() => '---').join('|')}|`);
  for (const method of METHODS) {
    const cells = SPARSITIES.map((s) => {
      const m = meanSem(results.get(`${method}@${s}`)!.map((w) => ppl(w, every)));
      return `${m.mean.toFixed(3)} ± ${m.sem.toFixed(3)}`;
    });
    const diffs = SPARSITIES.map((s) => {
      if (method === 'attnlrp') return '–';
      const a = results.get(`attnlrp@${s}`)![0]!;
      const b = results.get(`${method}@${s}`)![0]!;
      return formatInterval(bootstrap(a.nll.length, (idx) => ppl(a, idx) - ppl(b, idx), { resamples: 2000, seed: 0 }), 3);
    });
    console.log(`| ${method} | ${cells.join(' | ')} | ${diffs.join(' | ')} |`);
  }
  console.log(`\nTotal ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
  await engine.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
