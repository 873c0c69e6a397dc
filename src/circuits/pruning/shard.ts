/**
 * `prune --shard k/n`: the weight relevance of pruning (`attributionScores` in prune.ts, the
 * SparC³ score mean over reference samples of |R_W| or R_W) split across machines, merged exactly.
 *
 * Shard k of n attributes the calibration batches k−1, k−1+n, … (whole batches of `batchRows`
 * explained outputs, strided, as discover's shards: the same batches give the same bits). It
 * writes, per weight, the exact sum of its per-sample scores, never a mean; the merge adds the
 * sums and the counts and divides once (src/circuits/discovery/shard.ts: `exactInteger`,
 * `exactMean`, the 2⁻¹⁰⁷⁴ integer scheme), so the merged scores do not depend on the split.
 *
 * Size. A BigInt per weight is too slow and too large for 85 M weights, so a shard keeps each
 * weight's sum as an unevaluated pair hi + lo of float64s, updated by Knuth's TwoSum (error-free:
 * s + e = a + b exactly). The second addition lo + e is TwoSum'd too; when it is not exact (its
 * error e₂ ≠ 0, rare), e₂ goes to a sparse exact BigInt side table. So hi + lo + extra is the
 * exact sum at 16 bytes a weight (1.4 GB for GPT-2 small's 85 M prunable weights).
 *
 * File: one JSON header line (format, run, shard, count, tensors, extras), then hi[] and lo[] as
 * little-endian float64 over all tensors in header order.
 */
import { createHash } from 'node:crypto';
import type { Engine } from '../../engine/engine';
import type { Aggregation, Composite, SampleUnit } from '../../vocabulary';
import { checkShardSet, exactInteger, exactMean, type Shard } from '../discovery/shard';
import { attributeChunk, explainedCount, prunableTensors, type CalibTarget, type ExplainedOutput, type WeightScores } from './prune';

export const PARTIAL_WEIGHT_FORMAT = 'circuit-lens-partial-weight-relevance';

export interface WeightShardRun {
  readonly model: string;
  readonly method: Composite;
  readonly aggregation: Aggregation;
  readonly target: CalibTarget;
  readonly samples: SampleUnit;
  readonly windows: number;
  readonly windowLength: number;
  readonly batchRows: number;
  /** Explained-output rows of the whole run (each shard's counts must add up to it). */
  readonly rows: number;
  readonly explainedOutputs: number;
  /** sha256 of the calibration token ids: shards of different texts are refused. */
  readonly calibration: string;
}

export interface PartialWeightHeader {
  readonly format: typeof PARTIAL_WEIGHT_FORMAT;
  readonly version: 1;
  readonly run: WeightShardRun;
  readonly shard: Shard;
  /** Rows (reference samples) this shard summed. */
  readonly count: number;
  readonly tensors: readonly { readonly name: string; readonly length: number }[];
  /** Flat index → hex of the exact integer (·2⁻¹⁰⁷⁴) that hi + lo could not hold. */
  readonly extras: Record<string, string>;
}

export interface PartialWeights {
  readonly header: PartialWeightHeader;
  readonly hi: Float64Array;
  readonly lo: Float64Array;
}

export function calibrationHash(ids: readonly number[]): string {
  return createHash('sha256').update(new Uint8Array(Int32Array.from(ids).buffer)).digest('hex');
}

/** The rows of batch b belong to shard b mod n. */
export function shardRows<T>(rows: readonly T[], shard: Shard, batchRows: number): T[][] {
  const batches: T[][] = [];
  for (let b = 0, start = 0; start < rows.length; b++, start += batchRows) if (b % shard.count === shard.index) batches.push(rows.slice(start, start + batchRows));
  return batches;
}

/** Exact per-weight sums of a list of float64 summands, kept as hi + lo + sparse BigInt extras. */
export class PairSums {
  readonly hi: Float64Array;
  readonly lo: Float64Array;
  readonly extras = new Map<number, bigint>();
  constructor(readonly length: number) {
    this.hi = new Float64Array(length);
    this.lo = new Float64Array(length);
  }
  add(values: ArrayLike<number>, offset: number, abs: boolean): void {
    const { hi, lo } = this;
    for (let i = 0; i < values.length; i++) {
      const x = abs ? Math.abs(values[i]!) : values[i]!;
      if (!Number.isFinite(x)) throw new Error(`cannot sum a non-finite relevance (${x})`);
      const k = offset + i;
      // TwoSum (Knuth): s + e = a + b exactly, for any order of magnitude.
      const a = hi[k]!;
      const s = a + x;
      const bb = s - a;
      const e = a - (s - bb) + (x - bb);
      hi[k] = s;
      if (e === 0) continue;
      const c = lo[k]!;
      const t = c + e;
      const cc = t - c;
      const e2 = c - (t - cc) + (e - cc);
      lo[k] = t;
      if (e2 !== 0) this.extras.set(k, (this.extras.get(k) ?? 0n) + exactInteger(e2));
    }
  }
  /** The exact sum at k, as an integer multiple of 2⁻¹⁰⁷⁴. */
  exact(k: number): bigint {
    return exactInteger(this.hi[k]!) + exactInteger(this.lo[k]!) + (this.extras.get(k) ?? 0n);
  }
}

/**
 * Attributes this shard's batches of `rows` and returns the exact per-weight sums (|R_W| for
 * mean-abs, R_W otherwise). `rows` are all the run's rows, in the unsharded order.
 */
export async function scoreWeightShard(
  engine: Engine,
  rows: readonly ExplainedOutput[],
  options: { run: Omit<WeightShardRun, 'rows' | 'explainedOutputs'>; shard: Shard; progress?: (done: number, total: number) => void },
): Promise<PartialWeights> {
  const { run, shard } = options;
  const tensors = prunableTensors(engine).map((t) => ({ name: t.name, length: t.inFeatures * t.outFeatures }));
  const offsets: number[] = [];
  let total = 0;
  for (const t of tensors) {
    offsets.push(total);
    total += t.length;
  }
  const sums = new PairSums(total);
  const names = tensors.map((t) => t.name);
  const batches = shardRows(rows, shard, run.batchRows);
  let count = 0;
  for (const [b, chunk] of batches.entries()) {
    const result = await attributeChunk(engine, chunk, run.method, names);
    for (const a of result) {
      tensors.forEach((t, i) => {
        const r = a.weightRelevance[t.name]!;
        if (r.length !== t.length) throw new Error(`relevance of "${t.name}" has ${r.length} values, the weight ${t.length}`);
        sums.add(r, offsets[i]!, run.aggregation === 'mean-abs');
      });
      count++;
    }
    options.progress?.(b + 1, batches.length);
  }
  const extras: Record<string, string> = {};
  for (const [k, v] of sums.extras) if (v !== 0n) extras[String(k)] = v.toString(16);
  const header: PartialWeightHeader = { format: PARTIAL_WEIGHT_FORMAT, version: 1, run: { ...run, rows: rows.length, explainedOutputs: explainedCount(rows) }, shard, count, tensors, extras };
  return { header, hi: sums.hi, lo: sums.lo };
}

export function encodePartialWeights(p: PartialWeights): Buffer {
  return Buffer.concat([Buffer.from(JSON.stringify(p.header) + '\n', 'utf8'), float64Bytes(p.hi), float64Bytes(p.lo)]);
}

function float64Bytes(x: Float64Array): Buffer {
  const out = Buffer.alloc(x.length * 8);
  for (let i = 0; i < x.length; i++) out.writeDoubleLE(x[i]!, i * 8);
  return out;
}

/** The format field of a file that starts with a JSON header line (or a whole JSON file), or null. */
export function sniffFormat(data: Buffer): string | null {
  const nl = data.indexOf(0x0a);
  const head = data.subarray(0, nl < 0 ? Math.min(data.length, 4096) : nl).toString('utf8');
  const m = /^\{"format":"([^"]+)"/.exec(head);
  return m ? m[1]! : null;
}

export function decodePartialWeights(data: Buffer): PartialWeights {
  const nl = data.indexOf(0x0a);
  if (nl < 0) throw new Error('not a prune --shard output (no header line)');
  const header = JSON.parse(data.subarray(0, nl).toString('utf8')) as PartialWeightHeader;
  if (header.format !== PARTIAL_WEIGHT_FORMAT || header.version !== 1) throw new Error(`not a prune --shard output (format must be "${PARTIAL_WEIGHT_FORMAT}", version 1)`);
  const n = header.tensors.reduce((s, t) => s + t.length, 0);
  if (data.length - nl - 1 !== 16 * n) throw new Error(`truncated prune --shard output: ${data.length - nl - 1} bytes of sums, expected ${16 * n}`);
  const read = (at: number) => {
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = data.readDoubleLE(at + i * 8);
    return x;
  };
  return { header, hi: read(nl + 1), lo: read(nl + 1 + 8 * n) };
}

/**
 * Adds the shards' exact sums and counts and divides once: the scores of the whole run, as
 * `attributionScores` defines them (mean, then |·| for abs-mean, as float32). Every shard 1…n of
 * one run must be there exactly once.
 */
export function mergePartialWeights(parts: readonly PartialWeights[]): { run: WeightShardRun; tensors: PartialWeightHeader['tensors']; scores: Map<string, Float32Array> } {
  if (parts.length === 0) throw new Error('no partial results to merge');
  const first = parts[0]!.header;
  checkShardSet(
    parts.map(({ header: h }) => ({ run: JSON.stringify([h.run, h.tensors]), shown: JSON.stringify(h.run), shard: h.shard })),
    ' (model, options, calibration text or weights differ)',
  );
  const count = parts.reduce((s, p) => s + p.header.count, 0);
  if (count !== first.run.rows) throw new Error(`the shards hold ${count} reference samples, the run has ${first.run.rows}`);
  const extras = parts.map((p) => new Map(Object.entries(p.header.extras).map(([k, v]) => [Number(k), v.startsWith('-') ? -BigInt(`0x${v.slice(1)}`) : BigInt(`0x${v}`)])));
  const scores = new Map<string, Float32Array>();
  let at = 0;
  for (const t of first.tensors) {
    const s = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++, at++) {
      let sum = 0n;
      parts.forEach((p, j) => {
        const hi = p.hi[at]!;
        const lo = p.lo[at]!;
        if (hi !== 0) sum += exactInteger(hi);
        if (lo !== 0) sum += exactInteger(lo);
        const x = extras[j]!.get(at);
        if (x !== undefined) sum += x;
      });
      const mean = exactMean(sum, count);
      s[i] = first.run.aggregation === 'abs-mean' ? Math.abs(mean) : mean;
    }
    scores.set(t.name, s);
  }
  return { run: first.run, tensors: first.tensors, scores };
}

export const WEIGHT_SCORES_FORMAT = 'circuit-lens-weight-scores';

/** The merged scores file: a JSON header line, then float32 scores over all tensors in header order. */
export function encodeWeightScores(merged: ReturnType<typeof mergePartialWeights>): Buffer {
  const header = { format: WEIGHT_SCORES_FORMAT, version: 1, run: merged.run, tensors: merged.tensors };
  const chunks = [Buffer.from(JSON.stringify(header) + '\n', 'utf8')];
  for (const t of merged.tensors) {
    const s = merged.scores.get(t.name)!;
    const b = Buffer.alloc(s.length * 4);
    for (let i = 0; i < s.length; i++) b.writeFloatLE(s[i]!, i * 4);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Reads a merged scores file as the `WeightScores` prune ranks, checking it fits `engine`'s weights. */
export function decodeWeightScores(engine: Engine, data: Buffer): WeightScores {
  const nl = data.indexOf(0x0a);
  if (nl < 0 || sniffFormat(data) !== WEIGHT_SCORES_FORMAT) throw new Error(`not a merged scores file (format must be "${WEIGHT_SCORES_FORMAT}"; make one with circuit-lens merge PART… --out FILE)`);
  const header = JSON.parse(data.subarray(0, nl).toString('utf8')) as { run: WeightShardRun; tensors: { name: string; length: number }[] };
  const tensors = prunableTensors(engine);
  const mine = tensors.map((t) => ({ name: t.name, length: t.inFeatures * t.outFeatures }));
  if (JSON.stringify(mine) !== JSON.stringify(header.tensors)) throw new Error(`the scores are for other weights (model ${header.run.model}): tensor names or sizes differ from the loaded model's`);
  const n = mine.reduce((s, t) => s + t.length, 0);
  if (data.length - nl - 1 !== 4 * n) throw new Error(`truncated scores file: ${data.length - nl - 1} bytes, expected ${4 * n}`);
  const scores = new Map<string, Float32Array>();
  let at = nl + 1;
  for (const t of mine) {
    const s = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++, at += 4) s[i] = data.readFloatLE(at);
    scores.set(t.name, s);
  }
  const { run } = header;
  return {
    method: run.method,
    tensors,
    scores,
    calibration: { windows: run.windows, windowLength: run.windowLength, tokens: run.windows * run.windowLength, explainedOutputs: run.explainedOutputs },
    aggregation: run.aggregation,
    target: run.target,
    samples: run.samples,
  };
}
