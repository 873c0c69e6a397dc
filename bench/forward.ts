/**
 * Forward-pass benchmark: tokens/s and peak RSS per model × prompt length, each in its own
 * process (median of `--runs` after `--warmup`; the first call compiles the graph and opens
 * the ONNX Runtime session and is reported separately).
 *
 *     node --import tsx bench/forward.ts [--models embedded,gpt2-small] [--tokens 32,128]
 *         [--runs 7] [--warmup 2] [--threads 2] [--min-time-ms 3000] [--no-json]
 */
import { fmt, loadavgLine, machine, markdownTable, parseArgs, resolveModel, runChild, writeResults, type BenchArgs } from './common';
import type { MeasureRequest, MeasureResult } from './measure';

export interface ForwardRow {
  readonly model: string;
  readonly label: string;
  readonly result: MeasureResult;
}

export async function runForward(args: BenchArgs): Promise<{ rows: ForwardRow[]; table: string; machine: Record<string, unknown> }> {
  const rows: ForwardRow[] = [];
  for (const key of args.models) {
    const model = resolveModel(key);
    for (const tokens of args.tokens) {
      const request: MeasureRequest = { folder: model.folder, tokens, attribution: false, runs: args.runs, warmup: args.warmup, threads: args.threads, minTimeMs: args.minTimeMs };
      const result = await runChild<MeasureResult>(request);
      rows.push({ model: model.key, label: model.label, result });
      console.error(`[forward] ${model.key} T=${tokens}: ${fmt(result.forward.medianMs)} ms, peak RSS ${fmt(result.peakRssMiB, 0)} MiB`);
    }
  }
  const table = markdownTable(
    ['model', 'tokens', 'forward median ms (min–max)', 'tokens/s', 'first call ms', 'load ms', 'peak RSS MiB', 'load avg (1 min) during'],
    rows.map(({ model, result: r }) => [
      model,
      r.tokens,
      `${fmt(r.forward.medianMs)} (${fmt(r.forward.minMs)}–${fmt(r.forward.maxMs)})`,
      fmt((r.tokens / r.forward.medianMs) * 1000, 0),
      fmt(r.forwardFirstMs, 0),
      fmt(r.loadMs, 0),
      fmt(r.peakRssMiB, 0),
      `${fmt(r.loadavgStart[0], 2)} → ${fmt(r.loadavgEnd[0], 2)}`,
    ]),
  );
  return { rows, table, machine: machine() };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.error(`[forward] ${loadavgLine()}`);
  const res = await runForward(args);
  console.log(`### Forward pass (ONNX Runtime CPU, ${args.threads || 'default'} intra-op threads, median of ${args.runs} runs)\n`);
  console.log(res.table);
  console.log(`\n${loadavgLine()}`);
  if (args.json) console.error(`[forward] wrote ${writeResults('forward', { args, ...res })}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
