/**
 * Evaluation for pruning and correction: perplexity of a text (as the embedded model's README
 * defines it), IOI logit difference / accuracy, insult probability on toxic.jsonl, and
 * sparsity–metric curves for several methods from one set of scores each.
 */

import * as fs from 'node:fs';
import type { Engine } from '../../engine/engine';
import { InputError } from '../../models/errors';
import { logSoftmax, perplexity, perplexityWindows, windowNll, type PerplexityResult } from '../metrics';
import { makeMask, applyMask, maskStats, weightScores, type CalibTarget, type CalibrationOptions, type WeightScores } from './prune';
import { loadTaskFile, splitTaskBy, type Task, type TaskExample } from '../tasks/tasks';
import { type Aggregation, type PruneMethod, type PruneScope, type SampleUnit } from '../../vocabulary';

// ---------------------------------------------------------------------------------------------
// Text

/** Encodes a whole text as one stream without special tokens (the perplexity definition). */
export function encodeText(engine: Engine, text: string): number[] {
  if (!engine.tokenizer) throw new InputError('this model folder has no tokenizer.json: text cannot be encoded', engine.folder);
  const ids = engine.tokenizer.encodeIds(text, false);
  if (ids.length === 0) throw new InputError('the text is empty');
  return ids;
}

export function readTextIds(engine: Engine, file: string): number[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read the text file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  return encodeText(engine, text);
}

/**
 * Perplexity as in the model README: one stream, consecutive non-overlapping windows of the
 * context length, each scored on its own (the first token of each window is not predicted),
 * exp(mean NLL).
 */
export function textPerplexity(engine: Engine, ids: readonly number[], contextLength?: number): Promise<PerplexityResult> {
  return perplexity(engine, ids, { contextLength: contextLength ?? engine.spec.maxPositions, batchSize: 8 });
}

// ---------------------------------------------------------------------------------------------
// Tasks

export function loadTask(engine: Engine, file: string): Task {
  // Prompts are encoded as the model was trained (Llama: with BOS), as the CLI's discover does.
  const tokenizer = engine.tokenizer;
  return loadTaskFile(file, { vocabSize: engine.spec.vocabSize, ...(tokenizer && { encode: (t: string) => tokenizer.encodeIds(t) }) });
}

async function lastLogits(engine: Engine, examples: readonly TaskExample[], batch = 32): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let start = 0; start < examples.length; start += batch) {
    const rows = await engine.forward({ ids: examples.slice(start, start + batch).map((e) => e.ids) });
    for (const r of rows) out.push(r.logitsLast);
  }
  return out;
}

export interface IoiResult {
  /** Mean logit(io) − logit(s) at the last position. */
  readonly logitDiff: number;
  /** Share with logit diff > 0. */
  readonly accuracy: number;
  /** Share where io is the arg-max. */
  readonly top1: number;
  readonly n: number;
}

/** IOI metrics (README definitions): logits at the last prompt position, io = target, s = foil. */
export async function ioiMetrics(engine: Engine, examples: readonly TaskExample[]): Promise<IoiResult> {
  if (examples.length === 0) throw new Error('IOI: no examples');
  const logits = await lastLogits(engine, examples);
  let diff = 0;
  let acc = 0;
  let top1 = 0;
  examples.forEach((e, i) => {
    const l = logits[i]!;
    if (e.target === undefined || e.foil === undefined) throw new InputError(`${e.origin}: IOI needs io and s tokens`);
    const d = l[e.target]! - l[e.foil]!;
    diff += d;
    if (d > 0) acc++;
    let best = 0;
    for (let v = 1; v < l.length; v++) if (l[v]! > l[best]!) best = v;
    if (best === e.target) top1++;
  });
  const n = examples.length;
  return { logitDiff: diff / n, accuracy: acc / n, top1: top1 / n, n };
}

/** Mean over examples of Σ softmax p(goodTokens) at the last position (toxic.jsonl: `toxic_token_ids`). */
export async function probabilityMetric(engine: Engine, examples: readonly TaskExample[]): Promise<number> {
  if (examples.length === 0) throw new Error('probability metric: no examples');
  const logits = await lastLogits(engine, examples);
  let total = 0;
  examples.forEach((e, i) => {
    if (!e.goodTokens) throw new InputError(`${e.origin}: no toxic_token_ids/good_ids`);
    const lp = logSoftmax(logits[i]!);
    for (const t of new Set(e.goodTokens)) total += Math.exp(lp[t]!);
  });
  return total / examples.length;
}

/** toxic.jsonl split by `context` (toxic / control). */
export function toxicSplit(task: Task): { toxic: TaskExample[]; control: TaskExample[] } {
  const groups = splitTaskBy(task, 'context');
  const toxic = groups.get('toxic')?.examples ?? [];
  if (toxic.length === 0) throw new InputError(`${task.name}: no rows with "context": "toxic"`);
  return { toxic: [...toxic], control: [...(groups.get('control')?.examples ?? [])] };
}

// ---------------------------------------------------------------------------------------------
// Generic evaluation (CLI `eval`)

export interface EvalResult {
  readonly perplexity?: PerplexityResult;
  readonly task?: { readonly name: string; readonly metric: string; readonly n: number; readonly values: Record<string, number> };
}

/**
 * Perplexity of a text, or a task's metrics: IOI-style tasks (target + foil) give logit diff,
 * accuracy and top-1; probability tasks (toxic.jsonl) give the mean probability mass, split by
 * `context` when the file has it.
 */
export async function evaluate(engine: Engine, what: { textIds?: readonly number[]; task?: Task }): Promise<EvalResult> {
  if (what.textIds) return { perplexity: await textPerplexity(engine, what.textIds) };
  const task = what.task;
  if (!task) throw new InputError('nothing to evaluate: give a text or a task');
  const first = task.examples[0]!;
  if (first.target !== undefined && first.foil !== undefined) {
    const r = await ioiMetrics(engine, task.examples);
    return { task: { name: task.name, metric: 'logit_diff', n: r.n, values: { logit_diff: r.logitDiff, accuracy: r.accuracy, top1: r.top1 } } };
  }
  if (first.goodTokens !== undefined && first.badTokens === undefined) {
    const values: Record<string, number> = { prob: await probabilityMetric(engine, task.examples) };
    if (first.meta.context !== undefined) {
      for (const [key, sub] of splitTaskBy(task, 'context')) values[`prob_${key}`] = await probabilityMetric(engine, sub.examples);
    }
    return { task: { name: task.name, metric: 'prob', n: task.examples.length, values } };
  }
  if (first.goodTokens !== undefined && first.badTokens !== undefined) {
    const logits = await lastLogits(engine, task.examples);
    let total = 0;
    task.examples.forEach((e, i) => {
      const lp = logSoftmax(logits[i]!);
      for (const t of new Set(e.goodTokens)) total += Math.exp(lp[t]!);
      for (const t of new Set(e.badTokens)) total -= Math.exp(lp[t]!);
    });
    return { task: { name: task.name, metric: 'prob_diff', n: task.examples.length, values: { prob_diff: total / task.examples.length } } };
  }
  throw new InputError(`${task.name}: the examples have neither target/foil nor good tokens; nothing to score`);
}

// ---------------------------------------------------------------------------------------------
// Sparsity curves

export interface CurveMethod {
  readonly method: PruneMethod;
  readonly scope: PruneScope;
  readonly aggregation?: Aggregation;
  readonly target?: CalibTarget;
  readonly samples?: SampleUnit;
  /** Row label (default `method/scope`). */
  readonly label?: string;
}

export interface CurvePoint {
  readonly sparsity: number;
  readonly achievedSparsity: number;
  readonly perplexity?: number;
  readonly ioi?: IoiResult;
}

export interface CurveRow {
  readonly label: string;
  readonly method: PruneMethod;
  readonly scope: PruneScope;
  readonly points: CurvePoint[];
  readonly scoreSeconds: number;
}

export interface CurveOptions extends CalibrationOptions {
  readonly methods: readonly CurveMethod[];
  readonly sparsities: readonly number[];
  readonly calibIds: readonly number[];
  /** Perplexity text (ids). */
  readonly evalIds?: readonly number[];
  readonly ioi?: readonly TaskExample[];
  readonly log?: (line: string) => void;
  /** Scores computed earlier (e.g. by `prune`), reused for the methods they were computed with. */
  readonly scores?: WeightScores;
  /** Perplexity of the dense model on `evalIds`, when already known. */
  readonly densePerplexity?: number;
  /** Called after each evaluated point with (points done, points total). */
  readonly onPoint?: (done: number, total: number) => void;
}

/**
 * For each method: scores once on the calibration data (shared between scopes and sparsities
 * when method, aggregation and target agree), then masks at every sparsity and evaluates.
 */
export async function sparsityCurves(engine: Engine, options: CurveOptions): Promise<{ dense: { perplexity?: number; ioi?: IoiResult }; rows: CurveRow[] }> {
  const log = options.log ?? (() => undefined);
  const dense = {
    ...(options.evalIds && { perplexity: options.densePerplexity ?? (await textPerplexity(engine, options.evalIds)).perplexity }),
    ...(options.ioi && { ioi: await ioiMetrics(engine, options.ioi) }),
  };
  const cache = new Map<string, { scores: WeightScores; seconds: number }>();
  if (options.scores) {
    const s = options.scores;
    cache.set(`${s.method}|${s.aggregation ?? ''}|${s.target ?? ''}|${s.samples ?? 'sequence'}`, { scores: s, seconds: 0 });
  }
  const totalPoints = options.methods.length * options.sparsities.length;
  let donePoints = 0;
  const rows: CurveRow[] = [];
  for (const m of options.methods) {
    const scored = m.method === 'magnitude' || m.method === 'random' || m.method === 'wanda';
    const key = scored ? `${m.method}||` : `${m.method}|${m.aggregation ?? 'mean-abs'}|${m.target ?? 'logit'}|${m.samples ?? 'sequence'}`;
    let entry = cache.get(key);
    if (!entry) {
      const t0 = Date.now();
      const scores = await weightScores(engine, options.calibIds, {
        method: m.method,
        ...(m.aggregation && { aggregation: m.aggregation }),
        ...(m.target && { target: m.target }),
        ...(m.samples && { samples: m.samples }),
        ...(options.windowLength !== undefined && { windowLength: options.windowLength }),
        ...(options.windows !== undefined && { windows: options.windows }),
        ...(options.batchRows !== undefined && { batchRows: options.batchRows }),
      });
      entry = { scores, seconds: (Date.now() - t0) / 1000 };
      cache.set(key, entry);
      log(`scored ${m.method}${m.aggregation ? ` (${m.aggregation})` : ''} in ${entry.seconds.toFixed(1)} s`);
    }
    const label = m.label ?? `${m.method}/${m.scope}`;
    const points: CurvePoint[] = [];
    for (const s of options.sparsities) {
      const mask = makeMask(entry.scores, s, m.scope);
      const pruned = engine.withWeights(applyMask(engine, mask));
      try {
        const point: CurvePoint = {
          sparsity: s,
          achievedSparsity: maskStats(mask).sparsity,
          ...(options.evalIds && { perplexity: (await textPerplexity(pruned, options.evalIds)).perplexity }),
          ...(options.ioi && { ioi: await ioiMetrics(pruned, options.ioi) }),
        };
        points.push(point);
        log(`${label} ${(s * 100).toFixed(0)}%: ${point.perplexity !== undefined ? `ppl ${point.perplexity.toFixed(3)}` : ''}${point.ioi ? ` ioi acc ${point.ioi.accuracy.toFixed(3)}` : ''}`);
      } finally {
        await pruned.dispose();
      }
      options.onPoint?.(++donePoints, totalPoints);
    }
    rows.push({ label, method: m.method, scope: m.scope, points, scoreSeconds: entry.seconds });
  }
  return { dense, rows };
}

/** Area under a metric-vs-rate curve by the trapezoid rule (PXP's objective, `np.trapz`). */
export function trapezoidAuc(rates: readonly number[], values: readonly number[]): number {
  if (rates.length !== values.length) throw new Error('AUC: rates and values differ in length');
  let auc = 0;
  for (let i = 1; i < rates.length; i++) auc += ((values[i]! + values[i - 1]!) / 2) * (rates[i]! - rates[i - 1]!);
  return auc;
}

/** Markdown table of a curve result: one row per method, one column per sparsity. */
export function curveTable(result: { dense: { perplexity?: number; ioi?: IoiResult }; rows: CurveRow[] }, metric: 'perplexity' | 'ioi-accuracy' | 'ioi-logit-diff'): string {
  const sparsities = result.rows[0]?.points.map((p) => p.sparsity) ?? [];
  const value = (p: { perplexity?: number; ioi?: IoiResult }) =>
    metric === 'perplexity' ? p.perplexity : metric === 'ioi-accuracy' ? p.ioi?.accuracy : p.ioi?.logitDiff;
  const fmt = (v: number | undefined) => (v === undefined ? '–' : metric === 'ioi-accuracy' ? `${(v * 100).toFixed(1)}%` : v >= 1000 ? v.toExponential(2) : v.toFixed(3));
  const lines = [
    `| method | dense | ${sparsities.map((s) => `${Math.round(s * 100)}%`).join(' | ')} |`,
    `|---|---|${sparsities.map(() => '---').join('|')}|`,
  ];
  for (const row of result.rows) lines.push(`| ${row.label} | ${fmt(value(result.dense))} | ${row.points.map((p) => fmt(value(p))).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * Splits one token stream into a calibration part (the last `calibTokens` tokens) and an
 * evaluation part (everything before), so reference data and evaluated text never overlap.
 */
export function splitCalibration(ids: readonly number[], calibTokens: number): { calibIds: number[]; evalIds: number[] } {
  if (calibTokens >= ids.length) throw new InputError(`the text has ${ids.length} tokens; ${calibTokens} calibration tokens would leave nothing to evaluate`);
  return { calibIds: ids.slice(ids.length - calibTokens), evalIds: ids.slice(0, ids.length - calibTokens) };
}

// ---------------------------------------------------------------------------------------------
// Per-unit values, for bootstrap CIs over prompts / windows (src/circuits/stats.ts)

/** Per prompt: IO − S logit difference and whether it is > 0. */
export async function perPromptIoi(engine: Engine, examples: readonly TaskExample[]): Promise<{ logitDiff: number[]; correct: number[] }> {
  const logits = await lastLogits(engine, examples);
  const logitDiff = examples.map((e, i) => {
    if (e.target === undefined || e.foil === undefined) throw new InputError(`${e.origin}: IOI needs io and s tokens`);
    return logits[i]![e.target]! - logits[i]![e.foil]!;
  });
  return { logitDiff, correct: logitDiff.map((d) => (d > 0 ? 1 : 0)) };
}

/** Per prompt: Σ softmax p(goodTokens) at the last position. */
export async function perPromptProbability(engine: Engine, examples: readonly TaskExample[]): Promise<number[]> {
  const logits = await lastLogits(engine, examples);
  return examples.map((e, i) => {
    if (!e.goodTokens) throw new InputError(`${e.origin}: no toxic_token_ids/good_ids`);
    const lp = logSoftmax(logits[i]!);
    let p = 0;
    for (const t of new Set(e.goodTokens)) p += Math.exp(lp[t]!);
    return p;
  });
}

/** Per window (the `textPerplexity` windows): summed NLL and tokens scored. Perplexity = exp(Σ nll / Σ count). */
export async function perWindowNll(engine: Engine, ids: readonly number[], contextLength = engine.spec.maxPositions): Promise<{ nll: number[]; count: number[] }> {
  const windows = perplexityWindows(ids, contextLength);
  const nll: number[] = [];
  const count: number[] = [];
  for (let start = 0; start < windows.length; start += 8) {
    const batch = windows.slice(start, start + 8);
    const rows = await engine.forward({ ids: batch, allLogits: true });
    batch.forEach((w, i) => {
      const r = windowNll(rows[i]!.logits!, w);
      nll.push(r.nll);
      count.push(r.count);
    });
  }
  return { nll, count };
}
