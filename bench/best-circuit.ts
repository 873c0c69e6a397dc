/**
 * The best possible k-head circuit, by exhaustive search: every k-subset of heads is kept with
 * all other heads mean-ablated, and scored on the task. It is the ceiling any discovery method
 * can reach at that size, so it tells "the method ranked badly" apart from "no circuit of this
 * size exists". Embedded model; IOI and greater-than; k = 4 (25 % of 16 heads): 1,820 subsets.
 *
 * Run: node --import tsx bench/best-circuit.ts [k]
 */
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { ActivationMeans, activationShape, normalizedFaithfulness, scoreExamples } from '../src/circuits/discovery/faithfulness';
import { mean } from '../src/circuits/metrics';
import { loadTaskFile, type Task } from '../src/circuits/tasks/tasks';

function* subsets(n: number, k: number, start = 0, prefix: number[] = []): Generator<number[]> {
  if (prefix.length === k) {
    yield prefix;
    return;
  }
  for (let i = start; i < n; i++) yield* subsets(n, k, i + 1, [...prefix, i]);
}

async function best(engine: Engine, task: Task, k: number): Promise<void> {
  const { nLayers, nHeads } = engine.spec;
  const heads = Array.from({ length: nLayers * nHeads }, (_, i) => `a${Math.floor(i / nHeads)}.h${i % nHeads}`);
  const ids = task.examples.map((e) => e.ids);
  const means = new ActivationMeans(activationShape(engine.spec));
  const hooked = await engine.forward({ ids, hooks: true });
  hooked.forEach((row, i) => means.add({ length: ids[i]!.length, headZ: row.headZ!, mlpPost: row.mlpPost! }));
  const replacement = ids.map((row) => means.overall(row.length));
  const score = async (ablate: string[]) => {
    const rows = await engine.forward({ ids, ...(ablate.length > 0 && { interventions: { ablate, headReplacement: replacement.map((r) => r.head), neuronReplacement: replacement.map((r) => r.neuron) } }) });
    return mean(scoreExamples(task, rows.map((r) => r.logitsLast)));
  };
  const full = await score([]);
  const empty = await score(heads);
  const ranked: { circuit: string[]; faithfulness: number }[] = [];
  for (const subset of subsets(heads.length, k)) {
    const keep = new Set(subset.map((i) => heads[i]!));
    const value = await score(heads.filter((h) => !keep.has(h)));
    ranked.push({ circuit: [...keep], faithfulness: normalizedFaithfulness(value, empty, full) });
  }
  ranked.sort((a, b) => b.faithfulness - a.faithfulness);
  console.log(`\n### ${task.name}: best ${k}-head circuits of ${ranked.length} (mean ablation; full ${full.toFixed(3)}, all heads ablated ${empty.toFixed(3)})\n`);
  console.log('| rank | circuit | faithfulness |');
  console.log('|--:|---|--:|');
  ranked.slice(0, 5).forEach((r, i) => console.log(`| ${i + 1} | ${r.circuit.join(' ')} | ${r.faithfulness.toFixed(3)} |`));
}

async function main(): Promise<void> {
  const k = Number(process.argv[2] ?? 4);
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  for (const file of ['ioi.jsonl', 'greater_than.jsonl']) await best(engine, loadTaskFile(path.join(folder, file)), k);
  await engine.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
