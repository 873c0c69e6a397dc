/**
 * SparC³'s circuit protocol as a use case (Hatefi et al. 2025, §4.2; src/circuits/pruning/pruneCurve.ts):
 * IOI reference sets per seed, the held-out evaluation prompts, accuracy vs sparsity per mode and
 * method. The CLI's `prune-curve` and the editor's "SparC³ Prune Curve…" both call `pruneCurve`, so
 * the same settings give the same numbers in both.
 */
import * as fs from 'node:fs';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import { generateIoiTask, heldOutIoiTask } from '../circuits/tasks/generators';
import { loadTask } from '../circuits/pruning/pruneEval';
import * as path from 'node:path';
import { checkCurveRates, CURVE_METHODS, pruneCurves, summarizeSeries, type CurveMethod, type CurveMode, type CurveSeries, type PruneCurveResult } from '../circuits/pruning/pruneCurve';
import { checkShardSet, type Shard } from '../circuits/discovery/shard';
import type { CURVE_METHOD_NAMES, CURVE_MODE_NAMES } from '../protocol/shapes';
import { cancellable, type JobContext } from './context';
import { PRUNE_CURVE_DEFAULTS } from './defaults';

export const CURVE_MODES: readonly CurveMode[] = ['structured', 'unstructured'];

// Compile-time check: the wire's method/mode names (src/protocol/shapes.ts) are src/circuits' names.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameNames: [Same<(typeof CURVE_METHOD_NAMES)[number], CurveMethod>, Same<(typeof CURVE_MODE_NAMES)[number], CurveMode>] = [true, true];
void sameNames;

export interface PruneCurveOptions {
  /** `ioi` (held-out IOI split, ACDC templates, its own seed) or a JSONL file of IOI prompts with io and s. */
  readonly eval: string;
  readonly seeds?: number;
  /** Prompts per reference set. */
  readonly reference?: number;
  readonly methods?: readonly CurveMethod[];
  readonly modes?: readonly CurveMode[];
  readonly rates?: readonly number[];
  readonly keep?: number;
}

/** Number of (mode, method) series a run computes: the activation baseline is structured only. */
export function seriesCount(modes: readonly CurveMode[], methods: readonly CurveMethod[]): number {
  return modes.reduce((n, m) => n + methods.filter((x) => !(m === 'unstructured' && x === 'activation')).length, 0);
}

/** `only`: the seed indices to run (a shard's); default all. */
export async function pruneCurve(engine: Engine, options: PruneCurveOptions, ctx: JobContext = {}, only?: readonly number[]): Promise<PruneCurveResult> {
  if (options.eval !== 'ioi' && !fs.existsSync(options.eval)) throw new InputError('--eval: file not found', options.eval);
  if (!engine.tokenizer) throw new InputError('prune-curve generates IOI reference sets from text: the model needs a tokenizer.json', engine.folder);
  const seeds = options.seeds ?? PRUNE_CURVE_DEFAULTS.seeds;
  const size = options.reference ?? PRUNE_CURVE_DEFAULTS.reference;
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new InputError(`seeds must be an integer ≥ 1, got ${seeds}`);
  if (!(Number.isInteger(size) && size >= 2)) throw new InputError(`reference must be an integer ≥ 2, got ${size}`);
  for (const [name, list] of [['methods', options.methods], ['modes', options.modes], ['rates', options.rates]] as const) {
    if (list !== undefined && list.length === 0) throw new InputError(`prune curve: ${name} is empty`);
  }
  if (options.rates) checkCurveRates(options.rates);
  const run = cancellable(engine, ctx);
  ctx.progress?.({ message: 'Building the IOI reference and evaluation sets…', fraction: 0 });
  const tokenizer = engine.tokenizer;
  const evaluation = options.eval === 'ioi' ? heldOutIoiTask(tokenizer, PRUNE_CURVE_DEFAULTS.heldOut).examples : loadTask(engine, options.eval).examples;
  const encode = (t: string) => tokenizer.encodeIds(t);
  const seedIndex = only ?? Array.from({ length: seeds }, (_, s) => s);
  const references = seedIndex.map((s) => generateIoiTask({ count: size, seed: s + 1, encode }).examples);
  const total = seriesCount(options.modes ?? CURVE_MODES, options.methods ?? CURVE_METHODS);
  let done = 0;
  ctx.progress?.({ message: `Pruning: 0/${total} curves…`, fraction: 0.02 });
  return pruneCurves(run, {
    references,
    evaluation,
    keep: options.keep ?? PRUNE_CURVE_DEFAULTS.keep,
    ...(options.methods && { methods: options.methods }),
    ...(options.modes && { modes: options.modes }),
    ...(options.rates && { rates: options.rates }),
    ...(only && { seedIndex }),
    // pruneCurves logs once per finished (mode, method) series: that is the progress step.
    log: (line) => {
      done++;
      ctx.log?.(line);
      ctx.progress?.({ message: `Pruning: ${done}/${total} curves…`, fraction: 0.02 + (0.98 * done) / Math.max(1, total) });
    },
  });
}

export const PARTIAL_CURVE_FORMAT = 'circuit-lens-partial-prune-curve';

/**
 * What `prune-curve --shard k/n` writes: the `[seed][rate]` accuracies of its seeds (k−1, k−1+n, …)
 * for every series. A seed's curve is computed alone (its own reference set, its own scores), so
 * its accuracies are the unsharded run's; the merge puts the rows back in seed order and takes
 * mean ± SEM once over all seeds (`summarizeSeries`), never an average of shard averages.
 */
export interface PartialPruneCurve {
  readonly format: typeof PARTIAL_CURVE_FORMAT;
  readonly version: 1;
  readonly run: { readonly model: string; readonly eval: string; readonly seeds: number; readonly reference: number; readonly keep: number; readonly settings: PruneCurveResult['settings']; readonly series: readonly { mode: CurveMode; method: CurveMethod; scope: string; total: number }[] };
  readonly shard: Shard;
  readonly seedIndex: readonly number[];
  readonly dense: number;
  /** Per series (run.series order): `[shard seed][rate]`. */
  readonly accuracy: readonly (readonly (readonly number[])[])[];
}

export async function pruneCurveShard(engine: Engine, options: PruneCurveOptions & { shard: Shard }, ctx: JobContext = {}): Promise<PartialPruneCurve> {
  const seeds = options.seeds ?? PRUNE_CURVE_DEFAULTS.seeds;
  const { shard } = options;
  if (shard.count > seeds) throw new InputError(`--shard ${shard.index + 1}/${shard.count}: prune-curve shards split the ${seeds} seeds, so at most ${seeds} shards`);
  const only = Array.from({ length: seeds }, (_, s) => s).filter((s) => s % shard.count === shard.index);
  const result = await pruneCurve(engine, options, ctx, only);
  return {
    format: PARTIAL_CURVE_FORMAT,
    version: 1,
    run: {
      model: path.basename(engine.folder),
      eval: options.eval === 'ioi' ? 'ioi' : path.basename(options.eval),
      seeds,
      reference: options.reference ?? PRUNE_CURVE_DEFAULTS.reference,
      keep: result.keep,
      settings: { ...result.settings, references: seeds },
      series: result.series.map((s) => ({ mode: s.mode, method: s.method, scope: s.scope, total: s.total })),
    },
    shard,
    seedIndex: only,
    dense: result.dense,
    accuracy: result.series.map((s) => s.accuracy),
  };
}

/** Puts every seed's rows back in order and summarizes once: the unsharded `pruneCurve` result. */
export function mergePruneCurves(parts: readonly PartialPruneCurve[]): PruneCurveResult {
  if (parts.length === 0) throw new Error('no partial results to merge');
  for (const p of parts) if (p.format !== PARTIAL_CURVE_FORMAT || p.version !== 1) throw new Error('not a prune-curve --shard output (format/version)');
  const first = parts[0]!;
  checkShardSet(
    parts.map((p) => ({ run: JSON.stringify(p.run), shown: JSON.stringify(p.run), shard: p.shard })),
    ' (model, evaluation set or options differ)',
  );
  const rows = new Map<number, { part: PartialPruneCurve; at: number }>();
  for (const p of parts) {
    if (p.dense !== first.dense) throw new Error(`the shards measured different dense accuracies (${p.dense} vs ${first.dense}): not the same model or evaluation set`);
    p.seedIndex.forEach((s, at) => rows.set(s, { part: p, at }));
  }
  const seeds = Array.from({ length: first.run.seeds }, (_, s) => s);
  if (seeds.some((s) => !rows.has(s)) || rows.size !== seeds.length) throw new Error(`the shards do not hold every seed 0…${first.run.seeds - 1} once`);
  const series = first.run.series.map((s, j) =>
    summarizeSeries({ ...s, scope: s.scope as CurveSeries['scope'], rates: [...first.run.settings.rates], accuracy: seeds.map((seed) => { const r = rows.get(seed)!; return [...r.part.accuracy[j]![r.at]!]; }) }, first.dense, first.run.keep),
  );
  return { dense: first.dense, keep: first.run.keep, series, settings: first.run.settings };
}
