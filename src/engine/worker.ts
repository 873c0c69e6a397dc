/**
 * The engine worker (`worker_threads` entry, bundled to dist/worker.js). It owns one `Engine`,
 * answers the requests declared in `src/protocol.ts` and reports progress. ONNX Runtime's
 * `session.run` blocks the thread it runs on, which is why all model work happens here and not
 * in the extension host.
 *
 * Jobs run one at a time in arrival order. `cancel` aborts the job's signal; work that checks it
 * between steps stops early, and the host terminates the worker when a job does not stop within
 * a second (e.g. inside one long native call).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { Target } from './api';
import { correct as correctModel, undesiredOutputs } from '../circuits/correct';
import { checkExportDestination, exportModel as writeModelFolder } from '../circuits/modelExport';
import { calibrationWindows, nextTokenOutputs, prune as pruneWeights, weightScores, type ExplainedOutput } from '../circuits/prune';
import { evaluate, ioiMetrics, loadTask, probabilityMetric, readTextIds, sparsityCurves, textPerplexity } from '../circuits/pruneEval';
import type { TaskExample } from '../circuits/tasks';
import { InputError } from '../models/errors';
import { discoverCircuit } from '../circuits/discover';
import { defaultUniverse, evaluateCircuit, faithfulnessCurve } from '../circuits/faithfulness';
import { builtInTask } from '../circuits/generators';
import { type CircuitGraph, selectNodes } from '../circuits/graph';
import type { Task } from '../circuits/tasks';
import { Engine } from './engine';
import {
  Engine as Req,
  type EngineParams,
  type EngineRequestType,
  type ErrorCode,
  type Circuit,
  type CircuitMetrics,
  type GraphNode,
  type LoadedModel,
  type NextToken,
  type Progress,
  type PromptAttribution,
  type WireError,
  type WorkerToHost,
  validateWorkerRequest,
} from '../protocol';

/** An error with a protocol error code, for failures the user should see as such. */
class JobError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'JobError';
  }
}

interface JobContext {
  readonly signal: AbortSignal;
  progress(p: Progress): void;
  log(message: string): void;
}

type Handler<K extends keyof typeof Req> = (params: EngineParams<K>, ctx: JobContext) => Promise<unknown>;

const port = parentPort;
const options = (workerData ?? {}) as { testHooks?: boolean };

let engine: Engine | null = null;
let loaded: LoadedModel | null = null;

/** The last pruned or corrected weights of the loaded model (what Export Model writes). */
interface ModelEdit {
  readonly kind: 'prune' | 'correct';
  readonly folder: string;
  readonly weights: Map<string, Float32Array>;
  /** Written to pruning.json. */
  readonly description: Record<string, unknown>;
}
let edit: ModelEdit | null = null;

function post(message: WorkerToHost): void {
  port?.postMessage(message);
}

function requireEngine(): Engine {
  if (!engine) throw new JobError('no-model', 'No model is loaded. Load a model folder or use the embedded demo model first.');
  return engine;
}

function checkCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new JobError('cancelled', 'Cancelled');
}

const handlers: { [K in keyof typeof Req]: Handler<K> } = {
  async load(params, ctx) {
    if (engine) {
      const old = engine;
      engine = null;
      loaded = null;
      edit = null;
      await old.dispose();
    }
    ctx.progress({ message: 'Loading model…' });
    const next = await Engine.load(params.folder, {
      ...(params.executionProvider !== undefined ? { executionProvider: params.executionProvider } : {}),
      ...(params.threads !== undefined && params.threads > 0 ? { threads: params.threads } : {}),
      ...(params.memoryShare !== undefined ? { memory: { share: params.memoryShare } } : {}),
      log: (m) => ctx.log(m),
    });
    if (ctx.signal.aborted) {
      await next.dispose();
      throw new JobError('cancelled', 'Cancelled');
    }
    engine = next;
    loaded = { info: next.info(), hasTokenizer: next.tokenizer !== null, circuits: true };
    return loaded;
  },
  async info() {
    return loaded;
  },
  async tokenize(params) {
    const tokenizer = requireTokenizer();
    const { ids, offsets } = tokenizer.encode(params.text);
    return { ids, offsets, tokens: ids.map((id) => tokenizer.tokenString(id)) };
  },
  async forward(params) {
    return requireEngine().forward(params);
  },
  async attribute(params) {
    return requireEngine().attribute(params);
  },
  attributePrompt,
  discover,
  verify,
  prune,
  correct,
  exportModel,
  async sleep(params, ctx) {
    if (!options.testHooks) throw new JobError('unavailable', 'engine/sleep is a test hook and is disabled');
    const end = Date.now() + params.ms;
    while (Date.now() < end) {
      if (params.cooperative) {
        checkCancelled(ctx.signal);
        ctx.progress({ fraction: 1 - (end - Date.now()) / Math.max(1, params.ms) });
        await new Promise((r) => setTimeout(r, 10));
      } else {
        // Stands in for one long native call that cannot be interrupted.
        const until = Math.min(end, Date.now() + 100);
        while (Date.now() < until) {
          /* busy */
        }
      }
    }
  },
  async dispose() {
    if (engine) await engine.dispose();
    engine = null;
    loaded = null;
    edit = null;
  },
};

function requireTokenizer() {
  const tokenizer = requireEngine().tokenizer;
  if (!tokenizer) throw new JobError('input', 'This model has no tokenizer, so text prompts cannot be attributed.');
  return tokenizer;
}

/** Resolves a target word to exactly one token id, trying it as written and with a leading space. */
function singleToken(text: string, what: string): number {
  const tokenizer = requireTokenizer();
  const candidates = text.startsWith(' ') ? [text] : [text, ` ${text}`];
  for (const candidate of candidates) {
    const { ids } = tokenizer.encode(candidate);
    if (ids.length === 1) return ids[0]!;
  }
  throw new JobError('input', `The ${what} ${JSON.stringify(text)} is not a single token of this model's vocabulary.`);
}

function topTokens(logits: Float32Array, k: number, tokenString: (id: number) => string): NextToken[] {
  if (k <= 0 || logits.length === 0) return [];
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const order: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (order.length < k || logits[i]! > logits[order[order.length - 1]!]!) {
      order.push(i);
      order.sort((a, b) => logits[b]! - logits[a]!);
      if (order.length > k) order.pop();
    }
  }
  return order.map((id) => ({ id, text: tokenString(id), logit: logits[id]!, prob: Math.exp(logits[id]! - max) / sum }));
}

async function attributePrompt(params: EngineParams<'attributePrompt'>, ctx: JobContext): Promise<PromptAttribution> {
  const eng = requireEngine();
  const tokenizer = requireTokenizer();
  const { ids, offsets } = tokenizer.encode(params.text);
  if (ids.length === 0) throw new JobError('input', 'The prompt has no tokens.');
  const maxPositions = eng.info().maxPositions;
  if (maxPositions > 0 && ids.length > maxPositions) {
    throw new JobError('input', `The prompt has ${ids.length} tokens; this model takes at most ${maxPositions}.`);
  }
  const position = ids.length - 1;
  let target: Target;
  if (params.target === 'top1') {
    ctx.progress({ message: 'Predicting the next token…' });
    const [row] = await eng.forward({ ids: [ids] });
    const logits = row!.logitsLast;
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    target = { kind: 'logit', position, token: best };
  } else if (params.target === 'token') {
    if (!params.token) throw new JobError('input', 'No target token given.');
    target = { kind: 'logit', position, token: singleToken(params.token, 'target token') };
  } else {
    if (!params.token || !params.foil) throw new JobError('input', 'A logit difference needs a target token and a foil token.');
    target = { kind: 'logit_diff', position, token: singleToken(params.token, 'target token'), foil: singleToken(params.foil, 'foil token') };
  }
  checkCancelled(ctx.signal);
  ctx.progress({ message: 'Propagating relevance…' });
  const [attr] = await eng.attribute({ ids: [ids], targets: [target], mode: params.mode, neurons: false });
  const a = attr!;
  const tokenString = (id: number) => tokenizer.tokenString(id);
  const tokenSum = a.tokenRelevance.reduce((x, y) => x + y, 0);
  const positionSum = a.positionRelevance ? a.positionRelevance.reduce((x, y) => x + y, 0) : 0;
  return {
    mode: params.mode,
    tokens: ids.map((id, i) => ({ id, text: tokenString(id), start: offsets[i]![0], end: offsets[i]![1], relevance: a.tokenRelevance[i]! })),
    positionRelevance: a.positionRelevance ? Array.from(a.positionRelevance) : null,
    target: {
      kind: target.kind,
      token: target.token,
      text: tokenString(target.token),
      ...(target.foil !== undefined ? { foil: target.foil, foilText: tokenString(target.foil) } : {}),
      value: a.targetValue,
    },
    topNext: topTokens(a.logitsLast, params.topNext ?? 5, tokenString),
    headRelevance: a.headRelevance.map((row) => [...row]),
    sums: { token: tokenSum, position: positionSum, bias: a.biasRelevance.linear + a.biasRelevance.layernorm },
  };
}

// ───────────── circuits ─────────────

/** The engine as the circuits module's runner, failing fast between engine calls once cancelled. */
const taskCache = new Map<string, Task>();

/** The built-in task prompts (deterministic: seed 0), as the CLI's `--task ioi|greater-than` makes them. */
function taskFor(eng: Engine, name: 'ioi' | 'greater-than', count: number): Task {
  const key = `${eng.folder}|${name}|${count}`;
  const cached = taskCache.get(key);
  if (cached) return cached;
  const task = builtInTask(name, requireTokenizer(), count, 0);
  taskCache.set(key, task);
  return task;
}


function toCircuit(graph: CircuitGraph, full: CircuitGraph, eng: Engine, params: EngineParams<'discover'>): Circuit {
  const nodes: GraphNode[] = [];
  for (const n of graph.nodes) {
    if (n.kind === 'neuron') continue;
    nodes.push({ id: n.id, kind: n.kind, layer: n.kind === 'input' ? -1 : n.kind === 'logits' ? eng.spec.nLayers : n.layer, ...(n.head !== undefined ? { head: n.head } : {}), relevance: n.relevance });
  }
  const ids = new Set(nodes.map((n) => n.id));
  const edges = graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map((e) => ({ source: e.source, target: e.target, weight: e.relevance }));
  const headRelevance = Array.from({ length: eng.spec.nLayers }, () => new Array<number>(eng.spec.nHeads).fill(0));
  const attn = new Array<number>(eng.spec.nLayers).fill(0);
  const mlp = new Array<number>(eng.spec.nLayers).fill(0);
  for (const n of full.nodes) {
    if (n.kind === 'head' && n.head !== undefined) {
      headRelevance[n.layer]![n.head] = n.relevance;
      attn[n.layer]! += n.relevance;
    } else if (n.kind === 'mlp') mlp[n.layer]! += n.relevance;
  }
  const m = graph.metrics;
  const modelName = eng.folder.split(/[\\/]/).pop() ?? eng.folder;
  return {
    id: `${params.task}-${params.mode}-${modelName}-${Date.now().toString(36)}`,
    title: `${params.task === 'ioi' ? 'IOI' : 'Greater-than'} circuit (${params.mode}, ${graph.task.examples} prompts)`,
    task: params.task,
    model: eng.folder,
    mode: params.mode,
    layers: eng.spec.nLayers,
    heads: eng.spec.nHeads,
    dModel: eng.spec.dModel,
    dMlp: eng.spec.dMlp,
    examples: graph.task.examples,
    nodes,
    edges,
    ...(m && m.full !== undefined && m.circuit !== undefined && m.faithfulness !== undefined
      ? { metrics: { metric: m.metric ?? graph.task.metric, full: m.full, circuit: m.circuit, faithfulness: m.faithfulness } }
      : {}),
    headRelevance,
    layerRelevance: { attn, mlp },
    ...(m?.curve ? { faithfulnessCurve: m.curve.map((p) => ({ x: p.size, y: p.faithfulness })) } : {}),
  };
}

async function discover(params: EngineParams<'discover'>, ctx: JobContext): Promise<Circuit> {
  const eng = requireEngine();
  const runner = cancellable(eng, ctx.signal);
  const task = taskFor(eng, params.task, params.prompts ?? 32);
  ctx.progress({ message: `Scoring components on ${task.examples.length} prompts…`, fraction: 0 });
  let phase = 0;
  let lastDone = 0;
  const { graph: full } = await discoverCircuit(runner, task, {
    method: params.mode,
    granularity: 'heads+mlps',
    aggregation: 'mean-abs',
    batchSize: 16,
    edges: true,
    modelName: eng.folder.split(/[\\/]/).pop() ?? eng.folder,
    // Called for component scores, then again from 0 for edge scores.
    onProgress: (done, total) => {
      if (done < lastDone) phase = 1;
      lastDone = done;
      ctx.progress({ message: `Scoring ${phase === 0 ? 'components' : 'edges'} (${done}/${total})…`, fraction: 0.3 * phase + (0.3 * done) / Math.max(1, total) });
    },
  });
  const components = full.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp');
  const k = Math.max(1, Math.min(params.maxNodes ?? 40, Math.round(components.length * 0.25)));
  let graph = selectNodes(full, { kind: 'top-k', k });
  const ranked = [...components].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance)).map((n) => n.id);
  const circuit = graph.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').map((n) => n.id);
  ctx.progress({ message: 'Verifying the circuit…', fraction: 0.6 });
  const evaluation = await evaluateCircuit(runner, task, circuit, 'mean', defaultUniverse(eng.spec), { batchSize: 16 });
  ctx.progress({ message: 'Measuring the faithfulness curve…', fraction: 0.75 });
  const curve = await faithfulnessCurve(runner, task, ranked, 'mean', undefined, {
    batchSize: 16,
    onProgress: (done, total) => ctx.progress({ fraction: 0.75 + (0.25 * done) / Math.max(1, total) }),
  });
  graph = {
    ...graph,
    metrics: { metric: evaluation.metric, ablation: 'mean', full: evaluation.full, empty: evaluation.empty, circuit: evaluation.circuit, faithfulness: evaluation.faithfulness, completeness: evaluation.completeness, cpr: curve.cpr, cmd: curve.cmd, curve: curve.points },
  };
  return toCircuit(graph, full, eng, params);
}

/**
 * Faithfulness of a circuit, and of the circuit minus the components the user ablated:
 * `circuit` keeps the whole circuit, `ablated` keeps it without `ablate`, and `faithfulness`
 * is that of the effective (ablated) circuit.
 */
async function verify(params: EngineParams<'verify'>, ctx: JobContext): Promise<CircuitMetrics> {
  const eng = requireEngine();
  const runner = cancellable(eng, ctx.signal);
  const task = taskFor(eng, params.task, params.prompts ?? 32);
  const universe = defaultUniverse(eng.spec);
  const inUniverse = new Set(universe);
  const nodes = params.nodes.filter((id) => inUniverse.has(id));
  const drop = new Set(params.ablate);
  ctx.progress({ message: `Running ${task.examples.length} prompts with the circuit…`, fraction: 0.1 });
  const whole = await evaluateCircuit(runner, task, nodes, 'mean', universe, { batchSize: 16 });
  let effective = whole;
  if (params.ablate.length > 0) {
    ctx.progress({ message: 'Running with your ablations…', fraction: 0.55 });
    effective = await evaluateCircuit(runner, task, nodes.filter((id) => !drop.has(id)), 'mean', universe, { batchSize: 16 });
  }
  return {
    metric: whole.metric,
    full: whole.full,
    circuit: whole.circuit,
    ablated: effective.circuit,
    faithfulness: effective.faithfulness,
    ablatedNodes: [...params.ablate],
  };
}

// ───────────── pruning, correction, model export ─────────────

/**
 * The engine with a cancellation check before every call (and on the engines `withWeights`
 * returns), so the long loops of src/circuits/ stop between engine calls once cancelled.
 */
function cancellable(eng: Engine, signal: AbortSignal): Engine {
  return new Proxy(eng, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop !== 'dispose') checkCancelled(signal);
        const out = (value as (...a: unknown[]) => unknown).apply(target, args);
        return out instanceof Engine ? cancellable(out, signal) : out;
      };
    },
  });
}

/** Tokens of the evaluation part of a pruning text (the README's perplexity: 64 windows of 128). */
const EVAL_TOKENS = 64 * 128;
const CURVE_SPARSITIES = [0.1, 0.3, 0.5, 0.7, 0.8];

function modelFile(eng: Engine, name: string, what: string): string {
  const file = path.join(eng.folder, name);
  if (!fs.existsSync(file)) throw new JobError('input', `No ${what} was given and the model folder has no ${name}; choose a file.`);
  return file;
}

async function prune(params: EngineParams<'prune'>, ctx: JobContext) {
  const eng = requireEngine();
  const run = cancellable(eng, ctx.signal);
  const { method, sparsity } = params;
  const scope = params.scope ?? 'rowwise';
  const windows = params.windows ?? 32;
  const windowLength = params.windowLength ?? 64;
  const text = params.text ?? modelFile(eng, 'heldout.txt', 'text file');
  ctx.progress({ message: `Tokenizing ${path.basename(text)}…`, fraction: 0 });
  const ids = readTextIds(eng, text);
  // Perplexity on the first part, calibration windows from the rest: they never overlap.
  const needsCalib = method !== 'magnitude' && method !== 'random';
  const calibTokens = needsCalib ? windows * windowLength : 0;
  const evalCount = Math.min(EVAL_TOKENS, ids.length - calibTokens);
  if (evalCount < 2) {
    throw new JobError(
      'input',
      `${path.basename(text)} has ${ids.length} tokens: too few for ${windows} calibration windows of ${windowLength} tokens plus text to measure perplexity on. Choose a longer text or fewer windows.`,
    );
  }
  const evalIds = ids.slice(0, evalCount);
  const calibIds = needsCalib ? ids.slice(evalCount) : null;
  ctx.progress({ message: 'Measuring the dense perplexity…', fraction: 0.02 });
  const dense = (await textPerplexity(run, evalIds)).perplexity;
  ctx.progress({ message: `Scoring weights (${method})…`, fraction: 0.05 });
  const scores = await weightScores(run, calibIds, {
    method,
    windows,
    windowLength,
    progress: (done, total) => ctx.progress({ message: `Scoring weights: ${done}/${total} explained outputs…`, fraction: 0.05 + (0.6 * done) / Math.max(1, total) }),
  });
  const result = await pruneWeights(run, { method, scope, sparsity, scores });
  const sparsities = [...new Set([...(params.curve ?? CURVE_SPARSITIES), sparsity])].filter((x) => x > 0).sort((a, b) => a - b);
  ctx.progress({ message: 'Measuring perplexity against sparsity…', fraction: 0.65 });
  const curves = await sparsityCurves(run, {
    methods: [{ method, scope }],
    sparsities,
    calibIds: calibIds ?? [],
    evalIds,
    scores,
    densePerplexity: dense,
    onPoint: (done, total) => ctx.progress({ message: `Perplexity at ${done}/${total} sparsities…`, fraction: 0.65 + (0.35 * done) / Math.max(1, total) }),
  });
  const points = curves.rows[0]!.points;
  const after = points.find((p) => p.sparsity === sparsity)?.perplexity ?? dense;
  const { perTensor, ...report } = result.report;
  const summary = {
    method,
    scope,
    sparsity,
    achievedSparsity: report.achievedSparsity,
    prunedWeights: report.prunedWeights,
    totalWeights: report.totalWeights,
    perplexityBefore: dense,
    perplexityAfter: after,
    text,
    evalTokens: evalIds.length,
    calibration: report.calibration ? { ...report.calibration } : null,
  };
  edit = {
    kind: 'prune',
    folder: eng.folder,
    weights: result.weights,
    description: { purpose: 'compression', ...report, per_tensor: perTensor, evaluation: { text, tokens: evalIds.length, perplexity_dense: dense, perplexity: after } },
  };
  ctx.log(`pruned ${report.prunedWeights} of ${report.totalWeights} weights (${method}/${scope}); perplexity ${dense.toFixed(4)} → ${after.toFixed(4)}`);
  return { ...summary, curve: [{ x: 0, y: dense }, ...points.map((p) => ({ x: p.sparsity, y: p.perplexity ?? Number.NaN }))] };
}

async function correct(params: EngineParams<'correct'>, ctx: JobContext) {
  const eng = requireEngine();
  const run = cancellable(eng, ctx.signal);
  ctx.progress({ message: 'Reading the task files…', fraction: 0 });
  const task = loadTask(eng, params.undesired);
  // toxic.jsonl holds matched controls too: only the rows marked toxic are undesired.
  const undesired: TaskExample[] = task.examples.some((e) => e.meta.context !== undefined) ? task.examples.filter((e) => e.meta.context === 'toxic') : [...task.examples];
  if (undesired.length === 0) throw new InputError('no undesired rows (rows with "context": "toxic", or any row without a context field)', params.undesired);
  const isProb = undesired[0]!.goodTokens !== undefined;
  let general: ExplainedOutput[];
  let generalMetrics: (e: Engine) => Promise<Record<string, number>>;
  if (/\.jsonl$/i.test(params.general)) {
    const generalTask = loadTask(eng, params.general);
    general = undesiredOutputs(generalTask.examples);
    generalMetrics = async (e) => {
      const values = (await evaluate(e, { task: generalTask })).task?.values ?? {};
      return Object.fromEntries(Object.entries(values).map(([k, v]) => [`general_${k}`, v]));
    };
  } else {
    const windows = params.windows ?? 16;
    const windowLength = 64;
    const ids = readTextIds(eng, params.general);
    if (ids.length <= windows * windowLength + 1) {
      throw new InputError(`the general text has ${ids.length} tokens; ${windows} windows of ${windowLength} tokens plus text for perplexity need more`, params.general);
    }
    // Reference windows from the end of the text, perplexity on the rest (as the CLI does).
    const calibIds = ids.slice(ids.length - windows * windowLength);
    const evalIds = ids.slice(0, ids.length - windows * windowLength).slice(0, EVAL_TOKENS);
    general = nextTokenOutputs(calibrationWindows(calibIds, { windows, windowLength }));
    generalMetrics = async (e) => ({ general_perplexity: (await textPerplexity(e, evalIds)).perplexity });
  }
  const metricName = isProb ? 'undesired_probability' : 'undesired_logit_diff';
  let evaluations = 0;
  const result = await correctModel(run, {
    undesired: undesiredOutputs(undesired),
    general,
    unit: 'neurons',
    count: params.neurons,
    mode: params.mode,
    steps: [params.neurons],
    progress: (done, total) => ctx.progress({ message: `Scoring neurons: ${done}/${total} explained outputs…`, fraction: (0.8 * done) / Math.max(1, total) }),
    evaluate: async (e) => {
      ctx.progress({ message: evaluations++ === 0 ? 'Evaluating the dense model…' : 'Evaluating the corrected model…', fraction: evaluations === 1 ? 0.8 : 0.9 });
      return {
        [metricName]: isProb ? await probabilityMetric(e, undesired) : (await ioiMetrics(e, undesired)).logitDiff,
        ...(await generalMetrics(e)),
      };
    },
  });
  const before = result.steps[0]?.metrics ?? {};
  const after = result.steps[result.steps.length - 1]?.metrics ?? {};
  edit = {
    kind: 'correct',
    folder: eng.folder,
    weights: result.weights,
    description: { purpose: 'correction', unit: result.unit, count: result.count, undesired: params.undesired, general: params.general, settings: result.settings, steps: result.steps, removed: result.removed },
  };
  ctx.log(`correction removed ${result.count} neurons: ${Object.keys(before).map((k) => `${k} ${before[k]!.toFixed(4)} → ${(after[k] ?? Number.NaN).toFixed(4)}`).join(', ')}`);
  return { unit: 'neurons' as const, count: result.count, totalComponents: result.totalComponents, removed: result.removed.map((r) => r.id), before, after };
}

async function exportModel(params: EngineParams<'exportModel'>, ctx: JobContext) {
  const eng = requireEngine();
  if (!edit || edit.folder !== eng.folder) {
    throw new JobError('input', 'Nothing to export: run Prune Model… or Correct Model… on the loaded model first (the result is kept until another model is loaded or the engine restarts).');
  }
  checkExportDestination(eng, params.folder, params.overwrite === true);
  checkCancelled(ctx.signal);
  ctx.progress({ message: `Writing ${path.basename(params.folder)}…` });
  const r = await writeModelFolder(eng, edit.weights, params.folder, { overwrite: params.overwrite === true, pruning: edit.description });
  return { folder: r.folder, files: r.files, kind: edit.kind, zeroedWeights: r.zeroedWeights };
}

function toWireError(err: unknown): WireError {
  if (err instanceof JobError) return { code: err.code, message: err.message, name: err.name };
  const e = err instanceof Error ? err : new Error(String(err));
  // Errors about user input (bad folder, bad prompt) are named so by the models/circuits modules.
  const code: ErrorCode = /InputError$/.test(e.name) ? 'input' : 'internal';
  return { code, message: e.message, name: e.name, ...(e.stack ? { stack: e.stack.slice(0, 60000) } : {}) };
}

// ───────────── job queue ─────────────

interface Job {
  readonly id: number;
  readonly type: EngineRequestType;
  readonly params: unknown;
  readonly controller: AbortController;
}

const queue: Job[] = [];
let running: Job | null = null;

async function drain(): Promise<void> {
  if (running) return;
  while (queue.length > 0) {
    const job = queue.shift()!;
    if (job.controller.signal.aborted) {
      post({ type: 'error', id: job.id, error: { code: 'cancelled', message: 'Cancelled' } });
      continue;
    }
    running = job;
    const ctx: JobContext = {
      signal: job.controller.signal,
      progress: (p) => post({ type: 'progress', id: job.id, progress: p }),
      log: (message) => post({ type: 'log', level: 'info', message }),
    };
    try {
      const method = job.type.method.slice('engine/'.length) as keyof typeof Req;
      const handler = handlers[method] as Handler<keyof typeof Req>;
      const result = await handler(job.params as never, ctx);
      if (job.controller.signal.aborted && method !== 'load' && method !== 'dispose') {
        post({ type: 'error', id: job.id, error: { code: 'cancelled', message: 'Cancelled' } });
      } else {
        post({ type: 'response', id: job.id, result });
      }
    } catch (err) {
      post({ type: 'error', id: job.id, error: toWireError(err) });
    } finally {
      running = null;
    }
  }
}

if (port) {
  port.on('message', (raw: unknown) => {
    const checked = validateWorkerRequest(raw);
    if (!checked.ok) {
      post({ type: 'log', level: 'warn', message: `rejected request: ${checked.reason}` });
      if (checked.id !== undefined) post({ type: 'error', id: checked.id, error: { code: 'protocol', message: checked.reason } });
      return;
    }
    if (checked.kind === 'cancel') {
      if (running?.id === checked.id) running.controller.abort();
      const queued = queue.find((j) => j.id === checked.id);
      queued?.controller.abort();
      return;
    }
    queue.push({ id: checked.id, type: checked.type, params: checked.params, controller: new AbortController() });
    void drain();
  });
  post({ type: 'ready' });
}
