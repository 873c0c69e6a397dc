/**
 * Shared pieces of the benchmarks: the models, argument parsing, child processes (one per
 * model × length, so peak RSS figures do not mix), statistics, Markdown tables, results files.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { embeddedModelPath } from '../src/engine/engine';
import { DEFAULT_OUT as GPT2_SMALL_DIR, makeGpt2SmallRandom } from './make-gpt2-small-random';

export const BENCH_DIR = __dirname;
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

export interface BenchModel {
  readonly key: string;
  readonly label: string;
  readonly folder: string;
}

export const MODEL_KEYS = ['embedded', 'gpt2-small'] as const;

export function resolveModel(key: string): BenchModel {
  if (key === 'embedded') return { key, label: 'embedded tiny-ioi-gpt2 (4L, d128, V2088)', folder: embeddedModelPath() };
  if (key === 'gpt2-small') {
    makeGpt2SmallRandom(GPT2_SMALL_DIR, { log: (m) => console.error(`[bench] ${m}`) });
    return { key, label: 'gpt2-small-random (12L, d768, V50257)', folder: GPT2_SMALL_DIR };
  }
  // Any other value is taken as a model folder.
  return { key: path.basename(path.resolve(key)), label: path.resolve(key), folder: path.resolve(key) };
}

export interface BenchArgs {
  models: string[];
  tokens: number[];
  runs: number;
  warmup: number;
  threads: number;
  /** Each measurement loop runs at least this long (more runs for fast models). */
  minTimeMs: number;
  oracle: boolean;
  json: boolean;
}

/** `--models embedded,gpt2-small --tokens 32,128 --runs 7 --warmup 2 --threads 2 --no-oracle`. */
export function parseArgs(argv: string[], defaults: Partial<BenchArgs> = {}): BenchArgs {
  const args: BenchArgs = { models: [...MODEL_KEYS], tokens: [32, 128], runs: 7, warmup: 2, threads: 2, minTimeMs: 3000, oracle: true, json: true, ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--models') args.models = value().split(',');
    else if (a === '--tokens') args.tokens = value().split(',').map(Number);
    else if (a === '--runs') args.runs = Number(value());
    else if (a === '--warmup') args.warmup = Number(value());
    else if (a === '--threads') args.threads = Number(value());
    else if (a === '--min-time-ms') args.minTimeMs = Number(value());
    else if (a === '--no-oracle') args.oracle = false;
    else if (a === '--no-json') args.json = false;
    else if (a === '--help' || a === '-h') {
      console.log('options: --models embedded,gpt2-small|DIR --tokens 32,128 --runs N --warmup N --threads N (0: ORT default) --min-time-ms MS --no-oracle --no-json');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

/** Token ids for a prompt of length T: deterministic (seed T), uniform over the vocabulary. */
export function randomIds(T: number, vocab: number, seed = T): number[] {
  let s = (seed * 2654435761) >>> 0 || 1;
  const ids: number[] = [];
  for (let i = 0; i < T; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    ids.push(s % vocab);
  }
  return ids;
}

export interface Stats {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly samplesMs: number[];
}

export function stats(samplesMs: number[]): Stats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const n = sorted.length;
  const medianMs = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { medianMs, minMs: sorted[0]!, maxMs: sorted[n - 1]!, samplesMs };
}

export const maxRssMiB = () => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB

export function machine(): Record<string, unknown> {
  let ortVersion = '?';
  try {
    ortVersion = (JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // keep '?'
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    onnxruntimeNode: ortVersion,
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
    date: new Date().toISOString(),
  };
}

export const loadavgLine = () => `load average ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min) on ${os.cpus().length} CPUs`;

/**
 * Runs `bench/measure.ts` in a fresh Node process and returns the JSON it prints last.
 * The child's stderr is passed through (progress lines).
 */
export function runChild<T>(request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, 'measure.ts'), JSON.stringify(request)], {
      cwd: path.join(BENCH_DIR, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`measure.ts exited with ${code}: ${out.slice(-2000)}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`measure.ts printed no JSON result: ${out.slice(-2000)}`));
      }
    });
  });
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(headers), line(headers.map((_, i) => (i === 0 ? '---' : '---:'))), ...cells.map(line)].join('\n');
}

export const fmt = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

export function writeResults(name: string, data: unknown): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(RESULTS_DIR, `${name}-${stamp}.json`);
  fs.writeFileSync(file, JSON.stringify(data, null, 1) + '\n');
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}-latest.json`), JSON.stringify(data, null, 1) + '\n');
  return file;
}

/** The Debian python with torch, if any (the pyenv python on PATH has no torch). */
export function torchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 60_000 });
      return py;
    } catch {
      // try the next
    }
  }
  return null;
}
