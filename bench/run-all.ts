/**
 * Runs every benchmark in turn (forward, then attribution with the PyTorch oracle when
 * available), prints one Markdown table per benchmark and writes bench/results/all-*.json.
 *
 *     node --import tsx bench/run-all.ts [same options as forward.ts / attribution.ts]
 */
import * as os from 'node:os';
import { runAttribution } from './attribution';
import { loadavgLine, machine, parseArgs, resolveModel, writeResults } from './common';
import { runForward } from './forward';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const start = machine();
  args.models.forEach(resolveModel); // generates the GPT-2-small model first if it is missing
  console.log(`## Circuit Lens benchmarks\n`);
  console.log(`${start.cpus} × ${start.cpuModel}, ${start.memGiB} GiB, Node ${start.node}, onnxruntime-node ${start.onnxruntimeNode}; ${loadavgLine()} at start.`);
  if (os.loadavg()[0]! > 0.5 * os.cpus().length) console.log(`**Note:** the machine is busy (load ${os.loadavg()[0]!.toFixed(2)}): figures are pessimistic and noisy.`);
  const forward = await runForward(args);
  console.log(`\n### Forward pass (${args.threads || 'default'} intra-op threads, median after ${args.warmup} warm-up calls, ≥ ${args.runs} runs and ≥ ${args.minTimeMs} ms per cell)\n`);
  console.log(forward.table);
  console.log(`\n${loadavgLine()}`);
  const attribution = await runAttribution(args);
  console.log(`\n### Attribution (AttnLRP) vs forward (alternating runs in one process)\n`);
  console.log(attribution.tables[0]);
  if (attribution.tables[1]) console.log(`\n### Versus the PyTorch-eager oracle (${args.threads || os.cpus().length} torch threads)\n\n${attribution.tables[1]}`);
  console.log(`\nPyTorch oracle: ${attribution.oracle}`);
  console.log(attribution.goal.map((g) => `- ${g}`).join('\n'));
  console.log(`\n${loadavgLine()} at the end.`);
  if (args.json) console.error(`[run-all] wrote ${writeResults('all', { args, machineAtStart: start, forward, attribution })}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
