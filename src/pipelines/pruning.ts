/**
 * Model-editing use cases: unstructured pruning (SparC³ compression), correction (removing an
 * undesired behaviour) and PXP tuning. The CLI's `prune`/`correct`/`tune` and the editor's
 * Prune Model…/Correct Model… call these, with the defaults declared here.
 */
import * as path from 'node:path';
import type { Composite } from '../engine/api';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import { correct as correctNeurons, undesiredOutputs, type CorrectionStep, type CorrectionUnit } from '../circuits/pruning/correct';
import { calibrationWindows, nextTokenOutputs, prune as pruneWeights, type CalibTarget, type ExplainedOutput, type PruneReport } from '../circuits/pruning/prune';
import { evaluate, ioiMetrics, loadTask, probabilityMetric, readTextIds, sparsityCurves, textPerplexity } from '../circuits/pruning/pruneEval';
import { tune as tuneSettings, pxpSearch, PXP_DEFAULT_CONFIG, type PxpMetric, type PxpSearchResult, type PxpUnit, type TuneResult } from '../circuits/pruning/tune';
import { parseRuleSpec } from '../circuits/pruning/pxpRules';
import { heldOutIoiTask } from '../circuits/tasks/generators';
import type { TaskExample } from '../circuits/tasks/tasks';
import type { Aggregation, PruneMethod, PruneScope, SampleUnit } from '../vocabulary';
import { cancellable, stepProgress, type JobContext } from './context';
import { CORRECT_DEFAULTS, PRUNE_DEFAULTS } from './defaults';

export { CORRECT_DEFAULTS, PRUNE_DEFAULTS };
import { evalSetPath, modelFile, requireFile, undesiredRows } from './inputs';
import type { WeightScores } from '../circuits/pruning/prune';
import { calibrationHash, decodeWeightScores, encodePartialWeights, scoreWeightShard, type WeightShardRun } from '../circuits/pruning/shard';
import type { Shard } from '../circuits/discovery/shard';
import { COMPOSITES } from '../vocabulary';


/** Most tokens perplexity is measured on (the README's: 64 windows of 128). */
export const EVAL_TOKENS = 64 * 128;


/**
 * One token stream split for pruning or correction: perplexity on the first part (at most
 * `EVAL_TOKENS`), reference windows from the last `calibTokens` tokens, so the two never overlap.
 */
export function splitText(ids: readonly number[], calibTokens: number, file: string): { evalIds: number[]; calibIds: number[] } {
  const evalCount = Math.min(EVAL_TOKENS, ids.length - calibTokens);
  if (evalCount < 2) {
    throw new InputError(`the text has ${ids.length} tokens: too few for ${calibTokens} reference tokens plus text to measure perplexity on. Choose a longer text or fewer windows`, file);
  }
  return { evalIds: ids.slice(0, evalCount), calibIds: ids.slice(ids.length - calibTokens) };
}

export interface PruneOptions {
  readonly method: PruneMethod;
  readonly sparsity: number;
  readonly scope?: PruneScope;
  readonly aggregation?: Aggregation;
  readonly target?: CalibTarget;
  readonly samples?: SampleUnit;
  readonly windows?: number;
  readonly windowLength?: number;
  /**
   * One text split into evaluation and calibration parts (`splitText`); default: the model
   * folder's heldout.txt. Ignored when `calib` is given.
   */
  readonly text?: string;
  /** A calibration text of its own (and, optionally, a separate evaluation text). */
  readonly calib?: string;
  readonly eval?: string;
  /** Sparsities at which perplexity is also measured (the curve); the requested one is always. */
  readonly curve?: readonly number[];
  /**
   * Merged shard scores (`circuit-lens merge` of `prune --shard` parts, src/circuits/pruning/shard.ts)
   * instead of scoring here; they must come from the same model, method, options and calibration text.
   */
  readonly scores?: Buffer;
}

export interface PruneRunResult {
  readonly settings: { method: PruneMethod; scope: PruneScope; sparsity: number; aggregation: Aggregation; target: CalibTarget; samples: SampleUnit; windows: number; windowLength: number; calibText: string | null; evalText: string | null };
  readonly report: Omit<PruneReport, 'perTensor'>;
  readonly perTensor: PruneReport['perTensor'];
  readonly evalTokens: number;
  readonly perplexityBefore: number | null;
  readonly perplexityAfter: number | null;
  /** Perplexity against sparsity (0 = dense), when an evaluation text was used. */
  readonly curve: readonly { readonly sparsity: number; readonly perplexity: number }[];
  /** The pruned tensors (HF name → values), for Export Model. */
  readonly weights: Map<string, Float32Array>;
}

/** The calibration and evaluation token streams of a prune run (`PruneOptions` text, calib, eval). */
function pruneTexts(
  engine: Engine,
  options: Pick<PruneOptions, 'text' | 'calib' | 'eval' | 'method' | 'windows' | 'windowLength'>,
  needsCalib: boolean,
  ctx: JobContext,
): { calibIds: number[] | null; evalIds: number[] | null; calibText: string | null; evalText: string | null } {
  const windows = options.windows ?? PRUNE_DEFAULTS.windows;
  const windowLength = options.windowLength ?? PRUNE_DEFAULTS.windowLength;
  const method = options.method;
  let calibIds: number[] | null = null;
  let evalIds: number[] | null = null;
  let calibText: string | null = null;
  let evalText: string | null = null;
  if (options.calib !== undefined) {
    calibText = requireFile(options.calib, 'calibration text');
    calibIds = readTextIds(engine, calibText);
    if (options.eval !== undefined) {
      evalText = requireFile(options.eval, 'evaluation text');
      evalIds = readTextIds(engine, evalText);
    }
  } else {
    const text = options.text !== undefined ? requireFile(options.text, 'text') : modelFile(engine, PRUNE_DEFAULTS.text, 'text file');
    ctx.progress?.({ message: `Tokenizing ${path.basename(text)}…`, fraction: 0 });
    const split = splitText(readTextIds(engine, text), needsCalib ? windows * windowLength : 0, text);
    evalIds = split.evalIds;
    evalText = text;
    if (needsCalib) {
      calibIds = split.calibIds;
      calibText = text;
    }
  }
  if (needsCalib && calibIds === null) throw new InputError(`${method} scores weights on calibration text: name one`);
  return { calibIds, evalIds, calibText, evalText };
}

export async function prune(engine: Engine, options: PruneOptions, ctx: JobContext = {}): Promise<PruneRunResult> {
  const run = cancellable(engine, ctx);
  const method = options.method;
  const scope = options.scope ?? PRUNE_DEFAULTS.scope;
  const aggregation = options.aggregation ?? PRUNE_DEFAULTS.aggregation;
  const target = options.target ?? PRUNE_DEFAULTS.target;
  const samples = options.samples ?? PRUNE_DEFAULTS.samples;
  const windows = options.windows ?? PRUNE_DEFAULTS.windows;
  const windowLength = options.windowLength ?? PRUNE_DEFAULTS.windowLength;
  if (!(options.sparsity >= 0 && options.sparsity <= 1)) throw new InputError(`the sparsity must be in [0, 1], got ${options.sparsity}`);
  const needsCalib = method !== 'magnitude' && method !== 'random';
  const { calibIds, evalIds, calibText, evalText } = pruneTexts(engine, options, needsCalib, ctx);
  let given: WeightScores | undefined;
  if (options.scores) {
    if (!needsCalib) throw new InputError(`--from-scores holds attribution scores; method ${method} scores weights itself`);
    try {
      given = decodeWeightScores(engine, options.scores);
    } catch (err) {
      throw new InputError((err as Error).message);
    }
    const want = shardRunKey(calibIds!, { method, aggregation, target, samples, windows, windowLength });
    const got = { method: given.method, aggregation: given.aggregation, target: given.target, samples: given.samples, windows: given.calibration!.windows, windowLength: given.calibration!.windowLength, calibration: (JSON.parse(options.scores.subarray(0, options.scores.indexOf(0x0a)).toString('utf8')) as { run: WeightShardRun }).run.calibration };
    if (JSON.stringify(want) !== JSON.stringify(got)) throw new InputError(`the merged scores are from other settings or another calibration text: ${JSON.stringify(got)} vs this run's ${JSON.stringify(want)}`);
  }
  let dense: number | null = null;
  if (evalIds) {
    ctx.progress?.({ message: 'Measuring the dense perplexity…', fraction: 0.02 });
    dense = (await textPerplexity(run, evalIds)).perplexity;
  }
  ctx.progress?.({ message: `Scoring weights (${method})…`, fraction: 0.05 });
  const result = await pruneWeights(run, {
    method,
    scope,
    sparsity: options.sparsity,
    aggregation,
    target,
    samples,
    ...(calibIds && { calibIds }),
    windows,
    windowLength,
    ...(given && { scores: given }),
    progress: stepProgress(ctx, (d, t) => `Scoring weights: ${d}/${t} explained outputs…`, 0.05, 0.65),
  });
  let curve: { sparsity: number; perplexity: number }[] = [];
  let after: number | null = null;
  if (evalIds && dense !== null) {
    const sparsities = [...new Set([...(options.curve ?? []), options.sparsity])].filter((x) => x > 0).sort((a, b) => a - b);
    const curves = await sparsityCurves(run, {
      methods: [{ method, scope, aggregation, target, samples }],
      sparsities,
      calibIds: calibIds ?? [],
      evalIds,
      scores: result.scores,
      densePerplexity: dense,
      onPoint: stepProgress(ctx, (d, t) => `Perplexity at ${d}/${t} sparsities…`, 0.65, 1),
    });
    curve = [{ sparsity: 0, perplexity: dense }, ...curves.rows[0]!.points.map((p) => ({ sparsity: p.sparsity, perplexity: p.perplexity ?? Number.NaN }))];
    after = curve.find((p) => p.sparsity === options.sparsity)?.perplexity ?? dense;
  }
  const { perTensor, ...report } = result.report;
  ctx.log?.(`pruned ${report.prunedWeights} of ${report.totalWeights} weights (${method}/${scope})${dense !== null ? `; perplexity ${dense.toFixed(4)} → ${after!.toFixed(4)}` : ''}`);
  return {
    settings: { method, scope, sparsity: options.sparsity, aggregation, target, samples, windows, windowLength, calibText, evalText },
    report,
    perTensor,
    evalTokens: evalIds?.length ?? 0,
    perplexityBefore: dense,
    perplexityAfter: after,
    curve,
    weights: result.weights,
  };
}

/** What shards and merged scores must agree on, besides the model's weights. */
function shardRunKey(calibIds: readonly number[], o: { method: string; aggregation: Aggregation; target: CalibTarget; samples: SampleUnit; windows: number; windowLength: number }) {
  const windows = calibrationWindows(calibIds, { windows: o.windows, windowLength: o.windowLength });
  return { method: o.method, aggregation: o.aggregation, target: o.target, samples: o.samples, windows: windows.length, windowLength: o.windowLength, calibration: calibrationHash(windows.flat()) };
}

/** Default attribution batch of the weight scores (prune.ts `attributionScores`). */
const SCORE_BATCH_ROWS = 16;

/**
 * `prune --shard k/n`: scores this shard's calibration batches and returns the partial file
 * (exact per-weight sums; src/circuits/pruning/shard.ts). Attribution methods only: magnitude
 * and random need no calibration, Wanda's sums of squares are not sharded.
 */
export async function pruneShard(engine: Engine, options: Omit<PruneOptions, 'sparsity' | 'curve' | 'scores'> & { shard: Shard }, ctx: JobContext = {}): Promise<{ data: Buffer; rows: number; of: number; batches: string }> {
  if (!COMPOSITES.includes(options.method as Composite)) throw new InputError(`--shard splits attribution scores over calibration windows; method ${options.method} is not an attribution method (${COMPOSITES.join(', ')})`);
  const method = options.method as Composite;
  const aggregation = options.aggregation ?? PRUNE_DEFAULTS.aggregation;
  const target = options.target ?? PRUNE_DEFAULTS.target;
  const samples = options.samples ?? PRUNE_DEFAULTS.samples;
  const windows = options.windows ?? PRUNE_DEFAULTS.windows;
  const windowLength = options.windowLength ?? PRUNE_DEFAULTS.windowLength;
  const { calibIds } = pruneTexts(engine, options, true, ctx);
  const key = shardRunKey(calibIds!, { method, aggregation, target, samples, windows, windowLength });
  const rows = nextTokenOutputs(calibrationWindows(calibIds!, { windows, windowLength }), target, samples);
  const partial = await scoreWeightShard(cancellable(engine, ctx), rows, {
    run: { model: path.basename(engine.folder), ...key, method, batchRows: SCORE_BATCH_ROWS },
    shard: options.shard,
    progress: stepProgress(ctx, (d, t) => `Scoring weights: batch ${d}/${t} of this shard…`, 0, 1),
  });
  const nBatches = Math.ceil(rows.length / SCORE_BATCH_ROWS);
  return { data: encodePartialWeights(partial), rows: partial.header.count, of: rows.length, batches: `${Array.from({ length: nBatches }, (_, b) => b).filter((b) => b % options.shard.count === options.shard.index).length} of ${nBatches}` };
}

export interface CorrectOptions {
  /** JSONL task of the undesired behaviour (an eval-set name such as `toxic`, or a path). */
  readonly undesired: string;
  /** General data: a text file (next-token windows, perplexity) or a JSONL task (its targets, its metric). */
  readonly general: string;
  readonly unit?: CorrectionUnit;
  readonly count: number;
  readonly mode?: Composite;
  readonly windows?: number;
  readonly windowLength?: number;
  /** Removal counts evaluated along the way (default: powers of two up to `count`, and `count`). */
  readonly steps?: readonly number[];
}

export interface CorrectRunResult {
  readonly settings: { undesired: string; general: string; unit: CorrectionUnit; count: number; mode: Composite; windows: number; windowLength: number };
  readonly totalComponents: number;
  readonly removed: readonly { readonly id: string; readonly score: number; readonly general: number; readonly undesired: number }[];
  readonly steps: readonly CorrectionStep[];
  /** Metrics of the dense model and of the corrected one (the first and last step). */
  readonly before: Record<string, number>;
  readonly after: Record<string, number>;
  readonly details: Record<string, unknown>;
  readonly weights: Map<string, Float32Array>;
}

export async function correct(engine: Engine, options: CorrectOptions, ctx: JobContext = {}): Promise<CorrectRunResult> {
  const run = cancellable(engine, ctx);
  const mode = options.mode ?? CORRECT_DEFAULTS.mode;
  const unit = options.unit ?? 'neurons';
  const windows = options.windows ?? CORRECT_DEFAULTS.windows;
  const windowLength = options.windowLength ?? CORRECT_DEFAULTS.windowLength;
  ctx.progress?.({ message: 'Reading the task files…', fraction: 0 });
  const undesiredFile = evalSetPath(engine, options.undesired);
  const undesired = undesiredRows(loadTask(engine, undesiredFile), undesiredFile);
  const isProb = undesired[0]!.goodTokens !== undefined;
  let general: ExplainedOutput[];
  let generalMetrics: (e: Engine) => Promise<Record<string, number>>;
  let generalSplit: Record<string, unknown> = {};
  if (/\.jsonl$/i.test(options.general)) {
    const generalTask = loadTask(engine, requireFile(options.general, 'general task'));
    general = undesiredOutputs(generalTask.examples);
    generalMetrics = async (e) => {
      const values = (await evaluate(e, { task: generalTask })).task?.values ?? {};
      return Object.fromEntries(Object.entries(values).map(([k, v]) => [`general_${k}`, v]));
    };
  } else {
    const file = requireFile(options.general, 'general text');
    const { calibIds, evalIds } = splitText(readTextIds(engine, file), windows * windowLength, file);
    general = nextTokenOutputs(calibrationWindows(calibIds, { windows, windowLength }));
    generalMetrics = async (e) => ({ general_perplexity: (await textPerplexity(e, evalIds)).perplexity });
    generalSplit = { reference_tokens: calibIds.length, perplexity_tokens: evalIds.length, note: 'reference windows from the end of the general text, perplexity on its first part' };
  }
  const metricName = isProb ? 'undesired_probability' : 'undesired_logit_diff';
  let evaluations = 0;
  const result = await correctNeurons(run, {
    undesired: undesiredOutputs(undesired),
    general,
    unit,
    count: options.count,
    mode,
    ...(options.steps ? { steps: options.steps } : {}),
    progress: stepProgress(ctx, (d, t) => `Scoring ${unit}: ${d}/${t} explained outputs…`, 0, 0.8),
    evaluate: async (e) => {
      ctx.progress?.({ message: evaluations++ === 0 ? 'Evaluating the dense model…' : 'Evaluating the corrected model…', fraction: evaluations === 1 ? 0.8 : 0.9 });
      return {
        [metricName]: isProb ? await probabilityMetric(e, undesired) : (await ioiMetrics(e, undesired)).logitDiff,
        ...(await generalMetrics(e)),
      };
    },
  });
  const before = result.steps[0]?.metrics ?? {};
  const after = result.steps[result.steps.length - 1]?.metrics ?? {};
  ctx.log?.(`correction removed ${result.count} ${unit}: ${Object.keys(before).map((k) => `${k} ${before[k]!.toFixed(4)} → ${(after[k] ?? Number.NaN).toFixed(4)}`).join(', ')}`);
  return {
    settings: { undesired: undesiredFile, general: options.general, unit, count: result.count, mode, windows, windowLength },
    totalComponents: result.totalComponents,
    removed: result.removed,
    steps: result.steps,
    before,
    after,
    details: { settings: result.settings, general_split: generalSplit },
    weights: result.weights,
  };
}

export interface TuneOptions {
  readonly task: string;
  readonly budget?: number;
  readonly seed?: number;
  readonly unit?: 'neurons' | 'weights';
  readonly metric?: 'accuracy' | 'logit_diff';
  /** Reference prompts (the rest are evaluation prompts). */
  readonly reference?: number;
}

export async function tune(engine: Engine, options: TuneOptions, ctx: JobContext = {}): Promise<TuneResult> {
  const run = cancellable(engine, ctx);
  const task = loadTask(engine, evalSetPath(engine, options.task));
  const nRef = options.reference ?? Math.min(64, Math.floor(task.examples.length / 3));
  if (nRef < 1 || nRef >= task.examples.length) throw new InputError(`${nRef} reference prompts leave no evaluation prompts (the task has ${task.examples.length})`);
  return tuneSettings(run, {
    reference: task.examples.slice(0, nRef),
    evaluation: task.examples.slice(nRef),
    budget: options.budget ?? 6,
    seed: options.seed ?? 0,
    unit: options.unit ?? 'neurons',
    metric: options.metric ?? 'accuracy',
  });
}

export interface PxpTuneOptions {
  readonly task: string;
  readonly budget?: number;
  readonly seed?: number;
  readonly unit?: PxpUnit;
  readonly metric?: PxpMetric;
  /** Reference prompts, the first rows of the task (the rest are the calibration split). */
  readonly reference?: number;
  /** Compact or JSON rule spec (pxpRules.ts) evaluated first: the baseline the gain is measured against. */
  readonly rules?: string;
  readonly ranking?: 'abs' | 'signed';
  /** Held-out prompts from the generated held-out IOI split (`--task ioi` only). */
  readonly heldout?: number;
  readonly relevanceSeed?: 'value' | 'one';
}

/**
 * PXP's rule search (tune.ts `pxpSearch`): a linear rule per layer group × softmax rule ×
 * ranking, chosen by TPE on the calibration split; with `heldout`, the best configuration and
 * the baseline are re-measured on the held-out IOI split with a paired bootstrap CI.
 */
export async function pxpTune(engine: Engine, options: PxpTuneOptions, ctx: JobContext = {}): Promise<PxpSearchResult> {
  const run = cancellable(engine, ctx);
  const task = loadTask(engine, evalSetPath(engine, options.task));
  const nRef = options.reference ?? Math.min(64, Math.floor(task.examples.length / 3));
  if (nRef < 1 || nRef >= task.examples.length) throw new InputError(`${nRef} reference prompts leave no calibration prompts (the task has ${task.examples.length})`);
  let heldOut: readonly TaskExample[] | undefined;
  if (options.heldout !== undefined) {
    if (options.task !== 'ioi') throw new InputError('--heldout generates the held-out IOI split; it needs --task ioi');
    if (!engine.tokenizer) throw new InputError('--heldout needs the model folder’s tokenizer');
    heldOut = heldOutIoiTask(engine.tokenizer, options.heldout, task.examples.map((e) => e.prompt ?? '')).examples;
  }
  const baseline = { rules: options.rules !== undefined ? parseRuleSpec(options.rules) : PXP_DEFAULT_CONFIG.rules, ranking: options.ranking ?? PXP_DEFAULT_CONFIG.ranking };
  return pxpSearch(run, {
    reference: task.examples.slice(0, nRef),
    calibration: task.examples.slice(nRef),
    ...(heldOut ? { heldOut } : {}),
    unit: options.unit ?? 'neurons',
    budget: options.budget ?? 24,
    seed: options.seed ?? 0,
    metric: options.metric ?? 'logit_diff',
    relevanceSeed: options.relevanceSeed ?? 'one',
    baseline,
    ...(ctx.log ? { log: (line: string) => ctx.log!(line) } : {}),
  });
}
