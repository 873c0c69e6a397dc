/**
 * Every command of Circuit Lens (category "Circuit Lens"), built by one factory so each id has
 * exactly one implementation and works — or says why not — whether or not a model is loaded.
 *
 * Circuits are the CLI's `CircuitGraph` from end to end: Discover Circuit… asks the worker for
 * one (the same pipeline as `circuit-lens discover`), Open Circuit Graph reads any circuit file
 * the CLI wrote, Verify sends the graph itself, and Save/Export write the CLI's bytes. Pruning and
 * correction results are runs (the Runs view and the panel's Charts view), never circuits.
 */
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CircuitGraph } from '../circuits/discovery/graph';
import { CURVE_METHOD_NAMES, CURVE_MODE_NAMES, type Run, type VerificationSummary } from '../protocol/shapes';
import { parseWith } from '../protocol/schema';
import { Engine, type EngineParams, type EngineResult } from '../protocol/worker';
import {
  ABLATION_DOCS,
  AGGREGATION_DOCS,
  BUILT_IN_TASK_DOCS,
  COMPOSITES,
  DISCOVERY_METHOD_DOCS,
  EXECUTION_PROVIDER_DOCS,
  EXECUTION_PROVIDERS,
  GRANULARITY_DOCS,
  PRUNE_METHOD_DOCS,
  PRUNE_METHODS,
  valuesOf,
  type Ablation,
  type Aggregation,
  type DiscoveryMethod,
  type Granularity,
  type PruneMethod,
  type TargetChoice,
} from '../vocabulary';
import type { Ctx, ShownCircuit } from './ctx';
import { exportCircuit, type ExportFormat, parseCircuitFile } from './exporters';
import type { Heatmap } from './heatmap';
import { CircuitPanel, type PanelHandlers } from './panel';
import { PromptGraphPanel } from './promptGraphPanel';
import { type CircuitStore, describeRun, fmt, type SavedCircuit } from './views';
import { DISCOVER_DEFAULTS } from '../pipelines/defaults';

/** Command ids, as contributed in package.json. */
export const enum CommandId {
  LoadModel = 'circuitLens.loadModel',
  UseEmbeddedModel = 'circuitLens.useEmbeddedModel',
  Attribute = 'circuitLens.attribute',
  AttributeFromMenu = 'circuitLens.attributeSelection',
  ClearHeatmap = 'circuitLens.clearHeatmap',
  DiscoverCircuit = 'circuitLens.discoverCircuit',
  OpenGraph = 'circuitLens.openGraph',
  OpenPromptGraph = 'circuitLens.openPromptGraph',
  VerifyCircuit = 'circuitLens.verifyCircuit',
  PruneModel = 'circuitLens.pruneModel',
  CorrectModel = 'circuitLens.correctModel',
  PruneCurve = 'circuitLens.pruneCurve',
  ShowRun = 'circuitLens.showRun',
  ExportCircuit = 'circuitLens.exportCircuit',
  ExportModel = 'circuitLens.exportModel',
  DeleteCircuit = 'circuitLens.deleteCircuit',
  SelectExecutionProvider = 'circuitLens.selectExecutionProvider',
  ShowLog = 'circuitLens.showLog',
  RunTestJob = 'circuitLens.developer.runTestJob',
}

export interface Services {
  readonly heatmap: Heatmap;
  readonly store: CircuitStore;
}

type Cmd = (...args: unknown[]) => unknown;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSaved = (v: unknown): v is SavedCircuit => isObject(v) && typeof v['file'] === 'string' && isObject(v['graph']);

export function panelHandlers(ctx: Ctx): PanelHandlers {
  return {
    verify: (circuit, ablate) => verify(ctx, circuit, ablate),
    export: (circuit, format) => exportToFile(ctx, circuit, format),
    exportPng: async (name, dataUrl) => {
      const uri = await vscode.window.showSaveDialog({ title: 'Export Circuit Graph Image', ...defaultUriOption(`${name}.png`), filters: { 'PNG image': ['png'] } });
      if (!uri) return;
      await vscode.workspace.fs.writeFile(uri, Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64'));
      ctx.log.info(`exported graph image to ${uri.fsPath}`);
    },
  };
}

function defaultUriOption(name: string): { defaultUri?: vscode.Uri } {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? { defaultUri: vscode.Uri.joinPath(folder.uri, name) } : {};
}

/** The loaded model, if it has the circuit's shape; says what to do otherwise. */
async function modelFor(ctx: Ctx, graph: CircuitGraph): Promise<boolean> {
  const model = await ctx.ensureModel();
  if (!model) return false;
  if (model.info.layers !== graph.model.nLayers || model.info.heads !== graph.model.nHeads) {
    void ctx.showError(
      `Circuit Lens: the circuit was found on ${graph.model.name} (${graph.model.nLayers} layers × ${graph.model.nHeads} heads); the loaded model has ${model.info.layers} × ${model.info.heads}. Load the model it was found on.`,
    );
    return false;
  }
  return true;
}

async function verify(ctx: Ctx, circuit: ShownCircuit, ablate: string[]): Promise<VerificationSummary | undefined> {
  if (!(await modelFor(ctx, circuit.graph))) return undefined;
  const result = await ctx.runJob(`Verifying circuit ${circuit.title}`, (opts) => ctx.client.verify({ graph: circuit.graph, ...(ablate.length ? { ablate } : {}) }, opts));
  if (result) {
    // The walkthrough's "Verify it" step completes on this key too: the panel's Verify button
    // does not go through the circuitLens.verifyCircuit command (package.json completionEvents).
    void vscode.commands.executeCommand('setContext', 'circuitLens.circuitVerified', true);
    ctx.log.info(
      `verify ${circuit.title}: ${result.metric} full ${result.full}, circuit ${result.circuit}, faithfulness ${result.faithfulness}${result.ablated ? `; without ${result.ablated.nodes.join(', ')}: ${result.ablated.circuit} (faithfulness ${result.ablated.faithfulness})` : ''}`,
    );
  }
  return result;
}

/** Default prompts for a Neuronpedia graph of a built-in task's circuit. */
const TASK_PROMPTS: Record<string, string> = {
  ioi: 'When Mary and John went to the store, John gave a drink to',
  'greater-than': 'The war lasted from the year 1732 to the year 17',
};

async function exportToFile(ctx: Ctx, circuit: ShownCircuit, format: ExportFormat): Promise<void> {
  let prompt: { text: string; attribution: EngineResult<'attributePrompt'>; slug: string } | undefined;
  if (format === 'neuronpedia') {
    const text = await vscode.window.showInputBox({
      title: 'Circuit Lens: Neuronpedia graph',
      prompt: 'A Neuronpedia graph shows the circuit on one prompt: its tokens become the input nodes and its top next token the logit node',
      value: TASK_PROMPTS[circuit.graph.task.name] ?? '',
      validateInput: (v) => (v.trim() ? undefined : 'Enter a prompt'),
    });
    if (!text) return;
    if (!(await modelFor(ctx, circuit.graph))) return;
    // As `circuit-lens export --format neuronpedia`: AttnLRP relevance of the top next token.
    const attribution = await ctx.runJob('Attributing the prompt for the Neuronpedia graph', (opts) => ctx.client.attributePrompt({ text, mode: 'attnlrp', target: 'top1', topNext: 1 }, opts));
    if (!attribution) return;
    prompt = { text, attribution, slug: circuit.title };
  }
  const suffix = format === 'circuit-lens' ? 'circuit' : format;
  const uri = await vscode.window.showSaveDialog({ title: 'Export Circuit', ...defaultUriOption(`${circuit.title}.${suffix}.json`), filters: { JSON: ['json'] } });
  if (!uri) return;
  let data: string;
  try {
    data = exportCircuit(circuit.graph, format, prompt);
  } catch (err) {
    void ctx.reportError('Export Circuit', err);
    return;
  }
  await vscode.workspace.fs.writeFile(uri, Buffer.from(data));
  ctx.log.info(`exported ${circuit.title} as ${format} to ${uri.fsPath}`);
  void vscode.window.showInformationMessage(`Circuit exported to ${path.basename(uri.fsPath)}`);
}

// ── discovery ──

/** What the user chose in Discover Circuit… (remembered per workspace); absent = the pipeline's default. */
interface DiscoverChoices {
  task?: string;
  method?: DiscoveryMethod;
  granularity?: Granularity;
  aggregation?: Aggregation;
  edges?: boolean;
  top?: number;
  budget?: number;
  ablation?: Ablation;
}

const CHOICES_KEY = 'circuitLens.discoverChoices';
const DEFAULT_LABEL = 'default';
/** "default (attnlrp)": the value the pipeline uses when the choice is left unset. */
const byDefault = (value: string | number | boolean) => `${DEFAULT_LABEL} (${String(value)})`;
const DEFAULT_DETAIL = 'as `circuit-lens discover` without the flag';

function oneOf<T extends string>(v: unknown, table: Readonly<Record<T, string>>): T | undefined {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(table, v) ? (v as T) : undefined;
}

/** The remembered choices, each checked against the vocabulary (a stale entry is dropped). */
function loadChoices(ctx: Ctx): DiscoverChoices {
  const raw = ctx.extension.workspaceState.get<unknown>(CHOICES_KEY);
  if (!isObject(raw)) return {};
  const c: DiscoverChoices = {};
  if (typeof raw['task'] === 'string' && raw['task'].length > 0) c.task = raw['task'];
  const method = oneOf(raw['method'], DISCOVERY_METHOD_DOCS);
  if (method) c.method = method;
  const granularity = oneOf(raw['granularity'], GRANULARITY_DOCS);
  if (granularity) c.granularity = granularity;
  const aggregation = oneOf(raw['aggregation'], AGGREGATION_DOCS);
  if (aggregation) c.aggregation = aggregation;
  const ablation = oneOf(raw['ablation'], ABLATION_DOCS);
  if (ablation) c.ablation = ablation;
  if (typeof raw['edges'] === 'boolean') c.edges = raw['edges'];
  if (typeof raw['top'] === 'number' && Number.isInteger(raw['top']) && raw['top'] >= 1) c.top = raw['top'];
  else if (typeof raw['budget'] === 'number' && raw['budget'] > 0 && raw['budget'] <= 1) c.budget = raw['budget'];
  return c;
}

function taskLabel(task: string | undefined): string {
  if (task === undefined) return byDefault(DISCOVER_DEFAULTS.task);
  return oneOf(task, BUILT_IN_TASK_DOCS) ? task : vscode.workspace.asRelativePath(task);
}

function sizeLabel(c: DiscoverChoices): string {
  return c.top !== undefined ? `top ${c.top}` : c.budget !== undefined ? `budget ${c.budget}` : DEFAULT_LABEL;
}

/** The request for the worker: only what the user chose, so every other default is the pipeline's. */
function discoverParams(ctx: Ctx, c: DiscoverChoices): EngineParams<'discover'> {
  const builtIn = c.task === undefined || oneOf(c.task, BUILT_IN_TASK_DOCS) !== undefined;
  // circuitLens.circuits.prompts sizes generated tasks (a task file keeps its rows).
  const n = builtIn ? ctx.config.prompts : undefined;
  return {
    task: c.task ?? 'ioi',
    ...(n !== undefined ? { n } : {}),
    ...(c.method ? { method: c.method } : {}),
    ...(c.granularity ? { granularity: c.granularity } : {}),
    ...(c.aggregation ? { aggregation: c.aggregation } : {}),
    ...(c.edges !== undefined ? { edges: c.edges } : {}),
    ...(c.top !== undefined ? { top: c.top } : {}),
    ...(c.budget !== undefined ? { budget: c.budget } : {}),
    ...(c.ablation ? { ablation: c.ablation } : {}),
  };
}

/** The choices with `key` set to `value`, or without it (the pipeline's default) when undefined. */
function setChoice<K extends keyof DiscoverChoices>(c: DiscoverChoices, key: K, value: DiscoverChoices[K] | undefined): DiscoverChoices {
  const next: DiscoverChoices = { ...c };
  delete next[key];
  return value === undefined ? next : { ...next, [key]: value };
}

type Row = vscode.QuickPickItem & { step?: 'run' | 'task' | 'method' | 'granularity' | 'edges' | 'aggregation' | 'size' | 'ablation' | 'reset' };

/** One vocabulary as quick-pick rows, the default (absent) first; the current choice is marked. */
async function pickFrom<T extends string>(title: string, table: Readonly<Record<T, string>>, current: T | undefined): Promise<{ value: T | undefined } | undefined> {
  const items: (vscode.QuickPickItem & { value?: T })[] = [
    { label: `${current === undefined ? '$(check) ' : ''}${DEFAULT_LABEL}`, description: DEFAULT_DETAIL },
    ...valuesOf(table).map((v) => ({ label: `${v === current ? '$(check) ' : ''}${v}`, description: table[v], value: v })),
  ];
  const pick = await vscode.window.showQuickPick(items, { title, matchOnDescription: true });
  return pick ? { value: pick.value } : undefined;
}

async function pickTask(current: string | undefined): Promise<{ value: string | undefined } | undefined> {
  const items: (vscode.QuickPickItem & { value?: string; browse?: boolean })[] = [
    ...valuesOf(BUILT_IN_TASK_DOCS).map((t) => ({ label: `${t === current ? '$(check) ' : ''}${t}`, description: BUILT_IN_TASK_DOCS[t], value: t })),
  ];
  const found = await vscode.workspace.findFiles('**/*.jsonl', '**/{node_modules,.git,.e2e}/**', 100);
  if (found.length) {
    items.push({ label: 'Task files in the workspace', kind: vscode.QuickPickItemKind.Separator });
    for (const uri of found.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
      items.push({ label: `${uri.fsPath === current ? '$(check) ' : ''}$(file) ${vscode.workspace.asRelativePath(uri)}`, value: uri.fsPath });
    }
  }
  items.push({ label: '$(folder-opened) Browse for a JSONL task…', browse: true });
  const pick = await vscode.window.showQuickPick(items, { title: 'Circuit Lens: task', placeHolder: 'A built-in task (made for the model’s tokenizer) or a JSONL task file', matchOnDescription: true });
  if (!pick) return undefined;
  if (!pick.browse) return { value: pick.value };
  const uris = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectMany: false, filters: { 'JSONL task': ['jsonl'] }, title: 'Circuit Lens: JSONL task file' });
  return uris?.[0] ? { value: uris[0].fsPath } : undefined;
}

async function pickSize(c: DiscoverChoices): Promise<Pick<DiscoverChoices, 'top' | 'budget'> | undefined> {
  const pick = await vscode.window.showQuickPick(
    [
      { label: DEFAULT_LABEL, description: `${DEFAULT_DETAIL} (a share of the candidates)`, size: 'default' as const },
      { label: 'Top-k…', description: 'keep the k highest-scoring candidates', size: 'top' as const },
      { label: 'Budget…', description: 'keep the fewest candidates whose scores cover this share of the total', size: 'budget' as const },
    ],
    { title: 'Circuit Lens: circuit size' },
  );
  if (!pick) return undefined;
  if (pick.size === 'default') return {};
  if (pick.size === 'top') {
    const v = await vscode.window.showInputBox({
      title: 'Circuit Lens: top-k',
      prompt: 'Candidates (components, or edges for an edge circuit) to keep',
      value: String(c.top ?? ''),
      validateInput: (s) => (/^[1-9]\d{0,6}$/.test(s.trim()) ? undefined : 'A positive whole number'),
    });
    return v === undefined ? undefined : { top: Number(v.trim()) };
  }
  const v = await vscode.window.showInputBox({
    title: 'Circuit Lens: budget',
    prompt: 'Share of the total score the kept candidates must cover, in (0, 1]',
    value: String(c.budget ?? ''),
    validateInput: (s) => {
      const x = Number(s.trim());
      return s.trim() !== '' && x > 0 && x <= 1 ? undefined : 'A number in (0, 1], e.g. 0.8';
    },
  });
  return v === undefined ? undefined : { budget: Number(v.trim()) };
}

/**
 * The Discover Circuit… menu: the current choices, each a row that opens its picker, and a row
 * that runs discovery with them. Returns the choices to run with, or undefined when dismissed.
 */
async function chooseDiscovery(ctx: Ctx): Promise<DiscoverChoices | undefined> {
  let c = loadChoices(ctx);
  for (;;) {
    const rows: Row[] = [
      { label: '$(play) Discover', description: `${taskLabel(c.task)} · ${c.method ?? DISCOVER_DEFAULTS.method} · ${c.granularity ?? (c.edges ? 'heads+mlps' : 'heads')}${c.edges ? ' · edges' : ''}`, step: 'run', alwaysShow: true },
      { label: 'Settings', kind: vscode.QuickPickItemKind.Separator },
      { label: 'Task', description: taskLabel(c.task), step: 'task' },
      { label: 'Method', description: c.method ?? byDefault(DISCOVER_DEFAULTS.method), step: 'method' },
      { label: 'Granularity', description: c.granularity ?? byDefault(c.edges ? 'heads+mlps' : 'heads'), step: 'granularity' },
      { label: 'Level', description: c.edges === undefined ? DEFAULT_LABEL : c.edges ? 'edges' : 'nodes', step: 'edges' },
      { label: 'Aggregation', description: c.aggregation ?? byDefault(DISCOVER_DEFAULTS.aggregation), step: 'aggregation' },
      { label: 'Size', description: sizeLabel(c), step: 'size' },
      { label: 'Ablation', description: c.ablation ?? byDefault(DISCOVER_DEFAULTS.ablation), step: 'ablation' },
      { label: '$(discard) Reset to the defaults', description: 'the defaults of `circuit-lens discover`', step: 'reset' },
    ];
    const pick = await vscode.window.showQuickPick(rows, { title: 'Circuit Lens: Discover Circuit', placeHolder: 'Enter to discover with these settings, or change one' });
    if (!pick?.step) return undefined;
    let next: DiscoverChoices = { ...c };
    switch (pick.step) {
      case 'run':
        return c;
      case 'reset':
        c = {};
        await ctx.extension.workspaceState.update(CHOICES_KEY, c);
        continue;
      case 'task': {
        const r = await pickTask(c.task);
        if (r) next = setChoice(next, 'task', r.value);
        break;
      }
      case 'method': {
        const r = await pickFrom('Circuit Lens: discovery method', DISCOVERY_METHOD_DOCS, c.method);
        if (r) next = setChoice(next, 'method', r.value);
        break;
      }
      case 'granularity': {
        const r = await pickFrom('Circuit Lens: granularity', GRANULARITY_DOCS, c.granularity);
        if (r) next = setChoice(next, 'granularity', r.value);
        break;
      }
      case 'edges': {
        const r = await pickFrom('Circuit Lens: select nodes or edges', { nodes: 'score and keep components', edges: 'score and keep edges of the head/MLP graph' } as const, c.edges === undefined ? undefined : c.edges ? 'edges' : 'nodes');
        if (r) next = setChoice(next, 'edges', r.value === undefined ? undefined : r.value === 'edges');
        break;
      }
      case 'aggregation': {
        const r = await pickFrom('Circuit Lens: aggregation over prompts', AGGREGATION_DOCS, c.aggregation);
        if (r) next = setChoice(next, 'aggregation', r.value);
        break;
      }
      case 'size': {
        const r = await pickSize(c);
        if (r) {
          next = setChoice(setChoice(next, 'top', r.top), 'budget', r.budget);
        }
        break;
      }
      case 'ablation': {
        const r = await pickFrom('Circuit Lens: ablation for verification', ABLATION_DOCS, c.ablation);
        if (r) next = setChoice(next, 'ablation', r.value);
        break;
      }
    }
    c = next;
    await ctx.extension.workspaceState.update(CHOICES_KEY, c);
  }
}

// ── pruning, correction, model export ──

/** Sparsities drawn in the panel's sparsity–perplexity chart besides the requested one (and 0). */
const CURVE_SPARSITIES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

type FilePick = vscode.QuickPickItem & { file?: string; browse?: boolean };

/** A file from the model folder, the workspace, or a browse dialog. */
async function pickFile(
  ctx: Ctx,
  opts: { title: string; placeHolder: string; modelFiles: readonly string[]; glob: string; filters: Record<string, string[]>; key: string },
): Promise<string | undefined> {
  const items: FilePick[] = [];
  const model = ctx.model;
  const last = ctx.extension.workspaceState.get<string>(opts.key);
  if (last && fsSync.existsSync(last)) items.push({ label: `$(history) ${path.basename(last)}`, description: last, file: last });
  if (model) {
    for (const name of opts.modelFiles) {
      const file = path.join(model.info.folder, name);
      if (fsSync.existsSync(file) && file !== last) items.push({ label: `$(beaker) ${name}`, description: `of ${path.basename(model.info.folder)}`, file });
    }
  }
  const found = await vscode.workspace.findFiles(opts.glob, '**/{node_modules,.git,.e2e}/**', 50);
  if (found.length) {
    items.push({ label: 'Workspace', kind: vscode.QuickPickItemKind.Separator });
    for (const uri of found.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
      if (uri.fsPath !== last) items.push({ label: `$(file) ${vscode.workspace.asRelativePath(uri)}`, file: uri.fsPath });
    }
  }
  items.push({ label: '$(folder-opened) Browse…', browse: true });
  const pick = await vscode.window.showQuickPick(items, { title: opts.title, placeHolder: opts.placeHolder, matchOnDescription: true });
  if (!pick) return undefined;
  let file = pick.file;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: false, canSelectMany: false, filters: opts.filters, title: opts.title, ...defaultUriOption('') });
    file = uris?.[0]?.fsPath;
  }
  if (file) await ctx.extension.workspaceState.update(opts.key, file);
  return file;
}

/** Arguments of Prune Model… when run programmatically (each one skips its prompt). */
interface PruneArgs {
  method?: PruneMethod;
  sparsity?: number;
  text?: string;
}

function showRuns(ctx: Ctx, ids: readonly string[]): void {
  CircuitPanel.showRuns(ctx, ids, panelHandlers(ctx));
}

async function pruneModel(ctx: Ctx, args: PruneArgs): Promise<Run | undefined> {
  if (!(await ctx.ensureModel())) return undefined;
  let method = args.method;
  if (!method) {
    const lastMethod = ctx.extension.workspaceState.get<string>('circuitLens.lastPruneMethod');
    const order = [...PRUNE_METHODS].sort((a, b) => Number(b === lastMethod) - Number(a === lastMethod));
    const pick = await vscode.window.showQuickPick(
      order.map((m) => ({ label: m, description: PRUNE_METHOD_DOCS[m], m })),
      { title: 'Circuit Lens: Prune Model (1/3)', placeHolder: 'How to score the weights (the lowest-scoring are set to zero)' },
    );
    if (!pick) return undefined;
    method = pick.m;
    await ctx.extension.workspaceState.update('circuitLens.lastPruneMethod', method);
  }
  let sparsity = args.sparsity;
  if (sparsity === undefined) {
    const value = await vscode.window.showInputBox({
      title: 'Circuit Lens: Prune Model (2/3)',
      prompt: 'Fraction of the decoder-block linear weights to set to zero (circuitLens.pruning.scope: the same fraction in every output row, or one global ranking)',
      value: '0.5',
      validateInput: (v) => (/^(0(\.\d+)?|1(\.0*)?|\.\d+)$/.test(v.trim()) ? undefined : 'A number between 0 and 1, e.g. 0.5'),
    });
    if (value === undefined) return undefined;
    sparsity = Number(value.trim());
  }
  let text = args.text;
  if (!text) {
    text = await pickFile(ctx, {
      title: 'Circuit Lens: Prune Model (3/3)',
      placeHolder: 'Text for perplexity (its first 8,192 tokens) and calibration windows (the rest)',
      modelFiles: ['heldout.txt'],
      glob: '**/*.txt',
      filters: { Text: ['txt', 'md'] },
      key: 'circuitLens.lastPruneText',
    });
    if (!text) return undefined;
  }
  const scope = ctx.config.pruneScope;
  const windows = ctx.config.pruneWindows;
  const target = sparsity;
  const params: EngineParams<'prune'> = {
    method,
    sparsity,
    text,
    ...(scope ? { scope } : {}),
    ...(windows !== undefined ? { windows } : {}),
    curve: CURVE_SPARSITIES.filter((x) => x !== target),
  };
  const r = await ctx.runJob(`Pruning ${(sparsity * 100).toFixed(0)} % of the weights (${method})`, (opts) => ctx.client.prune(params, opts));
  if (!r) return undefined;
  ctx.log.info(`prune ${method}/${r.settings.scope} ${r.settings.sparsity}: ${r.prunedWeights} of ${r.totalWeights} weights; perplexity ${r.perplexityBefore} → ${r.perplexityAfter} on ${r.evalTokens} tokens of ${r.settings.evalText}`);
  ctx.addRun(r);
  showRuns(ctx, [r.id]);
  const ppl = r.perplexityBefore !== null && r.perplexityAfter !== null ? `: perplexity ${fmt(r.perplexityBefore)} → ${fmt(r.perplexityAfter)}` : '';
  void vscode.window
    .showInformationMessage(`Pruned ${(r.achievedSparsity * 100).toFixed(1)} % of the weights (${method}, ${r.settings.scope})${ppl}`, 'Export Model…')
    .then((a) => a && vscode.commands.executeCommand(CommandId.ExportModel));
  return r;
}

// ── SparC³ prune curves (src/pipelines/pruneCurve.ts, as `circuit-lens prune-curve`) ──

/**
 * Small editor defaults so a run on the embedded model finishes in well under a minute: 3 seeds
 * (the fewest SparC³-style curves should have) but 16 prompts per reference set instead of the CLI's
 * 128, and 7 rates instead of 9; structured pruning with all five methods preselected.
 */
const EDITOR_CURVE = { seeds: 3, reference: 16, rates: [0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95] } as const;
const CURVE_METHOD_DOCS: Record<(typeof CURVE_METHOD_NAMES)[number], string> = {
  attnlrp: 'AttnLRP relevance of the IO logit (SparC³)',
  gradient: 'gradient × activation / × weight',
  activation: 'activation norms (structured only)',
  wanda: '|W| · ‖X‖₂ (no head scores: prunes neurons only)',
  random: 'seeded random scores (baseline)',
};

/** Arguments of SparC³ Prune Curve… when run programmatically (each one skips its prompt). */
interface PruneCurveArgs {
  modes?: (typeof CURVE_MODE_NAMES)[number][];
  methods?: (typeof CURVE_METHOD_NAMES)[number][];
  seeds?: number;
  reference?: number;
  rates?: number[];
  eval?: string;
}

async function pruneCurveCommand(ctx: Ctx, args: PruneCurveArgs): Promise<Run | undefined> {
  if (!(await ctx.ensureModel())) return undefined;
  let modes = args.modes;
  if (!modes) {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'structured', description: 'attention heads and MLP neurons, ranked together', picked: true, m: 'structured' as const },
        { label: 'unstructured', description: 'single weights of the MLP up/down projections', picked: false, m: 'unstructured' as const },
      ],
      { title: 'Circuit Lens: SparC³ Prune Curve (1/3)', placeHolder: 'What to prune', canPickMany: true },
    );
    if (!pick?.length) return undefined;
    modes = pick.map((p) => p.m);
  }
  let methods = args.methods;
  if (!methods) {
    const pick = await vscode.window.showQuickPick(
      CURVE_METHOD_NAMES.map((m) => ({ label: m, description: CURVE_METHOD_DOCS[m], picked: true, m })),
      { title: 'Circuit Lens: SparC³ Prune Curve (2/3)', placeHolder: 'How to score the components (one curve each)', canPickMany: true },
    );
    if (!pick?.length) return undefined;
    methods = pick.map((p) => p.m);
  }
  let seeds = args.seeds;
  if (seeds === undefined) {
    const value = await vscode.window.showInputBox({
      title: 'Circuit Lens: SparC³ Prune Curve (3/3)',
      prompt: `Reference sets (seeds) of ${args.reference ?? EDITOR_CURVE.reference} IOI prompts each: the band is the SEM over them (the paper uses 6 × 128; the CLI's default is 3 × 128)`,
      value: String(EDITOR_CURVE.seeds),
      validateInput: (v) => (/^[1-9]\d?$/.test(v.trim()) ? undefined : 'A whole number from 1 to 99'),
    });
    if (value === undefined) return undefined;
    seeds = Number(value.trim());
  }
  const model = ctx.model;
  const ioiFile = model ? path.join(model.info.folder, 'ioi.jsonl') : '';
  const params: EngineParams<'pruneCurve'> = {
    // The model folder's IOI prompts when it has them, else the generated held-out split.
    eval: args.eval ?? (ioiFile && fsSync.existsSync(ioiFile) ? ioiFile : 'ioi'),
    seeds,
    reference: args.reference ?? EDITOR_CURVE.reference,
    methods,
    modes,
    rates: args.rates ?? [...EDITOR_CURVE.rates],
  };
  const r = await ctx.runJob(`SparC³ prune curves (${modes.join(' + ')}; ${methods.join(', ')})`, (opts) => ctx.client.pruneCurve(params, opts));
  if (!r) return undefined;
  ctx.log.info(`prune-curve: ${describeRun(r)}`);
  ctx.addRun(r);
  showRuns(ctx, [r.id]);
  void vscode.window.showInformationMessage(`SparC³ prune curves: ${describeRun(r)}`);
  return r;
}

/** Arguments of Correct Model… when run programmatically. */
interface CorrectArgs {
  undesired?: string;
  general?: string;
  neurons?: number;
}

async function correctModel(ctx: Ctx, args: CorrectArgs): Promise<Run | undefined> {
  if (!(await ctx.ensureModel())) return undefined;
  const undesired =
    args.undesired ??
    (await pickFile(ctx, {
      title: 'Circuit Lens: Correct Model (1/3)',
      placeHolder: 'The undesired behaviour: a JSONL task (e.g. toxic.jsonl; rows with "context": "toxic" are used)',
      modelFiles: ['toxic.jsonl'],
      glob: '**/*.jsonl',
      filters: { 'JSONL task': ['jsonl'] },
      key: 'circuitLens.lastUndesired',
    }));
  if (!undesired) return undefined;
  const general =
    args.general ??
    (await pickFile(ctx, {
      title: 'Circuit Lens: Correct Model (2/3)',
      placeHolder: 'General data to preserve: a text (perplexity) or a JSONL task (its metric)',
      modelFiles: ['heldout.txt'],
      glob: '**/*.{txt,jsonl}',
      filters: { 'Text or JSONL task': ['txt', 'jsonl'] },
      key: 'circuitLens.lastGeneral',
    }));
  if (!general) return undefined;
  let neurons = args.neurons;
  if (neurons === undefined) {
    const value = await vscode.window.showInputBox({
      title: 'Circuit Lens: Correct Model (3/3)',
      prompt: 'MLP neurons to remove (most relevant to the undesired task, least to the general data)',
      value: '48',
      validateInput: (v) => (/^[1-9]\d{0,7}$/.test(v.trim()) ? undefined : 'A positive whole number'),
    });
    if (value === undefined) return undefined;
    neurons = Number(value.trim());
  }
  const mode = ctx.config.mode;
  const params: EngineParams<'correct'> = { undesired, general, neurons, ...(mode ? { mode } : {}) };
  const r = await ctx.runJob(`Correcting the model (${neurons} neurons)`, (opts) => ctx.client.correct(params, opts));
  if (!r) return undefined;
  ctx.log.info(`correct: removed ${r.removed.join(', ')}; ${describeRun(r)}`);
  ctx.addRun(r);
  showRuns(ctx, [r.id]);
  void vscode.window.showInformationMessage(`Correction: ${describeRun(r)}`, 'Export Model…').then((a) => a && vscode.commands.executeCommand(CommandId.ExportModel));
  return r;
}

async function exportModel(ctx: Ctx, target?: string): Promise<EngineResult<'exportModel'> | undefined> {
  const model = await ctx.ensureModel();
  if (!model) return undefined;
  let folder = target;
  if (!folder) {
    const uri = await vscode.window.showSaveDialog({
      title: 'Circuit Lens: export the pruned or corrected model as a new folder',
      saveLabel: 'Export Model',
      ...defaultUriOption(`${path.basename(model.info.folder)}-edited`),
    });
    folder = uri?.fsPath;
  }
  if (!folder) return undefined;
  let overwrite = false;
  if (fsSync.existsSync(folder)) {
    const answer = await vscode.window.showWarningMessage(`${folder} exists. Replace it with the exported model?`, { modal: true }, 'Replace');
    if (answer !== 'Replace') return undefined;
    overwrite = true;
  }
  const dest = folder;
  const r = await ctx.runJob('Exporting the model', (opts) => ctx.client.exportModel({ folder: dest, overwrite }, opts));
  if (r) {
    ctx.log.info(`exported the ${r.kind === 'prune' ? 'pruned' : 'corrected'} model to ${r.folder}: ${r.files.join(', ')} (${r.zeroedWeights} weights zeroed)`);
    void vscode.window.showInformationMessage(`Model exported to ${r.folder} (${r.files.length} files, ${r.zeroedWeights.toLocaleString('en-US')} weights zeroed)`);
  }
  return r;
}

// ── attribution ──

/** The prompt to attribute: the selection, or the current line when nothing is selected. */
function promptOf(editor: vscode.TextEditor): { text: string; base: number } | undefined {
  const sel = editor.selection;
  let range: vscode.Range = sel.isEmpty ? editor.document.lineAt(sel.active.line).range : sel;
  let text = editor.document.getText(range);
  // Trailing whitespace would be attributed as tokens of its own; leave it out.
  const trimmed = text.replace(/\s+$/, '');
  if (trimmed.length !== text.length) {
    range = new vscode.Range(range.start, editor.document.positionAt(editor.document.offsetAt(range.start) + trimmed.length));
    text = trimmed;
  }
  if (!text.trim()) return undefined;
  return { text, base: editor.document.offsetAt(range.start) };
}

async function askTarget(ctx: Ctx, choice: TargetChoice): Promise<{ token?: string; foil?: string } | undefined> {
  if (choice === 'top1') return {};
  const token = await vscode.window.showInputBox({
    title: 'Circuit Lens: target token',
    prompt: 'The next token whose logit to explain (one token; a leading space is added if needed)',
    value: ctx.extension.workspaceState.get<string>('circuitLens.lastToken') ?? '',
  });
  if (!token) return undefined;
  await ctx.extension.workspaceState.update('circuitLens.lastToken', token);
  if (choice === 'token') return { token };
  const foil = await vscode.window.showInputBox({
    title: 'Circuit Lens: foil token',
    prompt: `Explain logit(${token}) − logit(foil): the competing token`,
    value: ctx.extension.workspaceState.get<string>('circuitLens.lastFoil') ?? '',
  });
  if (!foil) return undefined;
  await ctx.extension.workspaceState.update('circuitLens.lastFoil', foil);
  return { token, foil };
}

// ── prompt graphs ──

const OPEN_PROMPT_GRAPH = 'Open Prompt Graph';

/** Builds the prompt graph in the worker (the pipeline `circuit-lens graph` runs) and shows it. */
async function openPromptGraph(ctx: Ctx, params: EngineParams<'promptGraph'>): Promise<EngineResult<'promptGraph'> | undefined> {
  if (!(await ctx.ensureModel())) return undefined;
  const graph = await ctx.runJob('Building the prompt graph', (opts) => ctx.client.promptGraph(params, opts));
  if (!graph) return undefined;
  const s = graph.selection;
  ctx.log.info(
    `prompt graph: target ${JSON.stringify(graph.target.text)} = ${graph.target.value}; ${s.keptNodes} of ${s.candidates} nodes, ${s.keptEdges} of ${s.computedEdges} edges; conservation error ${graph.conservation.relativeError}`,
  );
  const text = params.text.length > 40 ? `…${params.text.slice(-39)}` : params.text;
  PromptGraphPanel.show(ctx, graph, text);
  return graph;
}

// ── circuits: open, pick ──

/** Reads a circuit file (any the CLI wrote); reports the problem and returns undefined when it is not one. */
async function readCircuitFile(ctx: Ctx, file: string): Promise<ShownCircuit | undefined> {
  try {
    const graph = parseCircuitFile(await fs.readFile(file, 'utf8'), file);
    return { graph, title: path.basename(file).replace(/\.json$/i, ''), file };
  } catch (err) {
    void ctx.reportError('Open Circuit Graph', err);
    return undefined;
  }
}

/** Workspace JSON files that look like circuit graphs (checked fully when opened). */
async function workspaceCircuitFiles(): Promise<vscode.Uri[]> {
  const found = await vscode.workspace.findFiles('**/*.json', '**/{node_modules,.git,.e2e,.vscode}/**', 300);
  const out: vscode.Uri[] = [];
  for (const uri of found) {
    try {
      const stat = await fs.stat(uri.fsPath);
      if (stat.size > 64 << 20) continue;
      const head = (await fs.readFile(uri.fsPath, 'utf8')).slice(0, 4096);
      if (/"version"\s*:\s*1/.test(head) && /"granularity"\s*:/.test(head) && /"nodes"\s*:/.test(head)) out.push(uri);
    } catch {
      /* unreadable: not offered */
    }
  }
  return out.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
}

function asShown(saved: SavedCircuit): ShownCircuit {
  return { graph: saved.graph, title: saved.name, file: saved.file };
}

export function createCommands(ctx: Ctx, services: Services): Record<CommandId, Cmd> {
  const attribute = async (target?: TargetChoice) => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('Circuit Lens: open a file and select a prompt (or put the cursor on its line) to attribute it.');
      return undefined;
    }
    const prompt = promptOf(editor);
    if (!prompt) {
      void vscode.window.showInformationMessage('Circuit Lens: the selection (or current line) is empty.');
      return undefined;
    }
    const choice = target ?? ctx.config.target;
    const tokens = await askTarget(ctx, choice);
    if (!tokens) return undefined;
    const model = await ctx.ensureModel();
    if (!model) return undefined;
    const doc = editor.document;
    const version = doc.version;
    // The setting's enum is COMPOSITES (package.json, checked by test/unit/vocabulary.test.ts).
    const mode = ctx.config.mode ?? COMPOSITES[0]!;
    const result = await ctx.runJob('Attributing prompt', (opts) => ctx.client.attributePrompt({ text: prompt.text, mode, target: choice, ...tokens, topNext: 5 }, opts));
    if (!result) return undefined;
    if (doc.version !== version) {
      void vscode.window.showWarningMessage('Circuit Lens: the document changed while attributing; run the command again.');
      return undefined;
    }
    ctx.log.info(`attributed ${result.tokens.length} tokens; target ${JSON.stringify(result.target.text)} = ${result.target.value}; token sum ${result.sums.token}`);
    const shown = vscode.window.visibleTextEditors.find((e) => e.document === doc) ?? editor;
    services.heatmap.show(shown, prompt.base, result);
    // The next step from one prompt's heatmap: its position-resolved graph (issue 15).
    void vscode.window
      .showInformationMessage(`Attributed ${JSON.stringify(result.target.text)} (${fmt(result.target.value)}) to ${result.tokens.length} tokens.`, OPEN_PROMPT_GRAPH)
      .then((action) => {
        if (action === OPEN_PROMPT_GRAPH) void openPromptGraph(ctx, { text: prompt.text, mode, target: choice, ...tokens });
      });
    // Returned for callers of the command (the in-host suite): what the heatmap shows.
    return result;
  };

  /**
   * The circuit a command works on: the argument (a saved circuit, a file), else the panel's,
   * else the last one shown, else one the user picks (saved circuits, circuit files in the
   * workspace, or any file).
   */
  const pickCircuit = async (arg: unknown, preferShown: boolean): Promise<ShownCircuit | undefined> => {
    if (isSaved(arg)) return asShown(arg);
    if (arg instanceof vscode.Uri) return readCircuitFile(ctx, arg.fsPath);
    if (typeof arg === 'string') return readCircuitFile(ctx, arg);
    if (preferShown) {
      const shown = CircuitPanel.current?.circuit ?? ctx.currentCircuit;
      if (shown) return shown;
    }
    const saved = await services.store.list();
    const files = await workspaceCircuitFiles();
    const items: (vscode.QuickPickItem & { saved?: SavedCircuit; file?: string; browse?: boolean; discover?: boolean })[] = [];
    if (saved.length) {
      items.push({ label: 'Saved circuits', kind: vscode.QuickPickItemKind.Separator });
      for (const s of saved) items.push({ label: `$(type-hierarchy) ${s.name}`, description: `${s.graph.task.name} · ${s.graph.method.name} · ${s.graph.nodes.length} nodes`, saved: s });
    }
    if (files.length) {
      items.push({ label: 'Circuit files in the workspace', kind: vscode.QuickPickItemKind.Separator });
      for (const uri of files) items.push({ label: `$(file) ${vscode.workspace.asRelativePath(uri)}`, file: uri.fsPath });
    }
    items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
    items.push({ label: '$(folder-opened) Open Circuit File…', description: 'a circuit.json written by circuit-lens discover or saved here', browse: true });
    if (!saved.length) items.push({ label: '$(type-hierarchy) Discover Circuit…', discover: true });
    const pick = await vscode.window.showQuickPick(items, { title: 'Circuit Lens: choose a circuit', matchOnDescription: true });
    if (!pick) return undefined;
    if (pick.saved) return asShown(pick.saved);
    if (pick.discover) {
      await vscode.commands.executeCommand(CommandId.DiscoverCircuit);
      return undefined;
    }
    let file = pick.file;
    if (pick.browse) {
      const uris = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectMany: false, filters: { 'Circuit graph JSON': ['json'] }, title: 'Circuit Lens: open a circuit file', ...defaultUriOption('') });
      file = uris?.[0]?.fsPath;
    }
    return file ? readCircuitFile(ctx, file) : undefined;
  };

  return {
    [CommandId.LoadModel]: async () => {
      const items: (vscode.QuickPickItem & { folder?: string; action?: 'browse' | 'embedded' })[] = [
        { label: '$(folder-opened) Browse…', description: 'a folder with config.json, model.onnx / model.safetensors and tokenizer.json', action: 'browse' },
        { label: '$(beaker) Embedded demo model', description: 'tiny-ioi-gpt2', action: 'embedded' },
      ];
      const recent = ctx.recentModels;
      if (recent.length) {
        items.push({ label: 'Recent', kind: vscode.QuickPickItemKind.Separator });
        for (const folder of recent) items.push({ label: `$(history) ${path.basename(folder)}`, description: folder, folder });
      }
      const pick = await vscode.window.showQuickPick(items, { title: 'Circuit Lens: Load Model', placeHolder: 'Choose a model folder' });
      if (!pick) return undefined;
      if (pick.action === 'embedded') return ctx.loadModel(ctx.embeddedModelPath);
      let folder = pick.folder;
      if (pick.action === 'browse') {
        const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Load Model', title: 'Circuit Lens: choose a model folder' });
        folder = uris?.[0]?.fsPath;
      }
      return folder ? ctx.loadModel(folder) : undefined;
    },
    [CommandId.UseEmbeddedModel]: () => ctx.loadModel(ctx.embeddedModelPath),
    [CommandId.Attribute]: () => attribute(),
    [CommandId.AttributeFromMenu]: () => attribute(),
    [CommandId.ClearHeatmap]: (uri?: unknown) => services.heatmap.clear(uri instanceof vscode.Uri ? uri : vscode.window.activeTextEditor?.document.uri),
    /**
     * Discover Circuit…: the settings menu, or — run programmatically with the request's options
     * (`{ task: 'ioi', n: 16 }`, checked by the worker protocol's schema) — no pickers at all.
     * Returns the circuit graph (as saved).
     */
    [CommandId.DiscoverCircuit]: async (args?: unknown) => {
      let params: EngineParams<'discover'>;
      if (isObject(args)) {
        try {
          params = parseWith(Engine.discover.params, args, 1 << 20, 'options');
        } catch (err) {
          void ctx.reportError('Discover Circuit', err);
          return undefined;
        }
      } else {
        const choices = await chooseDiscovery(ctx);
        if (!choices) return undefined;
        params = discoverParams(ctx, choices);
      }
      if (!(await ctx.ensureModel())) return undefined;
      const request = params;
      const graph = await ctx.runJob(`Discovering a circuit for ${taskLabel(request.task)}`, (opts) => ctx.client.discover(request, opts));
      if (!graph) return undefined;
      const saved = await services.store.save(graph);
      ctx.log.info(`discovered ${saved.name}: ${graph.nodes.length} nodes, ${graph.edges.length} edges; faithfulness ${graph.metrics?.faithfulness ?? '—'}; saved to ${saved.file}`);
      CircuitPanel.show(ctx, asShown(saved), panelHandlers(ctx));
      return graph;
    },
    [CommandId.OpenGraph]: async (arg) => {
      const circuit = await pickCircuit(arg, false);
      if (!circuit) return;
      CircuitPanel.show(ctx, circuit, panelHandlers(ctx));
    },
    /**
     * Open Prompt Graph: the position-resolved attribution graph of the selection (or current
     * line), or — run programmatically with the request's options (`{ text, target: 'top1' }`,
     * checked by the worker protocol's schema) — of that prompt. Returns the graph.
     */
    [CommandId.OpenPromptGraph]: async (args?: unknown) => {
      // From the editor's context menu the argument is the document's URI: the selection is the prompt.
      if (isObject(args) && !(args instanceof vscode.Uri)) {
        let params: EngineParams<'promptGraph'>;
        try {
          params = parseWith(Engine.promptGraph.params, { mode: ctx.config.mode ?? COMPOSITES[0]!, target: 'top1', ...args }, 1 << 20, 'options');
        } catch (err) {
          void ctx.reportError('Open Prompt Graph', err);
          return undefined;
        }
        return openPromptGraph(ctx, params);
      }
      const editor = vscode.window.activeTextEditor;
      const prompt = editor && promptOf(editor);
      if (!prompt) {
        void vscode.window.showInformationMessage('Circuit Lens: select a prompt (or put the cursor on its line) to open its prompt graph.');
        return undefined;
      }
      const choice = ctx.config.target;
      const tokens = await askTarget(ctx, choice);
      if (!tokens) return undefined;
      return openPromptGraph(ctx, { text: prompt.text, mode: ctx.config.mode ?? COMPOSITES[0]!, target: choice, ...tokens });
    },
    [CommandId.VerifyCircuit]: async (arg) => {
      const panel = CircuitPanel.current;
      let result: VerificationSummary | undefined;
      let circuit: ShownCircuit | undefined;
      if (panel?.circuit && arg === undefined) {
        circuit = panel.circuit;
        result = await panel.verify();
      } else {
        circuit = await pickCircuit(arg, true);
        if (!circuit) return;
        result = await verify(ctx, circuit, []);
        if (result && panel?.circuit === circuit) panel.setVerification(result);
      }
      if (result) {
        void vscode.window.showInformationMessage(
          `${circuit.title}: ${result.metric} full ${result.full.toFixed(3)}, circuit ${result.circuit.toFixed(3)}, faithfulness ${result.faithfulness.toFixed(3)}`,
        );
      }
    },
    [CommandId.PruneModel]: (args?: unknown) => pruneModel(ctx, isObject(args) ? (args as PruneArgs) : {}),
    [CommandId.CorrectModel]: (args?: unknown) => correctModel(ctx, isObject(args) ? (args as CorrectArgs) : {}),
    [CommandId.PruneCurve]: (args?: unknown) => pruneCurveCommand(ctx, isObject(args) ? (args as PruneCurveArgs) : {}),
    [CommandId.ShowRun]: async (id?: unknown) => {
      if (typeof id === 'string') return showRuns(ctx, [id]);
      if (ctx.runs.length === 0) {
        void vscode.window.showInformationMessage('Circuit Lens: no pruning or correction run in this session yet (Prune Model…, Correct Model…).');
        return;
      }
      const picks = await vscode.window.showQuickPick(
        ctx.runs.map((r) => ({ label: r.title, description: describeRun(r), id: r.id })),
        { title: 'Circuit Lens: runs to show', canPickMany: true },
      );
      if (picks?.length) showRuns(ctx, picks.map((p) => p.id));
    },
    [CommandId.ExportCircuit]: async (arg) => {
      const circuit = await pickCircuit(arg, true);
      if (!circuit) return;
      const format = await vscode.window.showQuickPick(
        [
          { label: 'Circuit Lens JSON', description: 'what circuit-lens discover writes: reopen here, verify with the CLI', format: 'circuit-lens' as const },
          { label: 'EAP-IG / MIB circuit JSON', description: 'benchmark with EAP-IG tooling', format: 'eap-ig' as const },
          { label: 'Neuronpedia attribution graph', description: 'circuit-tracer JSON schema', format: 'neuronpedia' as const },
        ],
        { title: 'Circuit Lens: Export Circuit' },
      );
      if (format) await exportToFile(ctx, circuit, format.format);
    },
    [CommandId.ExportModel]: (folder?: unknown) => exportModel(ctx, typeof folder === 'string' ? folder : undefined),
    [CommandId.DeleteCircuit]: async (arg) => {
      if (isSaved(arg)) await services.store.remove(arg);
    },
    [CommandId.SelectExecutionProvider]: async () => {
      const current = ctx.config.executionProvider;
      const pick = await vscode.window.showQuickPick(
        EXECUTION_PROVIDERS.map((ep) => ({ label: ep, description: `${EXECUTION_PROVIDER_DOCS[ep]}${ep === current ? ' (current)' : ''}`, ep })),
        { title: 'Circuit Lens: Select Execution Provider' },
      );
      if (!pick) return;
      await ctx.config.setExecutionProvider(pick.ep);
      await ctx.reloadModel();
    },
    [CommandId.ShowLog]: () => ctx.log.show(),
    [CommandId.RunTestJob]: async (ms?: unknown) => {
      if (!ctx.config.testHooks) {
        void vscode.window.showInformationMessage('Circuit Lens: enable circuitLens.developer.testHooks to run the engine test job.');
        return;
      }
      const duration = typeof ms === 'number' ? ms : 60000;
      await ctx.runJob('Engine test job', (opts) => ctx.client.sleep({ ms: duration, cooperative: false }, opts));
    },
  };
}
