/**
 * Where the time goes: compiles the engine's forward and attribution graphs itself (same
 * compileGraph as the engine) and runs them on sessions with ONNX Runtime's profiler on,
 * optionally with other session options than the engine's, then sums node time per op type
 * and lists the slowest nodes.
 *
 *     node --import tsx bench/profile.ts [--model gpt2-small|embedded|DIR] [--tokens 128]
 *         [--threads 2] [--opt all|extended|basic|disabled] [--runs 3] [--mode attnlrp]
 *         [--no-profile]   (timings only, to compare session options without profiler overhead)
 *
 * Does not touch the engine: it is a read-only look at the graphs the engine would run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Composite } from '../src/engine/api';
import { compileGraph, type GraphOptions } from '../src/engine/build';
import { loadModelFolder } from '../src/models/load';
import { fmt, loadavgLine, markdownTable, randomIds, resolveModel, stats } from './common';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; output_size?: string };
}

function arg(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const model = resolveModel(arg(argv, '--model', 'gpt2-small'));
  const T = Number(arg(argv, '--tokens', '128'));
  const threads = Number(arg(argv, '--threads', '2'));
  const opt = arg(argv, '--opt', 'all') as 'all' | 'extended' | 'basic' | 'disabled';
  const runs = Number(arg(argv, '--runs', '3'));
  const mode = arg(argv, '--mode', 'attnlrp') as Composite;
  const profile = !argv.includes('--no-profile');
  console.log(`profile: ${model.key}, T=${T}, threads=${threads}, graphOptimizationLevel=${opt}, profiler ${profile ? 'on' : 'off'}; ${loadavgLine()}`);

  const loaded = loadModelFolder(model.folder);
  const V = loaded.spec.vocabSize;
  const ids = BigInt64Array.from(randomIds(T, V), (x) => BigInt(x));
  const seed = new Float32Array(V);
  seed[0] = 1;
  const seedPosition = new Float32Array(T);
  seedPosition[T - 1] = 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-profile-'));

  const variants: { name: string; options: GraphOptions; feeds: () => Record<string, ort.Tensor> }[] = [
    { name: 'forward', options: { composite: null, interventions: false, hooks: false, weightRelevance: [] }, feeds: () => ({ input_ids: new ort.Tensor('int64', ids, [1, T]) }) },
    {
      name: `attribution (${mode})`,
      options: { composite: mode, interventions: false, hooks: false, weightRelevance: [] },
      feeds: () => ({ input_ids: new ort.Tensor('int64', ids, [1, T]), seed: new ort.Tensor('float32', seed, [1, V]), seed_position: new ort.Tensor('float32', seedPosition, [1, T]) }),
    },
  ];
  const summary: (string | number)[][] = [];
  for (const v of variants) {
    let t = performance.now();
    const graph = compileGraph(loaded.spec, loaded.weights, v.options);
    const compileMs = performance.now() - t;
    t = performance.now();
    const session = await ort.InferenceSession.create(graph.model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: opt,
      externalData: graph.externalData,
      ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
      interOpNumThreads: 1,
      enableProfiling: profile,
      profileFilePrefix: path.join(dir, v.name.split(' ')[0]!),
    });
    const sessionMs = performance.now() - t;
    await session.run(v.feeds()); // warm-up
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      t = performance.now();
      await session.run(v.feeds());
      times.push(performance.now() - t);
    }
    const s = stats(times);
    summary.push([v.name, graph.nodeCount, fmt(compileMs, 0), fmt(sessionMs, 0), fmt(s.medianMs), `${fmt(s.minMs)}–${fmt(s.maxMs)}`]);
    if (profile) {
      session.endProfiling(); // writes <prefix>_<timestamp>.json
      const prefix = v.name.split(' ')[0]!;
      const file = fs.readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.json'));
      if (!file) throw new Error(`no profile file in ${dir}`);
      const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
      // The first (warm-up) run is in the trace too: keep node events of the timed runs only
      // by scaling with the run count; per-op shares are what matters.
      const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
      const total = nodes.reduce((a, e) => a + e.dur, 0);
      const byOp = new Map<string, { us: number; count: number }>();
      const byNode = new Map<string, { us: number; op: string }>();
      for (const e of nodes) {
        const op = e.args?.op_name ?? '?';
        const o = byOp.get(op) ?? { us: 0, count: 0 };
        o.us += e.dur;
        o.count++;
        byOp.set(op, o);
        const n = e.name.replace(/_kernel_time$/, '');
        const b = byNode.get(n) ?? { us: 0, op };
        b.us += e.dur;
        byNode.set(n, b);
      }
      const perRun = runs + 1;
      // Backward nodes: those the tape emits carry g_ / aT / bT hints.
      const backward = [...byNode.entries()].filter(([n]) => /(^|_)g_|n_(aT|bT)|g_scaled/.test(n)).reduce((a, [, x]) => a + x.us, 0);
      console.log(`\n#### ${v.name}: ${graph.nodeCount} ONNX nodes before optimisation, ${byNode.size} kernels after; kernel time ${fmt(total / perRun / 1000)} ms/run (wall ${fmt(s.medianMs)} ms); nodes named as backward: ${fmt((100 * backward) / total, 0)}%\n`);
      console.log(
        markdownTable(
          ['op type', 'ms/run', 'share', 'kernels/run'],
          [...byOp.entries()]
            .sort((a, b) => b[1].us - a[1].us)
            .slice(0, 14)
            .map(([op, o]) => [op, fmt(o.us / perRun / 1000, 2), `${fmt((100 * o.us) / total, 1)}%`, fmt(o.count / perRun, 0)]),
        ),
      );
      console.log('\nslowest kernels:\n');
      console.log(
        markdownTable(
          ['kernel', 'op', 'ms/run'],
          [...byNode.entries()]
            .sort((a, b) => b[1].us - a[1].us)
            .slice(0, 12)
            .map(([n, o]) => [n, o.op, fmt(o.us / perRun / 1000, 2)]),
        ),
      );
    }
    await session.release();
  }
  console.log(`\n${markdownTable(['graph', 'nodes', 'compile ms', 'session create ms', 'median run ms', 'min–max'], summary)}`);
  console.log(`\n${loadavgLine()}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
