/**
 * Discovery benchmark. (1) 100 IOI prompts on the embedded model: AttnLRP head scores (the
 * `discover` default) and the full edge graph; wall time and peak RSS. (2) One prompt's full
 * head/MLP edge graph on the GPT-2-small-sized random model (bench/make-gpt2-small-random.ts).
 * Goal from the issue: 100-prompt discovery under 5 s on a 2-core machine.
 *
 * Run: node --import tsx bench/discovery.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { scoreComponents, scoreEdges } from '../src/circuits/discovery/discover';
import { loadTaskFile } from '../src/circuits/tasks/tasks';

const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const result = await fn();
  return [result, Number(process.hrtime.bigint() - started) / 1e9];
}

async function main(): Promise<void> {
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ${os.cpus().length} cores`);
  const folder = embeddedModelPath();
  const task = loadTaskFile(path.join(folder, 'ioi.jsonl'));
  const hundred = { ...task, examples: task.examples.slice(0, 100) };
  const [engine, loadSeconds] = await time(() => Engine.load(folder));
  // The first call compiles the graph and opens the session; it is part of a user's first run.
  const [, coldSeconds] = await time(() => scoreComponents(engine, hundred, { method: 'attnlrp' }));
  const [, warmSeconds] = await time(() => scoreComponents(engine, hundred, { method: 'attnlrp' }));
  const [edges, edgeSeconds] = await time(() => scoreEdges(engine, hundred, { method: 'attnlrp' }));
  console.log('\n| embedded model, 100 IOI prompts | seconds |');
  console.log('|---|---|');
  console.log(`| load model | ${loadSeconds.toFixed(2)} |`);
  console.log(`| head + neuron relevance, first run (compiles the graph) | ${coldSeconds.toFixed(2)} |`);
  console.log(`| head + neuron relevance, warm | ${warmSeconds.toFixed(2)} |`);
  console.log(`| full edge graph (${edges.length} edges) | ${edgeSeconds.toFixed(2)} |`);
  console.log(`| peak RSS | ${peakRssMiB().toFixed(0)} MiB |`);
  await engine.dispose();

  const small = path.join(__dirname, 'models', 'gpt2-small-random');
  if (!fs.existsSync(path.join(small, 'model.safetensors'))) {
    console.log(`\n(${small} is missing: run node --import tsx bench/make-gpt2-small-random.ts for the GPT-2-small row)`);
    return;
  }
  const big = await Engine.load(small);
  const ids = Array.from({ length: 32 }, (_, i) => (i * 7919) % big.spec.vocabSize);
  const target = { kind: 'logit' as const, position: ids.length - 1, token: 42 };
  const [, bigCold] = await time(() => big.edges([{ ids, target }], 'attnlrp'));
  const [result, bigWarm] = await time(() => big.edges([{ ids, target }], 'attnlrp'));
  console.log('\n| GPT-2-small-sized random model, one 32-token prompt | value |');
  console.log('|---|---|');
  console.log(`| edges | ${result[0]!.edges.length} (${1 + big.spec.nLayers * (big.spec.nHeads + 1)} backward rows) |`);
  console.log(`| first run (compiles the graph) | ${bigCold.toFixed(2)} s |`);
  console.log(`| warm | ${bigWarm.toFixed(2)} s |`);
  console.log(`| peak RSS | ${peakRssMiB().toFixed(0)} MiB |`);
  await big.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
