/**
 * One in-process measurement for bench/scale.ts, in its own process so its peak RSS is its own.
 *
 *     node --import tsx bench/scale-child.ts '{"kind":"curve","folder":"…","tokens":512,"runs":2,"cacheDir":null}'
 *
 * kinds
 *   curve  forward or attribution (AttnLRP, last position, token 0) time at one length, the
 *          memory guard's estimates, and the process's peak RSS.
 *   edges  the full head/MLP edge graph of one prompt vs one attribution of it (warm), both
 *          from one pass (Engine.edges) and with a gated row per node (Engine.edgesGated).
 *   discover  load, one attribution of `tokens` tokens, then head-circuit discovery (AttnLRP,
 *          signed mean, top 8, no verification) over `prompts` synthetic prompts (random ids,
 *          `promptTokens` long, random target and foil: a task file as the CLI reads it); the
 *          time of each phase and the process's peak RSS. The 1 B point of bench/scale.ts.
 *   precision  load with `weightPrecision`, one attribution (AttnLRP, last position, token 0):
 *          time (first and warm), peak RSS, and the token and head relevance, for the error.
 * Prints one JSON line on stdout.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { discover } from '../src/pipelines/circuits';
import { Engine } from '../src/engine/engine';
import { estimateModelBytes, estimateRunBytes } from '../src/engine/memory';
import { parameterCount } from '../src/models/load';
import { maxRssMiB, randomIds } from './common';

interface ChildRequest {
  readonly kind: 'curve' | 'edges' | 'discover' | 'precision';
  readonly folder: string;
  readonly tokens: number;
  readonly runs: number;
  readonly threads?: number;
  readonly cacheDir: string | null;
  /** Memory-guard cap in bytes (the guard refuses instead of the machine swapping). */
  readonly limitBytes?: number;
  /** curve: which pass this process times (each in its own process, so each peak is its own). */
  readonly what?: 'forward' | 'attribution';
  /** discover: the synthetic task's size and the scoring batch. */
  readonly prompts?: number;
  readonly promptTokens?: number;
  readonly batch?: number;
  /** precision: how the weight matrices are kept (EngineOptions.weightPrecision). */
  readonly weightPrecision?: 'float32' | 'half';
}

const timed = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
/** The first run's time (compile, first allocation) and the median of `runs` warm runs. */
async function firstAndWarm(fn: () => Promise<unknown>, runs: number): Promise<{ firstMs: number; ms: number }> {
  const firstMs = await timed(fn);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timed(fn));
  return { firstMs, ms: median(times) };
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]!) as ChildRequest;
  const loadStart = performance.now();
  const engine = await Engine.load(req.folder, {
    threads: req.threads ?? 0,
    cacheDir: req.cacheDir,
    // The CLI's setting (src/cli/main.ts); the extension's long-lived worker prepacks.
    prepack: false,
    ...(req.weightPrecision ? { weightPrecision: req.weightPrecision } : {}),
    ...(req.limitBytes ? { memory: { share: 1, limitBytes: req.limitBytes } } : {}),
  });
  const ids = [randomIds(req.tokens, engine.spec.vocabSize)];
  const targets = [{ kind: 'logit' as const, position: req.tokens - 1, token: 0 }];
  const attribute = () => engine.attribute({ ids, targets, mode: 'attnlrp', neurons: false });
  const parameters = parameterCount(engine.loaded.weights);
  const base = {
    kind: req.kind,
    tokens: req.tokens,
    parameters,
    loadavg: os.loadavg()[0],
    estimateModelBytes: estimateModelBytes(parameters),
    estimateAttributionBytes: estimateRunBytes(engine.spec, 1, req.tokens, true),
  };
  const loadMs = performance.now() - loadStart;
  if (req.kind === 'discover') {
    const firstMs = await timed(attribute);
    const warmMs = await timed(attribute);
    const afterAttributionMiB = maxRssMiB();
    const V = engine.spec.vocabSize;
    const n = req.prompts ?? 32;
    const len = req.promptTokens ?? 32;
    const taskFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'scale-task-')), 'task.jsonl');
    const lines = Array.from({ length: n }, (_, i) => {
      const promptIds = randomIds(len, V, 1000 + i);
      return JSON.stringify({ prompt_ids: promptIds, target_id: (promptIds[0]! * 7 + 11) % V, foil_id: (promptIds[1]! * 13 + 5) % V });
    });
    fs.writeFileSync(taskFile, lines.join('\n') + '\n');
    const t0 = performance.now();
    const { graph } = await discover(engine, { task: taskFile, method: 'attnlrp', granularity: 'heads', top: 8, verify: false, batchSize: req.batch ?? 4 });
    const discoverMs = performance.now() - t0;
    fs.rmSync(path.dirname(taskFile), { recursive: true, force: true });
    const out = {
      ...base,
      loadMs,
      firstMs,
      warmMs,
      afterAttributionMiB,
      discoverMs,
      prompts: n,
      promptTokens: len,
      batch: req.batch ?? 4,
      estimateDiscoverBytes: estimateRunBytes(engine.spec, req.batch ?? 4, len, true),
      circuit: graph.nodes.filter((node) => node.head !== undefined).map((node) => node.id),
      peakMiB: maxRssMiB(),
    };
    await engine.dispose();
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  if (req.kind === 'precision') {
    const { firstMs, ms } = await firstAndWarm(attribute, req.runs);
    const [r] = await engine.attribute({ ids, targets, mode: 'attnlrp', neurons: false });
    const out = { ...base, half: engine.halfWeights, loadMs, firstMs, ms, peakMiB: maxRssMiB(), tokenRelevance: Array.from(r!.tokenRelevance), headRelevance: r!.headRelevance.flat(), targetValue: r!.targetValue };
    await engine.dispose();
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  if (req.kind === 'curve') {
    const run = req.what === 'forward' ? () => engine.forward({ ids }) : attribute;
    const { firstMs, ms } = await firstAndWarm(run, req.runs);
    const out = { ...base, what: req.what ?? 'attribution', firstMs, ms, estimateForwardBytes: estimateRunBytes(engine.spec, 1, req.tokens, false), peakMiB: maxRssMiB() };
    await engine.dispose();
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  await attribute();
  const a: number[] = [];
  for (let i = 0; i < req.runs; i++) a.push(await timed(attribute));
  const prompt = { ids: ids[0]!, target: targets[0]! };
  await engine.edges([prompt], 'attnlrp'); // compile + warm
  const e: number[] = [];
  let edgeCount = 0;
  for (let i = 0; i < Math.max(1, Math.min(req.runs, 2)); i++) {
    const t0 = performance.now();
    const [res] = await engine.edges([prompt], 'attnlrp');
    e.push(performance.now() - t0);
    edgeCount = res!.edges.length;
  }
  // The gated reference (one forward and backward row per downstream node), once after a warm-up:
  // what Engine.edges cost before it computed the rows locally.
  await engine.edgesGated([prompt], 'attnlrp');
  const t0 = performance.now();
  await engine.edgesGated([prompt], 'attnlrp');
  const gatedMs = performance.now() - t0;
  const { nLayers: L, nHeads: H } = engine.spec;
  const out = { ...base, attributionMs: median(a), edgesMs: median(e), ratio: median(e) / median(a), gatedMs, gatedRatio: gatedMs / median(a), edgeCount, backwardRows: 1 + L * (H + 1), peakMiB: maxRssMiB() };
  await engine.dispose();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: (err as Error).message }) + '\n');
  process.exit(0);
});
