/**
 * Scale benchmark (issue 16): every speed and memory figure of README "Speed and memory" in one
 * run.
 *
 *     npm run build            # the fresh-process runs use the bundled CLI, as users run it
 *     node --import tsx bench/make-gpt2-small-random.ts                      # 124M, 1,024 positions
 *     node --import tsx bench/make-gpt2-small-random.ts --positions 2048     # for the 2,048 point
 *     node --import tsx bench/scale.ts [--runs 3] [--tokens 128,256,512,1024,2048]
 *     node --import tsx bench/make-llama-1b-random.ts                        # 1.236 B, 4.6 GiB (the 1 B point)
 *         [--limit-gib 6] [--skip fresh,curve,edges,precision,1b,shards] [--no-json]
 *
 * 1. Fresh-process attribution, 128 tokens, GPT-2-small-sized model: `circuit-lens attribute`
 *    (bundled CLI, new process each time) with an empty graph cache (miss), a filled one (hit)
 *    and none, against the PyTorch-eager oracle in a new process
 *    (bench/oracle-fresh.py over ../shared/reference/oracle), alternating, median of --runs.
 *    Wall time from spawn to exit; peak RSS from /usr/bin/time.
 * 2. Peak RSS against the weights, from the same processes.
 * 3. The prompt-length curve: forward and attribution at each length, peak RSS, and the memory
 *    guard's estimate; lengths whose estimate exceeds --limit-gib are refused by the guard
 *    (reported, not run), so the benchmark never takes the machine down.
 * 4. The full head/MLP edge graph of one 32-token prompt against one attribution of it.
 * 5. Half precision: the F32 model with its matrices rounded to F16, and a BF16 copy of it
 *    (written to bench/models/gpt2-small-random-bf16 when missing) kept as stored, each against
 *    float32: time, peak RSS and the relevance error.
 * 6. The 1 B point: a random Llama-3.2-1B-shaped model loads, attributes 128 tokens and
 *    discovers a head circuit over 32 prompts; time, peak RSS, the memory guard's estimate.
 * 7. Shards: discovery, pruning scores and curves split three ways and merged, against one shard.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { estimateModelBytes, estimateRunBytes } from '../src/engine/memory';
import type { ArchSpec } from '../src/models/spec';
import { loadModelFolder } from '../src/models/load';
import { encodeSafetensors } from '../src/models/safetensors';
import { fmt, loadavgLine, machine, markdownTable, randomIds, torchPython, writeResults } from './common';

const REPO = path.resolve(__dirname, '..');
const ORACLE_DIR = path.resolve(REPO, '..', 'shared', 'reference', 'oracle');
const GPT2 = path.join(__dirname, 'models', 'gpt2-small-random');
const GPT2_2K = path.join(__dirname, 'models', 'gpt2-small-random-2k');
const EMBEDDED = path.join(REPO, 'models', 'tiny-ioi-gpt2');
const LLAMA_1B = path.join(__dirname, 'models', 'llama-1b-random');
/** The GPT-2-small-sized model written as BF16 (made by the precision step when missing). */
const GPT2_BF16 = path.join(__dirname, 'models', 'gpt2-small-random-bf16');
const GiB = 1024 ** 3;

interface Args {
  runs: number;
  tokens: number[];
  limitGiB: number;
  skip: Set<string>;
  json: boolean;
  threads: number;
}

function parse(argv: string[]): Args {
  const args: Args = { runs: 3, tokens: [128, 256, 512, 1024, 2048], limitGiB: 6, skip: new Set(), json: true, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--runs') args.runs = Number(v());
    else if (a === '--tokens') args.tokens = v().split(',').map(Number);
    else if (a === '--limit-gib') args.limitGiB = Number(v());
    else if (a === '--skip') args.skip = new Set(v().split(','));
    else if (a === '--threads') args.threads = Number(v());
    else if (a === '--no-json') args.json = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

interface ProcessRun {
  wallS: number;
  peakMiB: number | null;
  stdout: string;
}

/** Runs a command to completion; wall time from spawn to exit, peak RSS via /usr/bin/time. */
function timedProcess(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessRun> {
  const haveTime = fs.existsSync('/usr/bin/time');
  const rssFile = path.join(os.tmpdir(), `scale-rss-${process.pid}-${Date.now()}`);
  const [exe, args] = haveTime ? ['/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...argv]] : [cmd, argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(exe, args as string[], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallS = (performance.now() - t0) / 1000;
      let peakMiB: number | null = null;
      if (haveTime) {
        peakMiB = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) / 1024;
        fs.rmSync(rssFile, { force: true });
      }
      if (code !== 0) return reject(new Error(`${cmd} ${argv.slice(0, 3).join(' ')} exited with ${code}: ${err.slice(-1500)}`));
      resolve({ wallS, peakMiB, stdout: out });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function fresh(args: Args, lines: string[], results: Record<string, unknown>): Promise<void> {
  const cli = path.join(REPO, 'bin', 'circuit-lens.js');
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run npm run build first');
  const T = 128;
  const ids = randomIds(T, 50257).join(',');
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-cache-'));
  const ours = (cache: string) => timedProcess(process.execPath, [cli, 'attribute', '--model', GPT2, '--ids', ids, '--target-id', '0', '--threads', String(args.threads), '--cache-dir', cache, '--json']);
  const python = torchPython();
  const oracle = () =>
    timedProcess(python!, [path.join(__dirname, 'oracle-fresh.py'), '--oracle-dir', ORACLE_DIR, '--model', GPT2, '--tokens', String(T), '--threads', String(args.threads)]);
  const rows: Record<string, ProcessRun[]> = { miss: [], hit: [], off: [], oracle: [] };
  const oraclePhases: Record<string, number>[] = [];
  for (let r = 0; r < args.runs; r++) {
    fs.rmSync(path.join(cacheDir, 'graphs'), { recursive: true, force: true });
    rows.miss!.push(await ours(cacheDir));
    rows.hit!.push(await ours(cacheDir));
    rows.off!.push(await ours('off'));
    if (python) {
      const o = await oracle();
      rows.oracle!.push(o);
      oraclePhases.push(JSON.parse(o.stdout.trim().split('\n').pop()!) as Record<string, number>);
    }
    console.error(`[scale] fresh run ${r + 1}/${args.runs}: ${Object.entries(rows).map(([k, v]) => `${k} ${fmt(v[r]?.wallS)} s`).join(', ')} (${loadavgLine()})`);
  }
  const cacheBytes = fs.readdirSync(path.join(cacheDir, 'graphs')).reduce((s, k) => s + fs.readdirSync(path.join(cacheDir, 'graphs', k)).reduce((t, f) => t + fs.statSync(path.join(cacheDir, 'graphs', k, f)).size, 0), 0);
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const oracleS = rows.oracle!.length ? median(rows.oracle!.map((r) => r.wallS)) : null;
  const weightsMiB = fs.statSync(path.join(GPT2, 'model.safetensors')).size / 2 ** 20;
  // Activations of one 128-token attribution: the memory guard's fitted estimate (memory.ts).
  const gpt2 = { nLayers: 12, nHeads: 12, dModel: 768, dMlp: 3072, vocabSize: 50257 } as ArchSpec;
  const activationsMiB = estimateRunBytes(gpt2, 1, T, true) / 2 ** 20;
  const label: Record<string, string> = { miss: 'ours, empty graph cache (compile + save)', hit: 'ours, graph cache hit', off: 'ours, no cache (--cache-dir off)', oracle: 'PyTorch-eager oracle' };
  lines.push(`### Fresh-process attribution, GPT-2-small-sized model (124M, weights ${fmt(weightsMiB, 0)} MiB), ${T} tokens, ${args.threads} threads, median of ${args.runs}\n`);
  lines.push(
    markdownTable(
      ['process', 'wall s (median)', 'runs s', 'vs PyTorch', 'peak RSS MiB', 'peak RSS / weights', 'peak RSS / (weights + activations)'],
      Object.entries(rows)
        .filter(([, v]) => v.length > 0)
        .map(([k, v]) => {
          const wall = median(v.map((r) => r.wallS));
          const peak = median(v.map((r) => r.peakMiB ?? NaN));
          return [label[k]!, fmt(wall, 2), v.map((r) => fmt(r.wallS, 1)).join(', '), oracleS ? fmt(wall / oracleS, 2) : '–', fmt(peak, 0), fmt(peak / weightsMiB, 2), fmt(peak / (weightsMiB + activationsMiB), 2)];
        }),
    ),
  );
  if (oraclePhases.length) {
    const ph = (k: string) => fmt(median(oraclePhases.map((p) => p[k]!)), 1);
    lines.push(`\nPyTorch phases (median): import ${ph('import_s')} s, load ${ph('load_s')} s, attribution ${ph('attribution_s')} s. Cache entry on disk: ${fmt(cacheBytes / 2 ** 20, 0)} MiB.`);
  } else lines.push('\nPyTorch oracle: skipped (no python with torch; apt-get install python3-torch python3-numpy).');
  results.fresh = { rows, oraclePhases, weightsMiB, activationsMiB, cacheBytes };
}

function child(request: object): Promise<Record<string, number | string>> {
  return timedProcess(process.execPath, ['--import', 'tsx', path.join(__dirname, 'scale-child.ts'), JSON.stringify(request)]).then((r) => ({
    ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | string>),
    processPeakMiB: r.peakMiB ?? NaN,
  }));
}

async function curve(args: Args, lines: string[], results: Record<string, unknown>): Promise<void> {
  const rows: Record<string, number | string>[] = [];
  for (const T of args.tokens) {
    const folder = T > 1024 ? GPT2_2K : GPT2;
    if (!fs.existsSync(path.join(folder, 'model.safetensors'))) {
      rows.push({ tokens: T, error: `${path.relative(REPO, folder)} is missing (make-gpt2-small-random.ts${T > 1024 ? ' --positions 2048' : ''})` });
      continue;
    }
    const request = { kind: 'curve', folder, tokens: T, runs: T >= 1024 ? 1 : args.runs, threads: args.threads, cacheDir: null, limitBytes: args.limitGiB * GiB };
    const a = await child({ ...request, what: 'attribution' });
    const f = a.error ? a : await child({ ...request, what: 'forward' });
    const row = {
      tokens: T,
      error: a.error ?? f.error ?? '',
      forwardMs: f.ms!,
      attributionMs: a.ms!,
      ratio: (a.ms as number) / (f.ms as number),
      forwardPeakMiB: f.processPeakMiB!,
      attributionPeakMiB: a.processPeakMiB!,
      estimateMiB: ((a.estimateModelBytes as number) + (a.estimateAttributionBytes as number)) / 2 ** 20,
      loadavg: a.loadavg!,
    };
    rows.push(row);
    console.error(`[scale] T=${T}: ${row.error || `attribution ${fmt(row.attributionMs as number, 0)} ms, ratio ${fmt(row.ratio, 2)}, peak ${fmt(row.attributionPeakMiB as number, 0)} MiB`}`);
  }
  lines.push(`\n### Prompt length, GPT-2-small-sized model (2,048 tokens: the same shapes with 2,048 learned positions), memory guard capped at ${args.limitGiB} GiB\n`);
  lines.push(
    markdownTable(
      ['tokens', 'forward ms', 'attribution ms', 'attribution / forward', 'peak RSS forward MiB', 'peak RSS attribution MiB', 'guard estimate MiB', 'estimate / peak', 'note'],
      rows.map((r) =>
        r.error && !Number.isFinite(r.attributionMs as number)
          ? [r.tokens!, '–', '–', '–', '–', '–', '–', '–', String(r.error)]
          : [
              r.tokens!,
              fmt(r.forwardMs as number, 0),
              fmt(r.attributionMs as number, 0),
              fmt(r.ratio as number, 2),
              fmt(r.forwardPeakMiB as number, 0),
              fmt(r.attributionPeakMiB as number, 0),
              fmt(r.estimateMiB as number, 0),
              fmt((r.estimateMiB as number) / (r.attributionPeakMiB as number), 2),
              `${r.error ? String(r.error) + '; ' : ''}load ${fmt(r.loadavg as number, 1)}`,
            ],
      ),
    ),
  );
  results.curve = rows;
}

async function edges(args: Args, lines: string[], results: Record<string, unknown>): Promise<void> {
  const rows: Record<string, number | string>[] = [];
  for (const [name, folder] of [['embedded', EMBEDDED], ['gpt2-small', GPT2]] as const) {
    const r = await child({ kind: 'edges', folder, tokens: 32, runs: args.runs, threads: args.threads, cacheDir: null });
    rows.push({ model: name, ...r });
    console.error(`[scale] edges ${name}: ${r.error ?? `${fmt(r.edgesMs as number, 0)} ms = ${fmt(r.ratio as number, 1)} attributions`}`);
  }
  lines.push('\n### Edge graph (every head/MLP edge) of one 32-token prompt vs one attribution (warm)\n');
  lines.push(
    markdownTable(
      ['model', 'attribution ms', 'edge graph ms', 'edges / attribution', 'gated rows ms', 'gated / attribution', 'downstream nodes', 'edges'],
      rows.map((r) =>
        r.error
          ? [r.model!, '–', '–', '–', '–', '–', '–', String(r.error)]
          : [r.model!, fmt(r.attributionMs as number, 0), fmt(r.edgesMs as number, 0), fmt(r.ratio as number, 1), fmt(r.gatedMs as number, 0), fmt(r.gatedRatio as number, 1), r.backwardRows!, r.edgeCount!],
      ),
    ),
  );
  results.edges = rows;
}

/**
 * The Llama-3.2-1B shape (16 layers, d 2048, GQA 32/8 heads of 64, d_mlp 8192, vocab 128,256,
 * tied embeddings), random weights from bench/make-llama-1b-random.ts: one process loads it,
 * attributes a 128-token prompt (first and warm) and discovers a head circuit over 32
 * synthetic prompts (scale-child.ts `discover`); peak RSS against the memory guard's estimate
 * for the largest run of that process (the discovery batch or the 128-token attribution).
 * Skipped, with the guard's estimate only, when the model folder is missing or --skip 1b.
 */
async function llama1b(args: Args, lines: string[], results: Record<string, unknown>): Promise<void> {
  const [L, D, H, Hkv, dh, F, V] = [16, 2048, 32, 8, 64, 8192, 128256];
  const perLayer = D * H * dh + 2 * D * Hkv * dh + H * dh * D + 3 * D * F + 2 * D;
  const parameters = V * D + L * perLayer + D;
  const spec = { nLayers: L, nHeads: H, dModel: D, dMlp: F, vocabSize: V } as ArchSpec;
  const model = estimateModelBytes(parameters);
  const run = estimateRunBytes(spec, 1, 128, true);
  const head = `\n### Llama-3.2-1B shape, random weights (${fmt(parameters / 1e9, 3)} B parameters, ${fmt((parameters * 4) / GiB, 2)} GiB in float32)\n`;
  if (args.skip.has('1b') || !fs.existsSync(path.join(LLAMA_1B, 'model.safetensors'))) {
    lines.push(`${head}\nNot run (${args.skip.has('1b') ? '--skip 1b' : 'make it with bench/make-llama-1b-random.ts'}). Memory guard, 128-token attribution: model ${fmt(model / GiB, 2)} GiB + activations ${fmt(run / GiB, 2)} GiB = ${fmt((model + run) / GiB, 2)} GiB.`);
    results.llama1b = { parameters, modelBytes: model, runBytes: run };
    return;
  }
  const r = await child({ kind: 'discover', folder: LLAMA_1B, tokens: 128, runs: 1, threads: args.threads, cacheDir: null, prompts: 32, promptTokens: 32, batch: 4 });
  if (r.error) {
    lines.push(`${head}\nFailed: ${String(r.error)}`);
    results.llama1b = r;
    return;
  }
  const discoverRun = r.estimateDiscoverBytes as number;
  const estimate = (r.estimateModelBytes as number) + Math.max(r.estimateAttributionBytes as number, discoverRun);
  const peak = r.processPeakMiB as number;
  lines.push(head);
  lines.push(
    markdownTable(
      ['phase', 'time s', 'peak RSS MiB so far'],
      [
        ['load (headers, tokenizer)', fmt((r.loadMs as number) / 1000, 1), '–'],
        ['first 128-token attribution (compile, session, run)', fmt((r.firstMs as number) / 1000, 1), '–'],
        ['warm 128-token attribution', fmt((r.warmMs as number) / 1000, 1), fmt(r.afterAttributionMiB as number, 0)],
        [`head-circuit discovery, ${r.prompts} prompts × ${r.promptTokens} tokens, batch ${r.batch} (compile + scoring)`, fmt((r.discoverMs as number) / 1000, 1), fmt(peak, 0)],
      ],
    ),
  );
  lines.push(
    `\nPeak RSS ${fmt(peak / 1024, 2)} GiB = ${fmt(peak / ((parameters * 4) / 2 ** 20), 2)} × the weights. Memory guard: model ${fmt((r.estimateModelBytes as number) / GiB, 2)} GiB + largest run ${fmt(Math.max(r.estimateAttributionBytes as number, discoverRun) / GiB, 2)} GiB = ${fmt(estimate / GiB, 2)} GiB, ${fmt(estimate / GiB / (peak / 1024), 2)} × the measured peak. Circuit: ${String(r.circuit)}. Load average ${fmt(r.loadavg as number, 1)}.`,
  );
  results.llama1b = { parameters, ...r, estimateBytes: estimate };
  console.error(`[scale] 1B: attribution ${fmt((r.warmMs as number) / 1000, 1)} s warm, discovery ${fmt((r.discoverMs as number) / 1000, 1)} s, peak ${fmt(peak, 0)} MiB`);
}

/**
 * 6. Past one machine: discovery, pruning scores and pruning curves split into 3 uneven shards
 * and merged (`circuit-lens merge`) against the same work in one shard, with the bundled CLI on
 * the embedded model. Equality is exact: the merged JSON (discovery, curves) and the merged
 * score file's bytes (pruning), and the perplexity pruned from each.
 */
async function shards(lines: string[], results: Record<string, unknown>): Promise<void> {
  const cli = path.join(REPO, 'dist', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-shards-'));
  const file = (name: string) => path.join(dir, name);
  const run = (...argv: string[]): string => {
    const r = spawnSync(process.execPath, [cli, ...argv, ...(argv[0] === 'merge' ? [] : ['--cache-dir', 'off'])], { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`circuit-lens ${argv.slice(0, 2).join(' ')} exited with ${r.status}: ${r.stderr.slice(-1500)}`);
    return r.stdout;
  };
  const rows: string[][] = [];
  try {
    const discover = (shard: string, out: string) => run('discover', '--model', EMBEDDED, '--task', 'ioi', '--n', '40', '--granularity', 'heads+mlps', '--batch', '4', '--shard', shard, '--out', file(out));
    for (const k of [1, 2, 3]) discover(`${k}/3`, `d${k}.json`);
    discover('1/1', 'd-whole.json');
    const merged = run('merge', file('d3.json'), file('d1.json'), file('d2.json'), '--json');
    const whole = run('merge', file('d-whole.json'), '--json');
    // Everything but the number of shards merged.
    const { shards: _a, ...mergedScores } = JSON.parse(merged) as Record<string, unknown>;
    const { shards: _b, ...wholeScores } = JSON.parse(whole) as Record<string, unknown>;
    rows.push(['discover (40 IOI prompts, batches of 4; every field but `shards`)', String(isDeepStrictEqual(mergedScores, wholeScores))]);

    const pruneFlags = ['--model', EMBEDDED, '--samples', 'position', '--windows', '7', '--window-length', '16'];
    for (const k of [1, 2, 3]) run('prune', ...pruneFlags, '--shard', `${k}/3`, '--partial', file(`p${k}.bin`), '--json');
    run('prune', ...pruneFlags, '--shard', '1/1', '--partial', file('p-whole.bin'), '--json');
    run('merge', file('p2.bin'), file('p3.bin'), file('p1.bin'), '--out', file('p-merged.bin'));
    run('merge', file('p-whole.bin'), '--out', file('p-one.bin'));
    const sameScores = fs.readFileSync(file('p-merged.bin')).equals(fs.readFileSync(file('p-one.bin')));
    const perplexity = (...extra: string[]) => (JSON.parse(run('prune', ...pruneFlags, '--sparsity', '0.5', ...extra, '--json')) as { perplexity: number }).perplexity;
    const fromShards = perplexity('--from-scores', file('p-merged.bin'));
    const plain = perplexity();
    rows.push(['prune weight relevance (7 windows × 15 positions, 786,432 weights)', String(sameScores)]);
    rows.push(['prune 50 % from merged scores vs plain prune: perplexity', `${fromShards} vs ${plain}: ${fromShards === plain}`]);

    const curveFlags = ['--model', EMBEDDED, '--eval', path.join(EMBEDDED, 'ioi.jsonl'), '--seeds', '4', '--reference', '8', '--methods', 'attnlrp,random', '--modes', 'structured', '--rates', '0,0.5,0.9'];
    const curveShards = [1, 2, 3].map((k) => (run('prune-curve', ...curveFlags, '--shard', `${k}/3`, '--out', file(`c${k}.json`)), file(`c${k}.json`)));
    const mergedCurve = JSON.parse(run('merge', ...curveShards.reverse(), '--json')) as unknown;
    const wholeCurve = JSON.parse(run('prune-curve', ...curveFlags, '--json')) as unknown;
    rows.push(['prune-curve (4 seeds, 2 methods)', String(isDeepStrictEqual(mergedCurve, wholeCurve))]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  lines.push('\n### Shards: 3 uneven shards merged vs one shard (embedded model, bundled CLI)\n');
  lines.push(markdownTable(['work', 'merged equals unsharded, exactly'], rows));
  results.shards = rows;
  console.error(`[scale] shards: ${rows.map((r) => r[1]).join(', ')}`);
}

/** max |a − b| / max |b|. */
function relativeError(a: readonly number[], b: readonly number[]): number {
  let diff = 0;
  let scale = 0;
  b.forEach((v, i) => {
    diff = Math.max(diff, Math.abs(a[i]! - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return diff / scale;
}

/**
 * Half precision (build.ts `halfWeights`) on the CPU, GPT-2-small-sized model, 128 tokens: the
 * F32 file with its matrices rounded to F16, and a BF16 copy of it kept as stored, each against
 * float32 in its own process. The relevance error is what the storage costs; the BF16 file's own
 * rounding (BF16 file in float32 vs the F32 file) is printed beside it.
 */
async function precision(args: Args, lines: string[], results: Record<string, unknown>): Promise<void> {
  const head = '\n### Half precision, GPT-2-small-sized model, 128 tokens (CPU)\n';
  if (!fs.existsSync(path.join(GPT2, 'model.safetensors'))) {
    lines.push(`${head}\nNot run (make the model with bench/make-gpt2-small-random.ts).`);
    return;
  }
  if (!fs.existsSync(path.join(GPT2_BF16, 'model.safetensors'))) {
    fs.mkdirSync(GPT2_BF16, { recursive: true });
    for (const f of fs.readdirSync(GPT2)) if (!f.endsWith('.safetensors')) fs.copyFileSync(path.join(GPT2, f), path.join(GPT2_BF16, f));
    const { weights } = loadModelFolder(GPT2);
    const tensors = weights.names().map((name) => ({ name, shape: weights.info(name).shape, data: weights.readFloat32(name) }));
    fs.writeFileSync(path.join(GPT2_BF16, 'model.safetensors.partial'), encodeSafetensors(tensors, undefined, 'BF16'));
    fs.renameSync(path.join(GPT2_BF16, 'model.safetensors.partial'), path.join(GPT2_BF16, 'model.safetensors'));
  }
  const run = (folder: string, weightPrecision: 'float32' | 'half') => child({ kind: 'precision', folder, tokens: 128, runs: args.runs, threads: args.threads, cacheDir: null, weightPrecision });
  type Row = Awaited<ReturnType<typeof run>>;
  const f32 = await run(GPT2, 'float32');
  const f16 = await run(GPT2, 'half');
  const bf16Full = await run(GPT2_BF16, 'float32');
  const bf16Half = await run(GPT2_BF16, 'half');
  const err = (a: Row, b: Row, key: 'tokenRelevance' | 'headRelevance') => relativeError(a[key] as unknown as number[], b[key] as unknown as number[]);
  const rows = [
    { file: 'F32', kept: 'float32', r: f32, vs: undefined },
    { file: 'F32', kept: 'F16 (rounded on load)', r: f16, vs: f32 },
    { file: 'BF16', kept: 'float32 (converted on load)', r: bf16Full, vs: f32 },
    { file: 'BF16', kept: 'BF16 (as stored)', r: bf16Half, vs: bf16Full },
  ];
  for (const row of rows) {
    const e = row.vs ? ` token error ${err(row.r, row.vs, 'tokenRelevance').toExponential(1)}` : '';
    console.error(`[scale] precision ${row.file} kept ${row.kept}: warm ${fmt(row.r.ms as number, 0)} ms, peak ${fmt(row.r.processPeakMiB as number, 0)} MiB${e}`);
  }
  results.precision = rows.map((row) => ({
    file: row.file,
    kept: row.kept,
    loadMs: row.r.loadMs,
    firstMs: row.r.firstMs,
    warmMs: row.r.ms,
    peakMiB: row.r.processPeakMiB,
    ...(row.vs ? { tokenError: err(row.r, row.vs, 'tokenRelevance'), headError: err(row.r, row.vs, 'headRelevance') } : {}),
  }));
  lines.push(head);
  lines.push(
    markdownTable(
      ['file', 'matrices kept as', 'load ms', 'first attribution ms', 'warm attribution ms', 'peak RSS MiB', 'token relevance error', 'head relevance error', 'against'],
      rows.map((row) => [
        row.file,
        row.kept,
        fmt(row.r.loadMs as number, 0),
        fmt(row.r.firstMs as number, 0),
        fmt(row.r.ms as number, 0),
        fmt(row.r.processPeakMiB as number, 0),
        row.vs ? err(row.r, row.vs, 'tokenRelevance').toExponential(1) : '–',
        row.vs ? err(row.r, row.vs, 'headRelevance').toExponential(1) : '–',
        row.vs === f32 ? 'F32 file, float32' : row.vs === bf16Full ? 'BF16 file, float32' : '–',
      ]),
    ),
  );
  lines.push('\nErrors are max |ΔR| / max |R| over the 128 token relevances and the 144 head relevances.');
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const lines: string[] = [];
  const results: Record<string, unknown> = { args: { ...args, skip: [...args.skip] }, machine: machine() };
  const start = loadavgLine();
  if (!args.skip.has('fresh')) await fresh(args, lines, results);
  if (!args.skip.has('curve')) await curve(args, lines, results);
  if (!args.skip.has('edges')) await edges(args, lines, results);
  if (!args.skip.has('precision')) await precision(args, lines, results);
  await llama1b(args, lines, results);
  if (!args.skip.has('shards')) await shards(lines, results);
  lines.push(`\nMachine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${fmt(os.totalmem() / GiB, 0)} GiB; ${start} at the start, ${loadavgLine()} at the end.`);
  console.log(lines.join('\n'));
  if (args.json) console.error(`[scale] wrote ${writeResults('scale', results)}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

