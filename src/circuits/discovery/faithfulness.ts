/**
 * Circuit verification: faithfulness, completeness and the MIB faithfulness curve.
 *
 * Definitions (MIB circuit track, `MIB_circuit_track/evaluation.py`; shared/notes/landscape.md §2.4):
 * - faithfulness f(C) = (m(C) − m(∅)) / (m(M) − m(∅)), where m(M) is the task metric of the full
 *   model, m(∅) with every ranked component ablated, m(C) with everything but the circuit ablated.
 * - completeness (ours, in the same normalisation): how much of the behaviour disappears when
 *   only the circuit is ablated, (m(M) − m(M∖C)) / (m(M) − m(∅)). 1 = nothing outside the circuit
 *   carries the behaviour; 0 = the rest of the model does just as well without the circuit.
 * - curve: f at circuits of the top ⌊fraction · N⌋ ranked components for the fractions
 *   0.1 %, 0.2 %, 0.5 %, 1 %, 2 %, 5 %, 10 %, 20 %, 50 %, 100 % (`int(pct * n)` in MIB).
 * - CPR = area under f over the fraction axis, CMD = area under |1 − f|, both by trapezoids
 *   between consecutive measured fractions (from the first fraction to the last, no point at 0),
 *   as MIB computes them with `log_scale=False`. CPR: higher is better (can exceed 1); CMD: lower.
 *
 * The async drivers ablate *nodes* (heads `a{l}.h{h}`, MLP blocks `m{l}`, neurons `m{l}.n{i}`)
 * through the engine's `interventions`; edge-level ablation (patching one path only) is not
 * something the engine's node interventions can express.
 *
 * Ablation kinds (what an ablated component's activation is replaced with):
 * - `zero`: 0.
 * - `mean`: its mean over every position of every reference prompt (EAP-IG's `mean`), the same
 *   value at every position. Works for prompts of any length.
 * - `mean-positional`: its mean at the same position t over the reference prompts that are longer
 *   than t (EAP-IG's `mean-positional`, generalised to prompts of unequal length). Positions no
 *   reference prompt reaches fall back to the `mean` value.
 * - `resample`: its activation on the example's own corrupted prompt (`corrupted_ids`), position by
 *   position (ACDC / MIB `patching`). Needs a corrupted prompt of equal length on every example.
 * The reference set for the means defaults to the task's own prompts.
 */

import type { Interventions } from '../../engine/api';
import type { ArchSpec } from '../../models/spec';
import { componentId } from '../../models/spec';
import { CircuitInputError } from '../errors';
import type { CircuitCurvePoint } from './graph';
import { nodeForId } from './graph';
import { exampleMetric, mean } from '../metrics';
import type { ModelRunner } from '../runner';
import type { MetricName, Task, TaskExample } from '../tasks/tasks';

/** MIB's ten circuit sizes, as fractions of the ranked components. */
export const MIB_FRACTIONS: readonly number[] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

import { ABLATIONS, type Ablation } from '../../vocabulary';

// ---------------------------------------------------------------------------------------------
// Pure scores

function checkDenominator(full: number, empty: number): number {
  const span = full - empty;
  if (span === 0 || !Number.isFinite(span)) {
    throw new Error(
      `faithfulness is undefined: the full model (${full}) and the fully ablated model (${empty}) score the same, ` +
        'so there is no behaviour to recover; try another ablation or check the component list',
    );
  }
  return span;
}

/** (m(C) − m(∅)) / (m(M) − m(∅)). */
export function normalizedFaithfulness(circuitScore: number, emptyScore: number, fullScore: number): number {
  return (circuitScore - emptyScore) / checkDenominator(fullScore, emptyScore);
}

/** (m(M) − m(M∖C)) / (m(M) − m(∅)), with m(M∖C) the score with only the circuit ablated. */
export function completeness(complementScore: number, emptyScore: number, fullScore: number): number {
  return (fullScore - complementScore) / checkDenominator(fullScore, emptyScore);
}

/** Circuit size for a fraction of `total` ranked components: ⌊fraction · total⌋ exactly as MIB's `int(pct * n)`. */
export function circuitSizeForFraction(fraction: number, total: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`circuit size: the fraction must be in [0, 1], got ${fraction}`);
  return Math.floor(fraction * total);
}

/** CPR (area under f) and CMD (area under |1 − f|) by trapezoids over the fraction axis. */
export function curveAreas(fractions: readonly number[], faithfulness: readonly number[]): { cpr: number; cmd: number } {
  if (fractions.length !== faithfulness.length) {
    throw new Error(`curve areas: ${fractions.length} fractions but ${faithfulness.length} faithfulness values`);
  }
  if (fractions.length < 2) throw new Error('curve areas: need at least two points');
  let cpr = 0;
  let cmd = 0;
  for (let i = 0; i + 1 < fractions.length; i++) {
    const width = fractions[i + 1]! - fractions[i]!;
    if (!(width > 0)) throw new Error(`curve areas: fractions must be strictly increasing (${fractions[i]} then ${fractions[i + 1]})`);
    cpr += (width * (faithfulness[i]! + faithfulness[i + 1]!)) / 2;
    cmd += (width * (Math.abs(1 - faithfulness[i]!) + Math.abs(1 - faithfulness[i + 1]!))) / 2;
  }
  return { cpr, cmd };
}

// ---------------------------------------------------------------------------------------------
// Replacement activations (pure)

export interface ActivationShape {
  readonly nLayers: number;
  /** nHeads · headDim: the width of one position's head-z vector. */
  readonly headWidth: number;
  readonly dMlp: number;
}

export function activationShape(spec: Pick<ArchSpec, 'nLayers' | 'nHeads' | 'headDim' | 'dMlp'>): ActivationShape {
  return { nLayers: spec.nLayers, headWidth: spec.nHeads * spec.headDim, dMlp: spec.dMlp };
}

/** One prompt's hook activations: per layer, head z `[T·H·dh]` and MLP activations `[T·dMlp]`. */
export interface PromptActivations {
  readonly length: number;
  readonly headZ: readonly Float32Array[];
  readonly mlpPost: readonly Float32Array[];
}

/** Per-layer replacement for one prompt, in the engine's `headReplacement[row]` / `neuronReplacement[row]` layout. */
export interface RowReplacement {
  readonly head: Float32Array[];
  readonly neuron: Float32Array[];
}

function checkActivations(rows: readonly PromptActivations[], shape: ActivationShape): void {
  rows.forEach((row, index) => {
    if (row.headZ.length !== shape.nLayers || row.mlpPost.length !== shape.nLayers) {
      throw new Error(`reference prompt ${index}: expected hook activations for ${shape.nLayers} layers, got ${row.headZ.length} (heads) and ${row.mlpPost.length} (MLP)`);
    }
    for (let layer = 0; layer < shape.nLayers; layer++) {
      if (row.headZ[layer]!.length !== row.length * shape.headWidth) {
        throw new Error(`reference prompt ${index} layer ${layer}: head z has ${row.headZ[layer]!.length} values, expected T·H·dh = ${row.length}·${shape.headWidth}`);
      }
      if (row.mlpPost[layer]!.length !== row.length * shape.dMlp) {
        throw new Error(`reference prompt ${index} layer ${layer}: MLP activations have ${row.mlpPost[layer]!.length} values, expected T·dMlp = ${row.length}·${shape.dMlp}`);
      }
    }
  });
}

/** Running sums for means over tokens and per position; `add` one prompt at a time. */
export class ActivationMeans {
  private readonly overallHead: Float64Array[];
  private readonly overallMlp: Float64Array[];
  private overallCount = 0;
  private positionalHead: Float64Array[];
  private positionalMlp: Float64Array[];
  private positionCounts: number[] = [];

  constructor(private readonly shape: ActivationShape) {
    this.overallHead = Array.from({ length: shape.nLayers }, () => new Float64Array(shape.headWidth));
    this.overallMlp = Array.from({ length: shape.nLayers }, () => new Float64Array(shape.dMlp));
    this.positionalHead = Array.from({ length: shape.nLayers }, () => new Float64Array(0));
    this.positionalMlp = Array.from({ length: shape.nLayers }, () => new Float64Array(0));
  }

  add(row: PromptActivations): void {
    checkActivations([row], this.shape);
    const { headWidth, dMlp, nLayers } = this.shape;
    if (row.length > this.positionCounts.length) this.grow(row.length);
    for (let layer = 0; layer < nLayers; layer++) {
      accumulate(row.headZ[layer]!, row.length, headWidth, this.overallHead[layer]!, this.positionalHead[layer]!);
      accumulate(row.mlpPost[layer]!, row.length, dMlp, this.overallMlp[layer]!, this.positionalMlp[layer]!);
    }
    this.overallCount += row.length;
    for (let t = 0; t < row.length; t++) this.positionCounts[t]!++;
  }

  /** Prompts of `length` tokens get the token mean at every position (the `mean` ablation). */
  overall(length: number): RowReplacement {
    if (this.overallCount === 0) throw new Error('mean ablation: the reference set is empty');
    const { headWidth, dMlp } = this.shape;
    const tile = (sum: Float64Array, width: number) => {
      const out = new Float32Array(length * width);
      for (let t = 0; t < length; t++) for (let j = 0; j < width; j++) out[t * width + j] = sum[j]! / this.overallCount;
      return out;
    };
    return { head: this.overallHead.map((sum) => tile(sum, headWidth)), neuron: this.overallMlp.map((sum) => tile(sum, dMlp)) };
  }

  /** Per-position means (the `mean-positional` ablation); positions no reference reached use `overall`. */
  positional(length: number): RowReplacement {
    const fallback = this.overall(length);
    const { headWidth, dMlp } = this.shape;
    const fill = (sums: Float64Array, width: number, out: Float32Array) => {
      for (let t = 0; t < Math.min(length, this.positionCounts.length); t++) {
        const count = this.positionCounts[t]!;
        for (let j = 0; j < width; j++) out[t * width + j] = sums[t * width + j]! / count;
      }
      return out;
    };
    return {
      head: fallback.head.map((out, layer) => fill(this.positionalHead[layer]!, headWidth, out)),
      neuron: fallback.neuron.map((out, layer) => fill(this.positionalMlp[layer]!, dMlp, out)),
    };
  }

  private grow(length: number): void {
    const { headWidth, dMlp } = this.shape;
    const resize = (old: Float64Array, width: number) => {
      const bigger = new Float64Array(length * width);
      bigger.set(old);
      return bigger;
    };
    this.positionalHead = this.positionalHead.map((old) => resize(old, headWidth));
    this.positionalMlp = this.positionalMlp.map((old) => resize(old, dMlp));
    while (this.positionCounts.length < length) this.positionCounts.push(0);
  }
}

function accumulate(values: Float32Array, length: number, width: number, overall: Float64Array, positional: Float64Array): void {
  for (let t = 0; t < length; t++) {
    for (let j = 0; j < width; j++) {
      const value = values[t * width + j]!;
      overall[j] = overall[j]! + value;
      positional[t * width + j] = positional[t * width + j]! + value;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Driving the engine

export interface FaithfulnessOptions {
  /** Rows per forward call (default 16). */
  readonly batchSize?: number;
  /** Prompts the mean ablations average over; default: the task's own prompts. */
  readonly reference?: readonly (readonly number[])[];
  /** Called after each evaluated circuit size with (done, total). */
  readonly onProgress?: (done: number, total: number) => void;
}

type RunnerLike = Pick<ModelRunner, 'spec' | 'forward'>;

/** Replacement activations for a batch of examples, prepared once per ablation kind. */
interface AblationSource {
  replacements(examples: readonly TaskExample[], batchStart: number): Promise<Pick<Interventions, 'headReplacement' | 'neuronReplacement'>>;
}

async function prepareAblation(runner: RunnerLike, task: Task, ablation: Ablation, options: FaithfulnessOptions): Promise<AblationSource> {
  const shape = activationShape(runner.spec);
  const batchSize = options.batchSize ?? 16;
  switch (ablation) {
    case 'zero':
      return { replacements: async () => ({}) };
    case 'mean':
    case 'mean-positional': {
      const means = new ActivationMeans(shape);
      const reference = options.reference ?? task.examples.map((example) => example.ids);
      if (reference.length === 0) throw new Error('mean ablation: the reference set is empty');
      for (let start = 0; start < reference.length; start += batchSize) {
        const batch = reference.slice(start, start + batchSize);
        const rows = await runner.forward({ ids: batch, hooks: true });
        batch.forEach((ids, index) => means.add(hookActivations(rows[index], ids.length, `reference prompt ${start + index}`)));
      }
      const cache = new Map<number, RowReplacement>(); // by prompt length: the means do not depend on anything else
      const forLength = (length: number) => {
        let replacement = cache.get(length);
        if (replacement === undefined) {
          replacement = ablation === 'mean' ? means.overall(length) : means.positional(length);
          cache.set(length, replacement);
        }
        return replacement;
      };
      return {
        replacements: async (examples) => {
          const rows = examples.map((example) => forLength(example.ids.length));
          return { headReplacement: rows.map((row) => row.head), neuronReplacement: rows.map((row) => row.neuron) };
        },
      };
    }
    case 'resample': {
      for (const example of task.examples) {
        if (example.corruptedIds === undefined) {
          throw new CircuitInputError(example.origin, 'resample ablation needs a corrupted prompt (corrupted_ids or corrupted_prompt) on every example');
        }
      }
      // Corrupted activations are the same for every circuit size, so they are computed once per
      // batch and kept.
      const cache = new Map<number, RowReplacement[]>();
      return {
        replacements: async (examples, batchStart) => {
          let rows = cache.get(batchStart);
          if (rows === undefined) {
            const ids = examples.map((example) => example.corruptedIds!);
            const forward = await runner.forward({ ids, hooks: true });
            rows = ids.map((row, index) => {
              const activations = hookActivations(forward[index], row.length, examples[index]!.origin);
              return { head: [...activations.headZ], neuron: [...activations.mlpPost] };
            });
            cache.set(batchStart, rows);
          }
          return { headReplacement: rows.map((row) => row.head), neuronReplacement: rows.map((row) => row.neuron) };
        },
      };
    }
    default:
      throw new Error(`unknown ablation "${String(ablation)}" (known: ${ABLATIONS.join(', ')})`);
  }

  function hookActivations(row: { headZ?: Float32Array[]; mlpPost?: Float32Array[] } | undefined, length: number, what: string): PromptActivations {
    if (row?.headZ === undefined || row.mlpPost === undefined) {
      throw new Error(`${what}: the runner returned no hook activations (hooks: true was requested)`);
    }
    const activations = { length, headZ: row.headZ, mlpPost: row.mlpPost };
    checkActivations([activations], shape);
    return activations;
  }
}

/** Last-position logits of every example with `ablate` ablated (none: the full model). */
async function runTask(runner: RunnerLike, task: Task, ablate: readonly string[], source: AblationSource, batchSize: number): Promise<Float32Array[]> {
  const logits: Float32Array[] = [];
  for (let start = 0; start < task.examples.length; start += batchSize) {
    const examples = task.examples.slice(start, start + batchSize);
    const interventions: Interventions | undefined =
      ablate.length === 0 ? undefined : { ablate, ...(await source.replacements(examples, start)) };
    const rows = await runner.forward({
      ids: examples.map((example) => example.ids),
      ...(interventions !== undefined && { interventions }),
    });
    if (rows.length !== examples.length) throw new Error(`the runner returned ${rows.length} rows for a batch of ${examples.length}`);
    for (const row of rows) logits.push(row.logitsLast);
  }
  return logits;
}

/** Per-example metric values from last-position logits. */
export function scoreExamples(task: Task, logits: readonly Float32Array[], fullLogits?: readonly Float32Array[]): number[] {
  return task.examples.map((example, index) => exampleMetric(task.metric, example, logits[index]!, fullLogits?.[index]));
}

function checkComponents(runner: RunnerLike, ids: readonly string[], what: string): void {
  const model = { name: '', nLayers: runner.spec.nLayers, nHeads: runner.spec.nHeads, dModel: runner.spec.dModel, dMlp: runner.spec.dMlp };
  const seen = new Set<string>();
  for (const id of ids) {
    const node = nodeForId(id, model); // throws with the reason for malformed or out-of-range ids
    if (node.kind === 'input' || node.kind === 'logits') throw new Error(`${what}: "${id}" cannot be ablated (only heads, MLPs and neurons can)`);
    if (seen.has(id)) throw new Error(`${what}: "${id}" is listed twice`);
    seen.add(id);
  }
}

export interface FaithfulnessCurve {
  readonly metric: MetricName;
  readonly ablation: Ablation;
  /** Number of ranked components (the 100 % circuit). */
  readonly components: number;
  readonly full: number;
  readonly empty: number;
  readonly points: CircuitCurvePoint[];
  readonly cpr: number;
  readonly cmd: number;
}

/**
 * The faithfulness curve of a ranking: for each fraction, keep the top ⌊fraction·N⌋ components
 * of `rankedComponents` (most important first) and ablate the other ranked ones. Components not in
 * the ranking are never ablated.
 */
export async function faithfulnessCurve(
  runner: RunnerLike,
  task: Task,
  rankedComponents: readonly string[],
  ablation: Ablation,
  fractions: readonly number[] = MIB_FRACTIONS,
  options: FaithfulnessOptions = {},
): Promise<FaithfulnessCurve> {
  if (rankedComponents.length === 0) throw new Error('faithfulness curve: the component ranking is empty');
  checkComponents(runner, rankedComponents, 'faithfulness curve');
  fractions.forEach((fraction, i) => {
    if (!(fraction > 0 && fraction <= 1)) throw new Error(`faithfulness curve: fraction ${fraction} is not in (0, 1]`);
    if (i > 0 && !(fraction > fractions[i - 1]!)) throw new Error('faithfulness curve: fractions must be strictly increasing');
  });
  const batchSize = options.batchSize ?? 16;
  const source = await prepareAblation(runner, task, ablation, options);
  const total = fractions.length + 2;
  let done = 0;
  const progress = () => options.onProgress?.(++done, total);

  const fullLogits = await runTask(runner, task, [], source, batchSize);
  const full = mean(scoreExamples(task, fullLogits, fullLogits));
  progress();
  const empty = mean(scoreExamples(task, await runTask(runner, task, rankedComponents, source, batchSize), fullLogits));
  progress();
  checkDenominator(full, empty);

  const points: CircuitCurvePoint[] = [];
  for (const fraction of fractions) {
    const size = circuitSizeForFraction(fraction, rankedComponents.length);
    // The two ends are runs already made: everything kept is the full model, nothing kept is ∅.
    const score =
      size === rankedComponents.length
        ? full
        : size === 0
          ? empty
          : mean(scoreExamples(task, await runTask(runner, task, rankedComponents.slice(size), source, batchSize), fullLogits));
    points.push({ fraction, size, score, faithfulness: normalizedFaithfulness(score, empty, full) });
    progress();
  }
  const { cpr, cmd } =
    points.length >= 2 ? curveAreas(fractions, points.map((p) => p.faithfulness)) : { cpr: Number.NaN, cmd: Number.NaN };
  return { metric: task.metric, ablation, components: rankedComponents.length, full, empty, points, cpr, cmd };
}

export interface CircuitEvaluation {
  readonly metric: MetricName;
  readonly ablation: Ablation;
  readonly full: number;
  readonly empty: number;
  /** Score with everything in `universe` outside the circuit ablated. */
  readonly circuit: number;
  /** Score with only the circuit ablated. */
  readonly complement: number;
  readonly faithfulness: number;
  readonly completeness: number;
}

/**
 * Faithfulness and completeness of one circuit. `universe` is the set of components that can be
 * ablated (default: all heads, plus MLP blocks unless the circuit lists neurons, then all neurons);
 * the circuit must be a subset of it.
 */
export async function evaluateCircuit(
  runner: RunnerLike,
  task: Task,
  circuit: readonly string[],
  ablation: Ablation,
  universe: readonly string[] = defaultUniverse(runner.spec, circuit),
  options: FaithfulnessOptions = {},
): Promise<CircuitEvaluation> {
  checkComponents(runner, universe, 'circuit universe');
  checkComponents(runner, circuit, 'circuit');
  const universeSet = new Set(universe);
  const outside = circuit.filter((id) => !universeSet.has(id));
  if (outside.length > 0) throw new Error(`circuit: ${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} not in the ablation universe`);
  const inCircuit = new Set(circuit);
  const batchSize = options.batchSize ?? 16;
  const source = await prepareAblation(runner, task, ablation, options);
  const fullLogits = await runTask(runner, task, [], source, batchSize);
  const score = async (ablate: readonly string[]) =>
    ablate.length === 0 ? mean(scoreExamples(task, fullLogits, fullLogits)) : mean(scoreExamples(task, await runTask(runner, task, ablate, source, batchSize), fullLogits));
  const full = await score([]);
  const empty = await score(universe);
  const circuitScore = await score(universe.filter((id) => !inCircuit.has(id)));
  const complement = await score(circuit);
  return {
    metric: task.metric,
    ablation,
    full,
    empty,
    circuit: circuitScore,
    complement,
    faithfulness: normalizedFaithfulness(circuitScore, empty, full),
    completeness: completeness(complement, empty, full),
  };
}

/** All heads, plus all MLP blocks (or all neurons when the circuit is given in neurons). */
export function defaultUniverse(spec: Pick<ArchSpec, 'nLayers' | 'nHeads' | 'dMlp'>, circuit: readonly string[] = []): string[] {
  const neuronLevel = circuit.some((id) => /^m\d+\.n\d+$/.test(id));
  const ids: string[] = [];
  for (let layer = 0; layer < spec.nLayers; layer++) {
    for (let head = 0; head < spec.nHeads; head++) ids.push(componentId.head(layer, head));
    if (neuronLevel) for (let neuron = 0; neuron < spec.dMlp; neuron++) ids.push(componentId.neuron(layer, neuron));
    else ids.push(componentId.mlp(layer));
  }
  return ids;
}

/**
 * Per-prompt metric values for several ablation sets (one forward pass over the task per set),
 * under one ablation kind. The per-prompt values are what a bootstrap over prompts resamples
 * (src/circuits/stats.ts): faithfulness is a ratio of means, so it is recomputed from the
 * resampled prompts' values, not averaged per prompt. `[]` is the full model.
 */
export async function perPromptScores(
  runner: RunnerLike,
  task: Task,
  ablationSets: readonly (readonly string[])[],
  ablation: Ablation,
  options: FaithfulnessOptions = {},
): Promise<number[][]> {
  for (const set of ablationSets) if (set.length > 0) checkComponents(runner, set, 'ablation set');
  const batchSize = options.batchSize ?? 16;
  const source = await prepareAblation(runner, task, ablation, options);
  const fullLogits = await runTask(runner, task, [], source, batchSize);
  const out: number[][] = [];
  for (const set of ablationSets) {
    out.push(scoreExamples(task, set.length === 0 ? fullLogits : await runTask(runner, task, set, source, batchSize), fullLogits));
  }
  return out;
}

/** (mean circuit − mean empty) / (mean full − mean empty) over the prompts in `indices`. */
export function faithfulnessOf(circuit: readonly number[], empty: readonly number[], full: readonly number[], indices: readonly number[]): number {
  let c = 0;
  let e = 0;
  let f = 0;
  for (const i of indices) {
    c += circuit[i]!;
    e += empty[i]!;
    f += full[i]!;
  }
  return (c - e) / (f - e);
}
