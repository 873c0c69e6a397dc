/**
 * Attribution benchmark: median forward time, median attribution time (forward + AttnLRP
 * relevance in one session run), their ratio and peak RSS, per model × prompt length, each in
 * its own process. Goal (issue): attribution / forward ≤ 2.5 at 128 tokens on both models.
 *
 * When a python with torch is found (Debian's python3-torch: /usr/bin/python3), the PyTorch
 * eager oracle (shared/reference/oracle/bench_oracle.py) is timed on the same model folders and
 * lengths right after, and ours / PyTorch ratios are printed.
 *
 *     node --import tsx bench/attribution.ts [--models embedded,gpt2-small] [--tokens 32,128]
 *         [--runs 7] [--warmup 2] [--threads 2] [--min-time-ms 3000] [--no-oracle] [--no-json]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fmt, loadavgLine, machine, markdownTable, parseArgs, resolveModel, runChild, torchPython, writeResults, type BenchArgs } from './common';
import type { MeasureRequest, MeasureResult } from './measure';

export const ORACLE = path.resolve(__dirname, '..', '..', 'shared', 'reference', 'oracle', 'bench_oracle.py');
export const GOAL_RATIO = 2.5;
export const GOAL_TOKENS = 128;

interface OracleTiming {
  median_s: number;
  min_s: number;
  max_s: number;
  median_cpu_s: number;
}
interface OracleRow {
  tokens: number;
  forward: OracleTiming;
  forward_last: OracleTiming;
  attnlrp: OracleTiming;
  cp_lrp: OracleTiming;
  attnlrp_over_forward: number;
}
export interface OracleResult {
  model: string;
  threads: number;
  torch: string;
  max_rss_mib: number;
  loadavg_after: number[];
  results: OracleRow[];
}

export interface AttributionRow {
  readonly model: string;
  readonly label: string;
  readonly result: MeasureResult;
  readonly oracle: OracleRow | null;
  readonly oracleRssMiB: number | null;
}

function runOracle(python: string, folder: string, args: BenchArgs): Promise<OracleResult> {
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-oracle-')), 'out.json');
  const argv = [ORACLE, '--model', folder, '--tokens', ...args.tokens.map(String), '--threads', String(args.threads || os.cpus().length), '--runs', String(args.runs), '--warmup', String(args.warmup), '--json', json];
  return new Promise((resolve, reject) => {
    // Streamed, not buffered: on GPT-2 small the oracle takes minutes.
    const child = spawn(python, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.on('data', (d: Buffer) => process.stderr.write(d.toString().replace(/^(?=.)/gm, '[oracle] ')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`oracle exited with ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(fs.readFileSync(json, 'utf8')) as OracleResult);
      } catch (e) {
        reject(e as Error);
      } finally {
        fs.rmSync(path.dirname(json), { recursive: true, force: true });
      }
    });
  });
}

export async function runAttribution(args: BenchArgs): Promise<{ rows: AttributionRow[]; tables: string[]; goal: string[]; machine: Record<string, unknown>; oracle: string }> {
  const rows: AttributionRow[] = [];
  const python = args.oracle ? torchPython() : null;
  const oracleNote = !args.oracle ? 'disabled (--no-oracle)' : python ? `${python} + ${ORACLE}` : 'skipped: no python with torch (apt-get install python3-torch python3-numpy)';
  if (args.oracle && !fs.existsSync(ORACLE)) throw new Error(`oracle script not found at ${ORACLE}`);
  for (const key of args.models) {
    const model = resolveModel(key);
    const ours: MeasureResult[] = [];
    for (const tokens of args.tokens) {
      const request: MeasureRequest = { folder: model.folder, tokens, attribution: true, runs: args.runs, warmup: args.warmup, threads: args.threads, minTimeMs: args.minTimeMs };
      const result = await runChild<MeasureResult>(request);
      ours.push(result);
      console.error(`[attribution] ${model.key} T=${tokens}: forward ${fmt(result.forward.medianMs)} ms, attribution ${fmt(result.attribution!.medianMs)} ms, ratio ${fmt(result.ratio, 2)}`);
    }
    let oracle: OracleResult | null = null;
    if (python) {
      console.error(`[attribution] oracle on ${model.key} (${loadavgLine()})`);
      try {
        oracle = await runOracle(python, model.folder, args);
      } catch (err) {
        console.error(`[attribution] ${(err as Error).message}`);
      }
    }
    ours.forEach((result) =>
      rows.push({
        model: model.key,
        label: model.label,
        result,
        oracle: oracle?.results.find((r) => r.tokens === result.tokens) ?? null,
        oracleRssMiB: oracle?.max_rss_mib ?? null,
      }),
    );
  }
  const tables = [
    markdownTable(
      ['model', 'tokens', 'forward ms', 'attribution ms', 'attribution / forward', 'ratio of minima', 'first attribution call ms', 'peak RSS fwd only MiB', 'peak RSS fwd+attr MiB', 'load avg (1 min) during'],
      rows.map(({ model, result: r }) => [
        model,
        r.tokens,
        `${fmt(r.forward.medianMs)} (${fmt(r.forward.minMs)}–${fmt(r.forward.maxMs)})`,
        `${fmt(r.attribution!.medianMs)} (${fmt(r.attribution!.minMs)}–${fmt(r.attribution!.maxMs)})`,
        `**${fmt(r.ratio, 2)}**`,
        // Under load the minimum is the least disturbed run of each: a second estimate.
        fmt(r.attribution!.minMs / r.forward.minMs, 2),
        fmt(r.attributionFirstMs, 0),
        fmt(r.peakRssForwardMiB, 0),
        fmt(r.peakRssMiB, 0),
        `${fmt(r.loadavgStart[0], 2)} → ${fmt(r.loadavgEnd[0], 2)}`,
      ]),
    ),
  ];
  if (rows.some((r) => r.oracle)) {
    tables.push(
      markdownTable(
        ['model', 'tokens', 'PyTorch forward ms', 'PyTorch AttnLRP ms', 'PyTorch AttnLRP / forward', 'ours / PyTorch forward', 'ours / PyTorch attribution', 'PyTorch peak RSS MiB'],
        rows
          .filter((r) => r.oracle)
          .map(({ model, result: r, oracle: o, oracleRssMiB }) => [
            model,
            r.tokens,
            fmt(o!.forward.median_s * 1e3),
            fmt(o!.attnlrp.median_s * 1e3),
            fmt(o!.attnlrp_over_forward, 2),
            fmt(r.forward.medianMs / (o!.forward.median_s * 1e3), 2),
            fmt(r.attribution!.medianMs / (o!.attnlrp.median_s * 1e3), 2),
            fmt(oracleRssMiB, 0),
          ]),
      ),
    );
  }
  const goal = rows
    .filter((r) => r.result.tokens === GOAL_TOKENS)
    .map((r) => `${r.model} @ ${GOAL_TOKENS} tokens: attribution/forward = ${fmt(r.result.ratio, 2)} — ${r.result.ratio! <= GOAL_RATIO ? 'meets' : 'MISSES'} the ≤ ${GOAL_RATIO} goal`);
  return { rows, tables, goal, machine: machine(), oracle: oracleNote };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.error(`[attribution] ${loadavgLine()}`);
  const res = await runAttribution(args);
  console.log(`### Attribution (AttnLRP) vs forward (ONNX Runtime CPU, ${args.threads || 'default'} intra-op threads, median of ${args.runs} alternating runs)\n`);
  console.log(res.tables[0]);
  if (res.tables[1]) console.log(`\n### Versus the PyTorch-eager oracle (same model folder and lengths, ${args.threads || os.cpus().length} torch threads)\n\n${res.tables[1]}`);
  console.log(`\nPyTorch oracle: ${res.oracle}`);
  console.log(res.goal.map((g) => `- ${g}`).join('\n'));
  console.log(`\n${loadavgLine()}`);
  if (args.json) console.error(`[attribution] wrote ${writeResults('attribution', { args, ...res })}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
