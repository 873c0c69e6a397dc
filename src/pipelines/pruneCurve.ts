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
import { CURVE_METHODS, pruneCurves, type CurveMethod, type CurveMode, type PruneCurveResult } from '../circuits/pruning/pruneCurve';
import type { CURVE_METHOD_NAMES, CURVE_MODE_NAMES } from '../protocol/shapes';
import { cancellable, type JobContext } from './context';

export const CURVE_MODES: readonly CurveMode[] = ['structured', 'unstructured'];

// Compile-time check: the wire's method/mode names (src/protocol/shapes.ts) are src/circuits' names.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameNames: [Same<(typeof CURVE_METHOD_NAMES)[number], CurveMethod>, Same<(typeof CURVE_MODE_NAMES)[number], CurveMode>] = [true, true];
void sameNames;

export const PRUNE_CURVE_DEFAULTS = {
  seeds: 3,
  reference: 128,
  keep: 0.9,
  /** Prompts of the held-out IOI split used by `eval: 'ioi'`. */
  heldOut: 200,
} as const;

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

export async function pruneCurve(engine: Engine, options: PruneCurveOptions, ctx: JobContext = {}): Promise<PruneCurveResult> {
  if (options.eval !== 'ioi' && !fs.existsSync(options.eval)) throw new InputError('--eval: file not found', options.eval);
  if (!engine.tokenizer) throw new InputError('prune-curve generates IOI reference sets from text: the model needs a tokenizer.json', engine.folder);
  const seeds = options.seeds ?? PRUNE_CURVE_DEFAULTS.seeds;
  const size = options.reference ?? PRUNE_CURVE_DEFAULTS.reference;
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new InputError(`seeds must be an integer ≥ 1, got ${seeds}`);
  if (!(Number.isInteger(size) && size >= 2)) throw new InputError(`reference must be an integer ≥ 2, got ${size}`);
  for (const [name, list] of [['methods', options.methods], ['modes', options.modes], ['rates', options.rates]] as const) {
    if (list !== undefined && list.length === 0) throw new InputError(`prune curve: ${name} is empty`);
  }
  const run = cancellable(engine, ctx);
  ctx.progress?.({ message: 'Building the IOI reference and evaluation sets…', fraction: 0 });
  const tokenizer = engine.tokenizer;
  const evaluation = options.eval === 'ioi' ? heldOutIoiTask(tokenizer, PRUNE_CURVE_DEFAULTS.heldOut).examples : loadTask(engine, options.eval).examples;
  const encode = (t: string) => tokenizer.encodeIds(t);
  const references = Array.from({ length: seeds }, (_, s) => generateIoiTask({ count: size, seed: s + 1, encode }).examples);
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
    // pruneCurves logs once per finished (mode, method) series: that is the progress step.
    log: (line) => {
      done++;
      ctx.log?.(line);
      ctx.progress?.({ message: `Pruning: ${done}/${total} curves…`, fraction: 0.02 + (0.98 * done) / Math.max(1, total) });
    },
  });
}
