/**
 * Circuit use cases: discover a circuit for a task, and verify a circuit by ablation. The CLI's
 * `discover`/`verify` and the editor's Discover Circuit…/Verify Circuit call these functions,
 * so both give the same circuit for the same settings (the e2e suite compares the two files).
 */
import * as path from 'node:path';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import { allComponentIds } from '../models/componentIds';
import { discoverCircuit } from '../circuits/discovery/discover';
import { evaluateCircuit, faithfulnessCurve, type CircuitEvaluation, type FaithfulnessCurve } from '../circuits/discovery/faithfulness';
import { circuitComponentIds, isComponentNode, selectEdges, selectNodes, type CircuitGraph, type SelectionRule } from '../circuits/discovery/graph';
import type { ModelRunner } from '../circuits/runner';
import type { Task } from '../circuits/tasks/tasks';
import type { Ablation, Aggregation, DiscoveryMethod, Granularity } from '../vocabulary';
import { cancellable, stepProgress, type JobContext } from './context';
import { DISCOVER_DEFAULTS } from './defaults';

export { DISCOVER_DEFAULTS };
import { isBuiltInTask, resolveTask } from './inputs';


export interface DiscoverOptions {
  /** `ioi`, `greater-than` or a JSONL task file. */
  readonly task?: string;
  readonly n?: number;
  readonly seed?: number;
  readonly method?: DiscoveryMethod;
  /** Default: `heads`, or `heads+mlps` for edge circuits. */
  readonly granularity?: Granularity;
  readonly aggregation?: Aggregation;
  /** Score and select edges (head/MLP graph) instead of nodes. */
  readonly edges?: boolean;
  /** Keep the k best candidates, or the fewest whose scores cover `budget` of the total. */
  readonly top?: number;
  readonly budget?: number;
  readonly ablation?: Ablation;
  /** Measure faithfulness and the curve (default true). */
  readonly verify?: boolean;
  readonly batchSize?: number;
}

export interface DiscoverResult {
  readonly graph: CircuitGraph;
  readonly task: Task;
  readonly seconds: number;
}

/** The components that "everything ablated" removes: every candidate of the circuit's granularity. */
export function ablationUniverse(spec: Engine['spec'], granularity: Granularity): string[] {
  switch (granularity) {
    case 'heads':
      return allComponentIds(spec, 'none');
    case 'heads+mlps':
      return allComponentIds(spec, 'blocks');
    case 'heads+neurons':
      return allComponentIds(spec, 'neurons');
    case 'neurons':
      return allComponentIds(spec, 'neurons').filter((id) => id.startsWith('m'));
  }
}

export async function discover(engine: Engine, options: DiscoverOptions, ctx: JobContext = {}): Promise<DiscoverResult> {
  const runner = cancellable(engine, ctx);
  const method = options.method ?? DISCOVER_DEFAULTS.method;
  const edges = options.edges ?? false;
  const granularity = options.granularity ?? (edges ? 'heads+mlps' : 'heads');
  const aggregation = options.aggregation ?? DISCOVER_DEFAULTS.aggregation;
  const absolute = aggregation !== 'signed-mean';
  const batchSize = options.batchSize ?? DISCOVER_DEFAULTS.batchSize;
  if (options.top !== undefined && options.budget !== undefined) throw new InputError('give a top-k or a budget, not both');
  const spec = options.task ?? DISCOVER_DEFAULTS.task;
  const seed = options.seed ?? DISCOVER_DEFAULTS.seed;
  const task = resolveTask(engine, spec, { ...(options.n !== undefined || isBuiltInTask(spec) ? { n: options.n ?? DISCOVER_DEFAULTS.n } : {}), seed });
  const started = Date.now();
  let phase = 0;
  let lastDone = 0;
  const { graph: scored } = await discoverCircuit(runner as ModelRunner, task, {
    method,
    granularity,
    aggregation,
    batchSize,
    edges,
    modelName: path.basename(engine.folder),
    // Called for component scores, then again from 0 for edge scores.
    onProgress: (done, total) => {
      if (done < lastDone) phase = 1;
      lastDone = done;
      ctx.progress?.({ message: `Scoring ${phase === 0 ? 'components' : 'edges'} (${done}/${total})…`, fraction: 0.3 * phase + (0.3 * done) / Math.max(1, total) });
    },
  });
  const full: CircuitGraph = {
    ...scored,
    task: { ...scored.task, ...(isBuiltInTask(spec) ? { seed } : { file: path.resolve(spec) }) },
    scores: Object.fromEntries(scored.nodes.filter(isComponentNode).map((n) => [n.id, n.relevance])),
  };
  const candidates = edges ? full.edges.length : full.nodes.filter(isComponentNode).length;
  const rule: SelectionRule =
    options.budget !== undefined
      ? { kind: 'budget', fraction: options.budget }
      : { kind: 'top-k', k: options.top ?? Math.max(1, Math.round(candidates * (edges ? DISCOVER_DEFAULTS.edgeShare : DISCOVER_DEFAULTS.nodeShare))) };
  if (rule.kind === 'top-k' && rule.k > candidates) throw new InputError(`top-k is ${rule.k} but there are only ${candidates} candidate ${edges ? 'edges' : 'components'}`);
  // Edge circuits are verified at node level: every node no kept edge touches is ablated.
  let graph = edges ? selectEdges(full, rule, { absolute }) : selectNodes(full, rule, { absolute });
  const seconds = (Date.now() - started) / 1000;
  if (options.verify ?? true) {
    const v = await verifyOnTask(engine, graph, task, { ablation: options.ablation ?? DISCOVER_DEFAULTS.ablation, batchSize }, ctx, 0.6);
    graph = {
      ...graph,
      metrics: {
        metric: v.evaluation.metric,
        ablation: v.evaluation.ablation,
        full: v.evaluation.full,
        empty: v.evaluation.empty,
        circuit: v.evaluation.circuit,
        faithfulness: v.evaluation.faithfulness,
        completeness: v.evaluation.completeness,
        cpr: v.curve.cpr,
        cmd: v.curve.cmd,
        curve: v.curve.points,
      },
    };
  }
  return { graph: { ...graph, created: new Date().toISOString() }, task, seconds };
}

export interface VerifyOptions {
  /** Default: the circuit's own task (a built-in task is generated again with its seed and size). */
  readonly task?: string;
  readonly n?: number;
  readonly seed?: number;
  readonly ablation?: Ablation;
  /** Components to ablate inside the circuit as well (the panel's toggles). */
  readonly ablate?: readonly string[];
  readonly batchSize?: number;
}

export interface Verification {
  readonly evaluation: CircuitEvaluation;
  readonly curve: FaithfulnessCurve;
  /** With `ablate`: the circuit without those components. */
  readonly ablated?: { readonly nodes: readonly string[]; readonly circuit: number; readonly faithfulness: number };
  readonly circuit: readonly string[];
}

/** The task a circuit was found on, made again (or the one the user names instead). */
export function circuitTask(engine: Engine, graph: CircuitGraph, options: Pick<VerifyOptions, 'task' | 'n' | 'seed'>): Task {
  const spec = options.task ?? graph.task.file ?? graph.task.name;
  if (!isBuiltInTask(spec) && options.task === undefined && graph.task.file === undefined) {
    throw new InputError(`the circuit was found on the task "${graph.task.name}", which is not built in: name its task file`);
  }
  const sameTask = options.task === undefined;
  const n = options.n ?? (sameTask && graph.task.examples > 0 ? graph.task.examples : undefined);
  const seed = options.seed ?? (sameTask ? graph.task.seed : undefined);
  return resolveTask(engine, spec, { ...(n !== undefined ? { n } : {}), ...(seed !== undefined ? { seed } : {}) });
}

export async function verify(engine: Engine, graph: CircuitGraph, options: VerifyOptions = {}, ctx: JobContext = {}): Promise<Verification> {
  if (graph.model.nLayers !== engine.spec.nLayers || graph.model.nHeads !== engine.spec.nHeads) {
    throw new InputError(`the circuit was found on a model with ${graph.model.nLayers} layers × ${graph.model.nHeads} heads; this one has ${engine.spec.nLayers} × ${engine.spec.nHeads}`);
  }
  const task = circuitTask(engine, graph, options);
  return verifyOnTask(engine, graph, task, { ablation: options.ablation ?? (graph.metrics?.ablation as Ablation | undefined) ?? DISCOVER_DEFAULTS.ablation, batchSize: options.batchSize ?? DISCOVER_DEFAULTS.batchSize, ablate: options.ablate ?? [] }, ctx, 0);
}

async function verifyOnTask(
  engine: Engine,
  graph: CircuitGraph,
  task: Task,
  options: { readonly ablation: Ablation; readonly batchSize: number; readonly ablate?: readonly string[] },
  ctx: JobContext,
  from: number,
): Promise<Verification> {
  const runner = cancellable(engine, ctx);
  const circuit = circuitComponentIds(graph);
  const universe = ablationUniverse(engine.spec, graph.granularity);
  const inUniverse = new Set(universe);
  const outside = circuit.filter((id) => !inUniverse.has(id));
  if (outside.length > 0) throw new InputError(`the circuit's components ${outside.slice(0, 5).join(', ')} are not of its granularity ${graph.granularity}`);
  // The curve ranks components the way the circuit was selected (signed or by magnitude).
  const score = (r: number) => (graph.selection.absolute ? Math.abs(r) : r);
  const relevance = graph.scores ?? Object.fromEntries(graph.nodes.filter(isComponentNode).map((n) => [n.id, n.relevance]));
  const ranked = Object.keys(relevance).sort((a, b) => score(relevance[b]!) - score(relevance[a]!));
  const span = 1 - from;
  ctx.progress?.({ message: `Running ${task.examples.length} prompts with the circuit…`, fraction: from });
  const evaluation = await evaluateCircuit(runner, task, circuit, options.ablation, universe, { batchSize: options.batchSize });
  let ablated: Verification['ablated'];
  const drop = new Set(options.ablate ?? []);
  if (drop.size > 0) {
    ctx.progress?.({ message: 'Running with your ablations…', fraction: from + 0.2 * span });
    const kept = circuit.filter((id) => !drop.has(id));
    const effective = await evaluateCircuit(runner, task, kept, options.ablation, universe, { batchSize: options.batchSize });
    ablated = { nodes: [...drop], circuit: effective.circuit, faithfulness: effective.faithfulness };
  }
  ctx.progress?.({ message: 'Measuring the faithfulness curve…', fraction: from + 0.4 * span });
  const curve = await faithfulnessCurve(runner, task, ranked, options.ablation, undefined, {
    batchSize: options.batchSize,
    onProgress: stepProgress(ctx, (d, t) => `Faithfulness curve (${d}/${t})…`, from + 0.4 * span, 1),
  });
  return { evaluation, curve, circuit, ...(ablated ? { ablated } : {}) };
}
