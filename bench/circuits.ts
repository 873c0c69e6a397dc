/**
 * Circuit discovery on the embedded model, every method on the same prompts: IOI (ioi.jsonl,
 * logit difference) and greater-than (greater_than.jsonl, probability difference). For each:
 * a circuit of 25 % of the heads, its faithfulness under mean ablation, what ablating it
 * leaves, CPR/CMD of the faithfulness curve, the Spearman correlation of the per-head scores
 * with single-head zero-ablation drops (IOI, reference.json), and the wall time.
 *
 * Run: node --import tsx bench/circuits.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { discoverCircuit } from '../src/circuits/discover';
import { evaluateCircuit, faithfulnessCurve } from '../src/circuits/faithfulness';
import { circuitComponentIds, selectNodes } from '../src/circuits/graph';
import { spearman } from '../src/circuits/ranking';
import { loadTaskFile } from '../src/circuits/tasks';
import { DISCOVERY_METHODS } from '../src/vocabulary';

async function main(): Promise<void> {
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const reference = JSON.parse(fs.readFileSync(path.join(folder, 'reference.json'), 'utf8'));
  const drops = new Map<string, number>(reference.head_ablation_ioi.map((r: { layer: number; head: number; drop: number }) => [`a${r.layer}.h${r.head}`, r.drop]));
  const heads = Array.from({ length: engine.spec.nLayers * engine.spec.nHeads }, (_, i) => `a${Math.floor(i / engine.spec.nHeads)}.h${i % engine.spec.nHeads}`);
  for (const file of ['ioi.jsonl', 'greater_than.jsonl']) {
    const task = loadTaskFile(path.join(folder, file));
    console.log(`\n### ${task.name} (${task.examples.length} prompts, metric ${task.metric}, mean ablation, 4 of 16 heads)\n`);
    console.log('| method | aggregation | circuit | full | circuit alone | circuit ablated | faithfulness | removed by ablating it | CPR | CMD | Spearman vs ablation | discovery s |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const method of DISCOVERY_METHODS) {
      for (const aggregation of ['mean-abs', 'signed-mean'] as const) {
        const started = Date.now();
        const { graph } = await discoverCircuit(engine, task, { method, aggregation, granularity: 'heads', modelName: 'tiny-ioi-gpt2' });
        const seconds = (Date.now() - started) / 1000;
        // Signed scores rank by value (a head that pushes the metric down is not part of the circuit).
        const chosen = selectNodes(graph, { kind: 'top-k', k: 4 }, { absolute: aggregation !== 'signed-mean' });
        const circuit = circuitComponentIds(chosen);
        const evaluation = await evaluateCircuit(engine, task, circuit, 'mean', heads);
        const ranked = graph.nodes.filter((n) => n.kind === 'head').sort((a, b) => (aggregation === 'signed-mean' ? b.relevance - a.relevance : Math.abs(b.relevance) - Math.abs(a.relevance))).map((n) => n.id);
        const curve = await faithfulnessCurve(engine, task, ranked, 'mean');
        const scores = heads.map((id) => graph.nodes.find((n) => n.id === id)!.relevance);
        const rho = task.name === 'ioi' ? spearman(scores, heads.map((id) => drops.get(id)!)) : NaN;
        const removed = 1 - evaluation.complement / evaluation.full;
        console.log(
          `| ${method} | ${aggregation} | ${circuit.join(' ')} | ${evaluation.full.toFixed(3)} | ${evaluation.circuit.toFixed(3)} | ${evaluation.complement.toFixed(3)} | ${evaluation.faithfulness.toFixed(3)} | ${(removed * 100).toFixed(1)} % | ${curve.cpr.toFixed(3)} | ${curve.cmd.toFixed(3)} | ${Number.isNaN(rho) ? '–' : rho.toFixed(3)} | ${seconds.toFixed(2)} |`,
        );
      }
    }
  }
  await engine.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
