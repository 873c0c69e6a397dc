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
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { Engine } from '../engine/engine';
import { checkExportDestination, exportModel as writeModelFolder } from '../circuits/pruning/modelExport';
import { attributePrompt as attributePromptPipeline, topTokens } from '../pipelines/attribution';
import { discover as discoverPipeline, verify as verifyPipeline } from '../pipelines/circuits';
import { CancelledError, checkCancelled, type JobContext, type Progress } from '../pipelines/context';
import { correct as correctPipeline, prune as prunePipeline } from '../pipelines/pruning';
import { ablatePromptGraphNodes, promptGraph as promptGraphPipeline } from '../pipelines/promptGraph';
import { logitLens, steerAndGenerate } from '../circuits/prompt/promptViews';
import type { CorrectRun, LoadedModel, PromptAttribution, PruneRun, VerificationSummary } from '../protocol/shapes';
import { Engine as Req, type EngineParams, type EngineRequestType, type ErrorCode, type WireError, type WorkerToHost, validateWorkerRequest } from '../protocol/worker';
import { pruneCurve as pruneCurvePipeline } from '../pipelines/pruneCurve';
import type { PruneCurveRun } from '../protocol/shapes';

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


/** The pipelines' job context, always complete in the worker. */
interface WorkerJob extends JobContext {
  readonly signal: AbortSignal;
  progress(p: Progress): void;
  log(message: string): void;
}

type Handler<K extends keyof typeof Req> = (params: EngineParams<K>, ctx: WorkerJob) => Promise<unknown>;

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
      // As the CLI: prepacked weights run other kernels, whose last bits differ, and the editor and
      // `circuit-lens` must give the same numbers for the same settings (the e2e suite compares files).
      prepack: false,
      // Compiled graphs are cached on disk (src/engine/cache.ts): a model opens in seconds the next time.
      ...(params.cacheDir !== undefined ? { cacheDir: params.cacheDir } : {}),
      ...(params.weightPrecision !== undefined ? { weightPrecision: params.weightPrecision } : {}),
      log: (m) => ctx.log(m),
    });
    if (ctx.signal.aborted) {
      await next.dispose();
      throw new JobError('cancelled', 'Cancelled');
    }
    engine = next;
    loaded = { info: next.info(), hasTokenizer: next.tokenizer !== null };
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
  discover: async (params, ctx) => (await discoverPipeline(requireEngine(), params, ctx)).graph,
  verify,
  prune,
  pruneCurve,
  correct,
  exportModel,
  // The prompt graph panel: the same pipeline as `circuit-lens graph` (src/pipelines/promptGraph.ts).
  promptGraph: (params, ctx) =>
    promptGraphPipeline(
      requireEngine(),
      {
        prompt: { text: params.text },
        mode: params.mode,
        ...promptTargets(params),
        ...(params.nodeThreshold !== undefined ? { nodeThreshold: params.nodeThreshold } : {}),
        ...(params.edgeThreshold !== undefined ? { edgeThreshold: params.edgeThreshold } : {}),
      },
      ctx,
    ),
  async ablatePromptNode(params, ctx) {
    const { node, ablation, ...of } = params;
    const r = await ablatePromptGraphNodes(requireEngine(), of, [node], ablation, ctx);
    return { node, ablation, full: r.full, ablated: r.ablated[0]! };
  },
  // The panel's lens and steer views: the functions `circuit-lens lens` and `steer` call.
  logitLens: async (params) => logitLens(requireEngine(), params.ids, { top: params.top ?? 3 }),
  async steer(params, ctx) {
    const [node, at] = params.node.split('@');
    ctx.progress({ message: `Continuing the prompt with ${params.node} × ${params.scale}…` });
    return { ...(await steerAndGenerate(requireEngine(), params.ids, node!, Number(at), params.scale, params.maxNewTokens ?? 8)), position: Number(at) };
  },
  async sleep(params, ctx) {
    if (!options.testHooks) throw new JobError('unavailable', 'engine/sleep is a test hook and is disabled');
    const end = Date.now() + params.ms;
    while (Date.now() < end) {
      if (params.cooperative) {
        checkCancelled(ctx);
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

function runId(kind: string): string {
  return `${kind}-${Date.now().toString(36)}`;
}

/**
 * The explained target of a prompt request (the heatmap's and the prompt graph's shared fields):
 * a named token needs its text, a logit difference its foil too; nothing is dropped silently.
 */
function promptTargets(params: EngineParams<'attributePrompt'> | EngineParams<'promptGraph'>): { target?: { text: string }; foil?: { text: string } } {
  if (params.target !== 'top1' && !params.token) throw new JobError('input', 'No target token given.');
  if (params.target === 'logit-diff' && !params.foil) throw new JobError('input', 'A logit difference needs a target token and a foil token.');
  return {
    ...(params.target !== 'top1' ? { target: { text: params.token! } } : {}),
    ...(params.target === 'logit-diff' ? { foil: { text: params.foil! } } : {}),
  };
}

/** The editor's heatmap: the same attribution as `circuit-lens attribute`, with character spans. */
async function attributePrompt(params: EngineParams<'attributePrompt'>, ctx: JobContext): Promise<PromptAttribution> {
  const eng = requireEngine();
  const tokenizer = requireTokenizer();
  const r = await attributePromptPipeline(
    eng,
    {
      prompt: { text: params.text },
      mode: params.mode,
      neurons: false,
      ...promptTargets(params),
    },
    ctx,
  );
  const a = r.attribution;
  const tokenString = (id: number) => tokenizer.tokenString(id);
  const sum = (xs: ArrayLike<number>) => Array.from(xs).reduce((x, y) => x + y, 0);
  return {
    mode: params.mode,
    tokens: r.ids.map((id, i) => ({ id, text: tokenString(id), start: r.offsets![i]![0], end: r.offsets![i]![1], relevance: a.tokenRelevance[i]! })),
    positionRelevance: a.positionRelevance ? Array.from(a.positionRelevance) : null,
    target: {
      kind: r.target.kind,
      token: r.target.token,
      text: tokenString(r.target.token),
      ...(r.target.foil !== undefined ? { foil: r.target.foil, foilText: tokenString(r.target.foil) } : {}),
      value: a.targetValue,
    },
    topNext: topTokens(a.logitsLast, params.topNext ?? 5, tokenString).map((t) => ({ ...t, text: t.text ?? String(t.id) })),
    headRelevance: a.headRelevance.map((row) => [...row]),
    sums: { token: sum(a.tokenRelevance), position: a.positionRelevance ? sum(a.positionRelevance) : 0, bias: a.biasRelevance.linear + a.biasRelevance.layernorm },
  };
}

async function verify(params: EngineParams<'verify'>, ctx: JobContext): Promise<VerificationSummary> {
  const v = await verifyPipeline(
    requireEngine(),
    params.graph,
    { ...(params.task !== undefined ? { task: params.task } : {}), ...(params.ablation !== undefined ? { ablation: params.ablation } : {}), ...(params.ablate ? { ablate: params.ablate } : {}) },
    ctx,
  );
  const e = v.evaluation;
  return {
    metric: e.metric,
    ablation: e.ablation,
    full: e.full,
    empty: e.empty,
    circuit: e.circuit,
    complement: e.complement,
    faithfulness: e.faithfulness,
    completeness: e.completeness,
    cpr: v.curve.cpr,
    cmd: v.curve.cmd,
    curve: v.curve.points.map((p) => ({ ...p })),
    ...(v.ablated ? { ablated: { nodes: [...v.ablated.nodes], circuit: v.ablated.circuit, faithfulness: v.ablated.faithfulness } } : {}),
  };
}

async function prune(params: EngineParams<'prune'>, ctx: JobContext): Promise<PruneRun> {
  const eng = requireEngine();
  const r = await prunePipeline(eng, params, ctx);
  const { settings } = r;
  edit = {
    kind: 'prune',
    folder: eng.folder,
    weights: r.weights,
    description: { purpose: 'compression', ...r.report, per_tensor: r.perTensor, evaluation: { text: settings.evalText, tokens: r.evalTokens, perplexity_dense: r.perplexityBefore, perplexity: r.perplexityAfter } },
  };
  return {
    id: runId('prune'),
    kind: 'prune',
    title: `${settings.method} ${settings.scope === 'rowwise' ? 'row-wise' : 'global'} ${(settings.sparsity * 100).toFixed(0)} %`,
    created: new Date().toISOString(),
    model: eng.folder,
    settings,
    achievedSparsity: r.report.achievedSparsity,
    prunedWeights: r.report.prunedWeights,
    totalWeights: r.report.totalWeights,
    evalTokens: r.evalTokens,
    perplexityBefore: r.perplexityBefore,
    perplexityAfter: r.perplexityAfter,
    curve: [...r.curve],
  };
}

/** SparC³ prune curves: transport only, the run is src/pipelines/pruneCurve.ts (as the CLI's). */
async function pruneCurve(params: EngineParams<'pruneCurve'>, ctx: JobContext): Promise<PruneCurveRun> {
  const eng = requireEngine();
  const r = await pruneCurvePipeline(eng, params, ctx);
  const methods = [...new Set(r.series.map((x) => x.method))].join(', ');
  const modes = [...new Set(r.series.map((x) => x.mode))].join(' + ');
  return {
    id: runId('prune-curve'),
    kind: 'prune-curve',
    title: `SparC³ ${modes}: ${methods} (${r.settings.references} seed${r.settings.references === 1 ? '' : 's'})`,
    created: new Date().toISOString(),
    model: eng.folder,
    settings: { eval: params.eval, seeds: r.settings.references, reference: r.settings.referenceSize, evaluation: r.settings.evaluation, keep: r.keep, rates: [...r.settings.rates] },
    dense: r.dense,
    series: r.series.map((x) => ({ mode: x.mode, method: x.method, scope: x.scope, rates: [...x.rates], accuracy: x.accuracy.map((row) => [...row]), mean: [...x.mean], sem: [...x.sem], circuitRate: x.circuitRate, circuitSize: x.circuitSize, total: x.total })),
  };
}

async function correct(params: EngineParams<'correct'>, ctx: JobContext): Promise<CorrectRun> {
  const eng = requireEngine();
  const r = await correctPipeline(
    eng,
    { undesired: params.undesired, general: params.general, unit: 'neurons', count: params.neurons, ...(params.mode ? { mode: params.mode } : {}), ...(params.windows ? { windows: params.windows } : {}), steps: [params.neurons] },
    ctx,
  );
  edit = {
    kind: 'correct',
    folder: eng.folder,
    weights: r.weights,
    description: { purpose: 'correction', ...r.settings, ...r.details, steps: r.steps, removed: r.removed },
  };
  return {
    id: runId('correct'),
    kind: 'correct',
    title: `remove ${r.settings.count} ${r.settings.unit} (${path.basename(r.settings.undesired)})`,
    created: new Date().toISOString(),
    model: eng.folder,
    settings: r.settings,
    totalComponents: r.totalComponents,
    removed: r.removed.map((x) => x.id),
    before: r.before,
    after: r.after,
  };
}

async function exportModel(params: EngineParams<'exportModel'>, ctx: JobContext) {
  const eng = requireEngine();
  if (!edit || edit.folder !== eng.folder) {
    throw new JobError('input', 'Nothing to export: run Prune Model… or Correct Model… on the loaded model first (the result is kept until another model is loaded or the engine restarts).');
  }
  checkExportDestination(eng, params.folder, params.overwrite === true);
  if (ctx.signal?.aborted) throw new CancelledError();
  ctx.progress?.({ message: `Writing ${path.basename(params.folder)}…` });
  const r = await writeModelFolder(eng, edit.weights, params.folder, { overwrite: params.overwrite === true, pruning: edit.description });
  return { folder: r.folder, files: r.files, kind: edit.kind, zeroedWeights: r.zeroedWeights };
}

function toWireError(err: unknown): WireError {
  if (err instanceof JobError) return { code: err.code, message: err.message, name: err.name };
  if (err instanceof CancelledError) return { code: 'cancelled', message: 'Cancelled' };
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
    const ctx: WorkerJob = {
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
