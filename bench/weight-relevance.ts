/**
 * Weight-relevance benchmark (pruning's cost): R_W = W ⊙ g̃_W for every decoder-block linear
 * weight, aggregated over 32 calibration sequences of 64 tokens (each sequence one sample, all
 * its next-token logits explained in one backward pass). Embedded model and the
 * GPT-2-small-sized random model (bench/make-gpt2-small-random.ts); wall time and peak RSS,
 * each model in its own child process.
 *
 * Run: node --import tsx bench/weight-relevance.ts
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { calibrationWindows, weightScores } from '../src/circuits/pruning/prune';

async function measure(folder: string, batchRows: number): Promise<void> {
  const engine = await Engine.load(folder);
  // Token ids only matter for the cost; a fixed pseudo-random stream keeps runs comparable.
  const stream = Array.from({ length: 32 * 64 }, (_, i) => (i * 2654435761) % engine.spec.vocabSize);
  const started = process.hrtime.bigint();
  const scores = await weightScores(engine, stream, { method: 'attnlrp', windows: 32, windowLength: 64, batchRows });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const weights = [...scores.scores.values()].reduce((n, s) => n + s.length, 0);
  process.stdout.write(JSON.stringify({ model: path.basename(folder), seconds, weights, tensors: scores.scores.size, peakRssMiB: process.resourceUsage().maxRSS / 1024, windows: calibrationWindows(stream, { windows: 32, windowLength: 64 }).length }) + '\n');
  await engine.dispose();
}

async function main(): Promise<void> {
  const [, , child, folder, batch] = process.argv;
  if (child === '--child') return measure(folder!, Number(batch));
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ${os.cpus().length} cores\n`);
  console.log('| model | linear weights scored | 32 × 64-token sequences | peak RSS |');
  console.log('|---|--:|--:|--:|');
  const small = path.join(__dirname, 'models', 'gpt2-small-random');
  const runs: [string, number][] = [[embeddedModelPath(), 16]];
  if (fs.existsSync(path.join(small, 'model.safetensors'))) runs.push([small, 2]);
  else console.log(`(${small} missing: node --import tsx bench/make-gpt2-small-random.ts)`);
  for (const [folder, batch] of runs) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', __filename, '--child', folder, String(batch)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    console.log(`| ${r.model} | ${r.weights.toLocaleString('en')} in ${r.tensors} tensors | ${r.seconds.toFixed(1)} s | ${r.peakRssMiB.toFixed(0)} MiB |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
