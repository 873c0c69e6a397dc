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
import { parentPort, workerData } from 'node:worker_threads';
import type { Target } from './api';
import { discoverCircuit } from '../circuits/discover';
import { evaluateCircuit, faithfulnessCurve } from '../circuits/faithfulness';
import { generateGreaterThanTask, generateIoiTask, yearSplitsAsTwoTokens } from '../circuits/generators';
import { type CircuitGraph, selectNodes } from '../circuits/graph';
import type { ModelRunner } from '../circuits/runner';
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

/** Circuit discovery and verification come from src/circuits/. */
const CIRCUITS_AVAILABLE = true;
const unavailable = (what: string): never => {
  throw new JobError('unavailable', `${what} is not available yet in this build of Circuit Lens.`);
};

const handlers: { [K in keyof typeof Req]: Handler<K> } = {
  async load(params, ctx) {
    if (engine) {
      const old = engine;
      engine = null;
      loaded = null;
      await old.dispose();
    }
    ctx.progress({ message: 'Loading model…' });
    const next = await Engine.load(params.folder, {
      ...(params.executionProvider !== undefined ? { executionProvider: params.executionProvider } : {}),
      ...(params.threads !== undefined && params.threads > 0 ? { threads: params.threads } : {}),
      log: (m) => ctx.log(m),
    });
    if (ctx.signal.aborted) {
      await next.dispose();
      throw new JobError('cancelled', 'Cancelled');
    }
    engine = next;
    loaded = { info: next.info(), hasTokenizer: next.tokenizer !== null, circuits: CIRCUITS_AVAILABLE };
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
  async attributePrompt(params, ctx) {
    return attributePrompt(params, ctx);
  },
  async discover(params, ctx) {
    return discover(params, ctx);
  },
  async verify(params, ctx) {
    return verify(params, ctx);
  },
  async prune() {
    return unavailable('Pruning');
  },
  async correct() {
    return unavailable('Model correction');
  },
  async exportModel() {
    return unavailable('Model export');
  },
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
function runnerFor(eng: Engine, signal: AbortSignal): ModelRunner {
  return new Proxy(eng as unknown as ModelRunner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        checkCancelled(signal);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

const taskCache = new Map<string, Task>();

/** The built-in task prompts (deterministic: seed 0), as the CLI's `--task ioi|greater-than` makes them. */
function taskFor(eng: Engine, name: 'ioi' | 'greater-than', count: number): Task {
  const key = `${eng.folder}|${name}|${count}`;
  const cached = taskCache.get(key);
  if (cached) return cached;
  const tokenizer = requireTokenizer();
  const encode = (text: string) => tokenizer.encode(text).ids;
  const task =
    name === 'ioi'
      ? generateIoiTask({ count, seed: 0, encode, isSingleToken: (text: string) => tokenizer.encode(text).ids.length === 1 })
      : generateGreaterThanTask({ count, seed: 0, encode, yearIsClean: yearSplitsAsTwoTokens(encode) });
  taskCache.set(key, task);
  return task;
}

function universeOf(eng: Engine): string[] {
  const ids: string[] = [];
  for (let l = 0; l < eng.spec.nLayers; l++) {
    for (let h = 0; h < eng.spec.nHeads; h++) ids.push(`a${l}.h${h}`);
    ids.push(`m${l}`);
  }
  return ids;
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
  const runner = runnerFor(eng, ctx.signal);
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
  const evaluation = await evaluateCircuit(runner, task, circuit, 'mean', universeOf(eng), { batchSize: 16 });
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
  const runner = runnerFor(eng, ctx.signal);
  const task = taskFor(eng, params.task, params.prompts ?? 32);
  const universe = universeOf(eng);
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
