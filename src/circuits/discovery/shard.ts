/**
 * Splitting discovery across machines (Slurm job arrays, Kubernetes indexed Jobs, GNU parallel)
 * and merging the parts exactly.
 *
 * Shard k of n scores batches k−1, k−1+n, k−1+2n, … of the task's examples (strided, so every
 * shard sees the whole task's mix). Whole batches, because an example's relevance depends in its
 * last bits on the batch it ran in (padding changes the matrix shapes): with the same batches,
 * every example's scores are bit-for-bit those of the unsharded run. Shards write sums and
 * counts, never means: the merge adds sums and counts and divides once, so no "average of
 * averages" weights a small shard like a large one.
 *
 * Sums are exact. Every float64 is an integer multiple of 2⁻¹⁰⁷⁴, so each sample is added as
 * that integer (a BigInt): addition is then associative, and the merged sums are bit-for-bit
 * the unsharded ones whatever the split. Both Σx (signed-mean, abs-mean) and Σ|x| (mean-abs)
 * are kept, so the aggregation can still be chosen at merge time.
 */
import type { Attribution } from '../../engine/api';
import { type ComponentRelevance, mlpBlockRelevance } from './aggregate';
import { AGGREGATIONS, type Aggregation } from '../../vocabulary';
import type { Task } from '../tasks/tasks';

export const PARTIAL_FORMAT = 'circuit-lens-partial-relevance';

export interface Shard {
  /** 0-based. */
  readonly index: number;
  readonly count: number;
}

/** `k/n` with 1 ≤ k ≤ n (Slurm: `$((SLURM_ARRAY_TASK_ID))/$SLURM_ARRAY_TASK_COUNT`). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || n < 1 || k < 1 || k > n) throw new Error(`--shard must be k/n with 1 ≤ k ≤ n (e.g. 2/8), got "${text}"`);
  return { index: k - 1, count: n };
}

/**
 * One run's shards, each exactly once: the same run (compared by `run`, shown by `shown`), the
 * same split, no shard given twice, none missing. Discover, prune and prune-curve parts alike.
 */
export function checkShardSet(parts: readonly { readonly run: string; readonly shown: string; readonly shard: Shard }[], differs: string): void {
  const first = parts[0]!;
  const seen = new Set<number>();
  for (const p of parts) {
    if (p.run !== first.run) throw new Error(`shards of different runs${differs}: ${p.shown} vs ${first.shown}`);
    if (p.shard.count !== first.shard.count) throw new Error(`shards of different splits (${p.shard.count} vs ${first.shard.count})`);
    if (seen.has(p.shard.index)) throw new Error(`shard ${p.shard.index + 1}/${p.shard.count} is given twice`);
    seen.add(p.shard.index);
  }
  const missing = Array.from({ length: first.shard.count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length) throw new Error(`shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i + 1}/${first.shard.count}`).join(', ')} missing`);
}

/** The shard's examples: whole batches of `batchSize` (the discovery batch size), strided. */
export function shardTask(task: Task, shard: Shard, batchSize: number): Task {
  return { ...task, examples: task.examples.filter((_, i) => Math.floor(i / batchSize) % shard.count === shard.index) };
}

const SCALE_BITS = 1074n;
const view = new DataView(new ArrayBuffer(8));

/** x · 2¹⁰⁷⁴ as an exact integer. */
export function exactInteger(x: number): bigint {
  if (!Number.isFinite(x)) throw new Error(`cannot sum a non-finite relevance (${x})`);
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exponent = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (exponent !== 0) mantissa = (mantissa | (1n << 52n)) << BigInt(exponent - 1);
  return hi >>> 31 ? -mantissa : mantissa;
}

/**
 * (sum · 2⁻¹⁰⁷⁴) / count as a float64. Deterministic (the same exact sum and count always give
 * the same number); the quotient is truncated 64 bits below the result's last bit before the
 * final rounding.
 */
export function exactMean(sum: bigint, count: number): number {
  if (sum === 0n) return 0;
  const negative = sum < 0n;
  const q = ((negative ? -sum : sum) << 64n) / BigInt(count); // scaled by 2^(1074 + 64)
  const bits = q.toString(2).length;
  const shift = Math.max(0, bits - 64);
  let value = Number(q >> BigInt(shift)); // ≤ 64 bits: one rounding to 53
  // value · 2^(shift − 1138), in two steps so no intermediate under- or overflows.
  const exponent = shift - Number(SCALE_BITS) - 64;
  const half = Math.trunc(exponent / 2);
  value = value * 2 ** half * 2 ** (exponent - half);
  return negative ? -value : value;
}

class ExactSums {
  readonly sum: bigint[];
  readonly abs: bigint[];
  constructor(n: number) {
    this.sum = new Array<bigint>(n).fill(0n);
    this.abs = new Array<bigint>(n).fill(0n);
  }
  add(values: ArrayLike<number>, offset = 0): void {
    for (let i = 0; i < values.length; i++) {
      const v = exactInteger(values[i]!);
      this.sum[offset + i]! += v;
      this.abs[offset + i]! += v < 0n ? -v : v;
    }
  }
}

/** What a shard writes: exact sums (hex) and the count, plus what must agree to be merged. */
export interface PartialRelevance {
  readonly format: typeof PARTIAL_FORMAT;
  readonly version: 1;
  /** Model, task, method, total examples: shards of different runs are refused. */
  readonly run: {
    readonly model: string;
    readonly task: string;
    readonly metric: Task['metric'];
    readonly method: string;
    readonly examples: number;
    /** Shards must batch alike (see `shardTask`). */
    readonly batchSize: number;
    readonly layers: number;
    readonly heads: number;
    readonly dModel: number;
    readonly dMlp: number;
  };
  readonly shard: Shard;
  readonly count: number;
  readonly heads: { readonly sum: string[]; readonly abs: string[] };
  readonly mlps: { readonly sum: string[]; readonly abs: string[] } | null;
  readonly neurons: { readonly sum: string[]; readonly abs: string[] } | null;
}

/** Hex, with a run of k trailing zero digits written `zk` (a float32 value ends in ~250 of them). */
const hex = (xs: bigint[]) =>
  xs.map((x) => {
    const s = x.toString(16);
    const zeros = s.length - s.replace(/0+$/, '').length;
    return zeros > 1 ? `${s.slice(0, s.length - zeros)}z${zeros}` : s;
  });
const unhex = (xs: readonly string[]) =>
  xs.map((x) => {
    const [digits, zeros] = x.split('z') as [string, string | undefined];
    const negative = digits.startsWith('-');
    const value = BigInt(`0x${(negative ? digits.slice(1) : digits) || '0'}${'0'.repeat(Number(zeros ?? 0))}`);
    return negative ? -value : value;
  });

/** Exact sums of per-sample head and neuron relevance (as `scoreComponents` collects them). */
export function partialRelevance(
  samples: readonly Pick<Attribution, 'headRelevance' | 'mlpRelevance'>[],
  run: PartialRelevance['run'],
  shard: Shard,
): PartialRelevance {
  const { layers: L, heads: H, dMlp: F } = run;
  const heads = new ExactSums(L * H);
  const withNeurons = samples.length > 0 && samples.every((s) => s.mlpRelevance !== null);
  const mlps = withNeurons ? new ExactSums(L) : null;
  const neurons = withNeurons ? new ExactSums(L * F) : null;
  for (const s of samples) {
    s.headRelevance.forEach((row, l) => heads.add(row, l * H));
    if (withNeurons) {
      mlps!.add(mlpBlockRelevance(s.mlpRelevance!));
      s.mlpRelevance!.forEach((layer, l) => neurons!.add(layer, l * F));
    }
  }
  const out = (e: ExactSums | null) => (e ? { sum: hex(e.sum), abs: hex(e.abs) } : null);
  return { format: PARTIAL_FORMAT, version: 1, run, shard, count: samples.length, heads: out(heads)!, mlps: out(mlps), neurons: out(neurons) };
}

/**
 * Adds the parts' sums and counts. Every shard 1…n of one run must be there exactly once, and
 * the counts must add up to the run's examples.
 */
export function mergePartials(parts: readonly PartialRelevance[]): PartialRelevance {
  if (parts.length === 0) throw new Error('no partial results to merge');
  for (const p of parts) if (p.format !== PARTIAL_FORMAT || p.version !== 1) throw new Error('not a circuit-lens partial relevance file (format/version)');
  const first = parts[0]!;
  checkShardSet(parts.map((p) => ({ run: JSON.stringify(p.run), shown: JSON.stringify(p.run), shard: p.shard })), '');
  // A shard with no examples (more shards than batches) adds nothing and says nothing about neurons.
  const filled = parts.filter((p) => p.count > 0);
  if (filled.length === 0) throw new Error('the shards hold no examples');
  if (filled.some((p) => (p.neurons === null) !== (filled[0]!.neurons === null))) throw new Error('some shards have neuron relevance and some do not');
  const count = parts.reduce((s, p) => s + p.count, 0);
  if (count !== first.run.examples) throw new Error(`the shards hold ${count} examples, the run has ${first.run.examples}`);
  const add = (pick: (p: PartialRelevance) => { sum: string[]; abs: string[] } | null) => {
    if (pick(filled[0]!) === null) return null;
    const total = (key: 'sum' | 'abs') => {
      const acc = unhex(pick(filled[0]!)![key]);
      for (const p of filled.slice(1)) unhex(pick(p)![key]).forEach((v, i) => (acc[i]! += v));
      return hex(acc);
    };
    return { sum: total('sum'), abs: total('abs') };
  };
  return { ...filled[0]!, shard: { index: 0, count: 1 }, count, heads: add((p) => p.heads)!, mlps: add((p) => p.mlps), neurons: add((p) => p.neurons) };
}

/** The aggregated relevance of a (merged or unsharded) partial, under `mode`. */
export function relevanceFromPartial(partial: PartialRelevance, mode: Aggregation): ComponentRelevance {
  if (!AGGREGATIONS.includes(mode)) throw new Error(`unknown aggregation "${String(mode)}"`);
  if (partial.count === 0) throw new Error('cannot aggregate: the partial holds no examples');
  const { layers: L, heads: H, dMlp: F } = partial.run;
  const values = (e: { sum: string[]; abs: string[] }) => {
    const sums = unhex(mode === 'mean-abs' ? e.abs : e.sum);
    return sums.map((s) => {
      const mean = exactMean(s, partial.count);
      return mode === 'abs-mean' ? Math.abs(mean) : mean;
    });
  };
  const heads = values(partial.heads);
  const neurons = partial.neurons ? values(partial.neurons) : null;
  return {
    heads: Array.from({ length: L }, (_, l) => heads.slice(l * H, (l + 1) * H)),
    mlps: partial.mlps ? values(partial.mlps) : null,
    neurons: neurons ? Array.from({ length: L }, (_, l) => Float64Array.from(neurons.slice(l * F, (l + 1) * F))) : null,
  };
}
