/**
 * Prompt-graph benchmark: one 32-token prompt graph (default thresholds 0.8 / 0.98, AttnLRP,
 * target = the model's top token at the last position) against one attribution of the same
 * prompt, on the embedded model and the GPT-2-small-sized random model. Each model runs in its
 * own process so peak RSS belongs to it. Goal from issue 15: graph ≤ 20 × one attribution.
 *
 * Run: node --import tsx bench/prompt-graph.ts [--models embedded,gpt2-small] [--runs 3]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../src/engine/engine';
import { buildPromptGraph } from '../src/circuits/prompt/promptGraph';
import { randomIds, resolveModel } from './common';

const T = 32;

async function seconds<R>(fn: () => Promise<R>): Promise<[R, number]> {
  const started = process.hrtime.bigint();
  const result = await fn();
  return [result, Number(process.hrtime.bigint() - started) / 1e9];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function one(key: string, runs: number): Promise<void> {
  const model = resolveModel(key);
  const engine = await Engine.load(model.folder, { threads: 2 });
  // Real text on the embedded model (its own held-out file), random ids on the random model.
  const heldout = path.join(model.folder, 'heldout.txt');
  const ids = fs.existsSync(heldout) && engine.tokenizer ? engine.tokenizer.encodeIds(fs.readFileSync(heldout, 'utf8').slice(0, 2000)).slice(0, T) : randomIds(T, engine.spec.vocabSize);
  const [row] = await engine.forward({ ids: [ids] });
  const token = row!.logitsLast.reduce((best, x, i, all) => (x > all[best]! ? i : best), 0);
  const target = { kind: 'logit' as const, position: T - 1, token };
  const attribute = () => engine.attribute({ ids: [ids], targets: [target], mode: 'attnlrp', neurons: false });
  const [, attributionCold] = await seconds(attribute);
  const attributionTimes: number[] = [];
  for (let i = 0; i < Math.max(5, runs); i++) attributionTimes.push((await seconds(attribute))[1]);
  const [graph, graphCold] = await seconds(() => buildPromptGraph(engine, ids, target));
  const graphTimes: number[] = [];
  for (let i = 0; i < runs; i++) graphTimes.push((await seconds(() => buildPromptGraph(engine, ids, target)))[1]);
  const a = median(attributionTimes);
  const g = median(graphTimes);
  const s = graph.selection;
  console.log(
    JSON.stringify({
      model: model.label,
      tokens: T,
      attribution_ms: +(a * 1000).toFixed(1),
      attribution_first_ms: +(attributionCold * 1000).toFixed(0),
      graph_ms: +(g * 1000).toFixed(0),
      graph_first_ms: +(graphCold * 1000).toFixed(0),
      ratio: +(g / a).toFixed(1),
      candidates: s.candidates,
      kept_nodes: s.keptNodes,
      computed_edges: s.computedEdges,
      kept_edges: s.keptEdges,
      completeness: +graph.metrics.completeness.toFixed(3),
      conservation_relative_error: graph.conservation.relativeError,
      peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
  await engine.dispose();
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flag = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i === -1 ? fallback : argv[i + 1]!;
  };
  const runs = Number(flag('--runs', '3'));
  if (argv.includes('--one')) return one(flag('--one', 'embedded'), runs);
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ${os.cpus().length} cores`);
  const rows: Record<string, unknown>[] = [];
  for (const key of flag('--models', 'embedded,gpt2-small').split(',')) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--one', key, '--runs', String(runs)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.status !== 0) throw new Error(`${key}: exit ${child.status}`);
    rows.push(JSON.parse(child.stdout.trim().split('\n').pop()!));
  }
  console.log('\n| model | tokens | attribution | prompt graph | ratio | kept nodes | edges kept / computed | peak RSS |');
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    console.log(`| ${r.model} | ${r.tokens} | ${r.attribution_ms} ms | ${r.graph_ms} ms (first ${r.graph_first_ms} ms) | ${r.ratio} × | ${r.kept_nodes} of ${r.candidates} | ${r.kept_edges} / ${r.computed_edges} | ${r.peak_rss_mib} MiB |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
