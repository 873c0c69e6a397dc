/**
 * Every command of Circuit Lens (category "Circuit Lens"), built by one factory so each id has
 * exactly one implementation and works — or says why not — whether or not a model is loaded.
 */
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ExecutionProviderSetting } from '../engine/api';
import { type Circuit, type CircuitMetrics, type EngineResult, EXECUTION_PROVIDERS, PRUNE_METHODS, type PruneMethod, type TargetChoice } from '../protocol';
import type { Ctx } from './ctx';
import { exportCircuit, type ExportFormat, isPruningRecord, type ModelDims } from './exporters';
import type { Heatmap } from './heatmap';
import { CircuitPanel, type PanelHandlers } from './panel';
import type { CircuitStore, SavedCircuit } from './views';

/** Command ids, as contributed in package.json. */
export const enum CommandId {
  LoadModel = 'circuitLens.loadModel',
  UseEmbeddedModel = 'circuitLens.useEmbeddedModel',
  Attribute = 'circuitLens.attribute',
  AttributeFromMenu = 'circuitLens.attributeSelection',
  ClearHeatmap = 'circuitLens.clearHeatmap',
  DiscoverCircuit = 'circuitLens.discoverCircuit',
  OpenGraph = 'circuitLens.openGraph',
  VerifyCircuit = 'circuitLens.verifyCircuit',
  PruneModel = 'circuitLens.pruneModel',
  CorrectModel = 'circuitLens.correctModel',
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

export function panelHandlers(ctx: Ctx): PanelHandlers {
  return {
    verify: (circuit, ablate) => verify(ctx, circuit, ablate),
    export: (circuit, format, nodes) => exportToFile(ctx, circuit, format, nodes),
    exportPng: async (circuit, dataUrl) => {
      const uri = await vscode.window.showSaveDialog({ title: 'Export Circuit Graph Image', defaultUri: defaultUri(`${circuit.id}.png`), filters: { 'PNG image': ['png'] } });
      if (!uri) return;
      await vscode.workspace.fs.writeFile(uri, Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64'));
      ctx.log.info(`exported graph image to ${uri.fsPath}`);
    },
  };
}

function defaultUri(name: string): vscode.Uri | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? vscode.Uri.joinPath(folder.uri, name) : undefined;
}

async function verify(ctx: Ctx, circuit: Circuit, ablate: string[]): Promise<CircuitMetrics | undefined> {
  if (!(await ctx.ensureModel())) return undefined;
  const task = circuit.task === 'greater-than' ? 'greater-than' : 'ioi';
  const nodes = circuit.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').map((n) => n.id);
  const metrics = await ctx.runJob(`Verifying circuit ${circuit.title}`, (opts) => ctx.client.verify({ task, nodes, ablate, prompts: ctx.config.prompts }, opts));
  if (metrics) {
    ctx.log.info(`verify ${circuit.id}: full ${metrics.full}, circuit ${metrics.circuit}, ablated ${metrics.ablated ?? '—'}, faithfulness ${metrics.faithfulness}`);
    const updated = { ...circuit, metrics };
    if (ctx.currentCircuit?.id === circuit.id) ctx.setCircuit(updated);
  }
  return metrics;
}

/** Default prompts for a Neuronpedia graph of a built-in task's circuit. */
const TASK_PROMPTS: Record<string, string> = {
  ioi: 'When Mary and John went to the store, John gave a drink to',
  'greater-than': 'The war lasted from the year 1732 to the year 17',
};

/**
 * Model widths for the export: the circuit's own, or the loaded model's when it has the
 * circuit's shape (circuits saved by older builds do not record them).
 */
async function dimsFor(ctx: Ctx, circuit: Circuit, needModel: boolean): Promise<ModelDims | undefined> {
  const model = needModel || circuit.dModel === undefined || circuit.dMlp === undefined ? await ctx.ensureModel() : ctx.model ?? undefined;
  if (needModel && !model) return undefined;
  if (model && (model.info.layers !== circuit.layers || model.info.heads !== circuit.heads) && (needModel || circuit.dModel === undefined)) {
    await ctx.showError(
      `Circuit Lens: the circuit ${circuit.title} has ${circuit.layers} layers × ${circuit.heads} heads, the loaded model ${model.info.layers} × ${model.info.heads}. Load the model it was discovered on (${circuit.model}).`,
    );
    return undefined;
  }
  const dModel = circuit.dModel ?? model?.info.dModel;
  const dMlp = circuit.dMlp ?? model?.info.dMlp;
  return dModel && dMlp ? { dModel, dMlp } : undefined;
}

async function exportToFile(ctx: Ctx, circuit: Circuit, format: ExportFormat, nodes?: string[]): Promise<void> {
  if (isPruningRecord(circuit)) {
    void vscode.window.showInformationMessage('Circuit Lens: a pruning run has no circuit to export; use Export Model… to write the pruned model.');
    return;
  }
  let prompt: { text: string; attribution: EngineResult<'attributePrompt'> } | undefined;
  if (format === 'neuronpedia') {
    const text = await vscode.window.showInputBox({
      title: 'Circuit Lens: Neuronpedia graph',
      prompt: 'A Neuronpedia graph shows the circuit on one prompt: its tokens become the input nodes and its top next token the logit node',
      value: circuit.prompt ?? TASK_PROMPTS[circuit.task] ?? '',
      validateInput: (v) => (v.trim() ? undefined : 'Enter a prompt'),
    });
    if (!text) return;
    const dims = await dimsFor(ctx, circuit, true);
    if (!dims) return;
    const mode = circuit.mode;
    const attribution = await ctx.runJob('Attributing the prompt for the Neuronpedia graph', (opts) => ctx.client.attributePrompt({ text, mode, target: 'top1', topNext: 1 }, opts));
    if (!attribution) return;
    prompt = { text, attribution };
  }
  const dims = await dimsFor(ctx, circuit, false);
  if (!dims) {
    void vscode.window.showInformationMessage('Circuit Lens: load the model this circuit was discovered on, then export again (its d_model is needed).');
    return;
  }
  const suffix = format === 'circuit-lens' ? 'circuit' : format;
  const uri = await vscode.window.showSaveDialog({
    title: 'Export Circuit',
    defaultUri: defaultUri(`${circuit.id}.${suffix}.json`),
    filters: { JSON: ['json'] },
  });
  if (!uri) return;
  let data: unknown;
  try {
    data = exportCircuit(circuit, format, dims, nodes, prompt);
  } catch (err) {
    await ctx.reportError('Export Circuit', err);
    return;
  }
  await vscode.workspace.fs.writeFile(uri, Buffer.from(JSON.stringify(data, null, 1)));
  ctx.log.info(`exported ${circuit.id} as ${format} to ${uri.fsPath}`);
  void vscode.window.showInformationMessage(`Circuit exported to ${path.basename(uri.fsPath)}`);
}

// ── pruning, correction, model export ──

const PRUNE_METHOD_INFO: Record<PruneMethod, string> = {
  attnlrp: 'AttnLRP weight relevance R_W = W ⊙ g̃_W on calibration text (SparC³)',
  'cp-lrp': 'CP-LRP weight relevance (gives q/k weights no relevance: prunes them first)',
  gradient: '|W ⊙ ∇W| on calibration text',
  wanda: '|W| · ‖X‖₂ of the layer inputs on calibration text (Wanda)',
  magnitude: '|W|, no calibration',
  random: 'seeded random scores (sanity baseline)',
};

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
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: false, canSelectMany: false, filters: opts.filters, title: opts.title, ...(defaultUri('') ? { defaultUri: defaultUri('')! } : {}) });
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

function fmtPpl(x: number): string {
  return Number.isFinite(x) ? (x >= 1000 ? x.toExponential(2) : x.toFixed(3)) : String(x);
}

/** Shows a pruning run's curve in the panel: on the circuit shown there, or on its own record. */
function showPruning(ctx: Ctx, r: EngineResult<'prune'>): void {
  const { curve, ...summary } = r;
  const shown = CircuitPanel.current?.circuit;
  const model = ctx.model?.info;
  const name = path.basename(model?.folder ?? 'model');
  const title = `Pruning: ${r.method} ${r.scope === 'rowwise' ? 'row-wise' : 'global'} ${(r.sparsity * 100).toFixed(0)} % · ${name}`;
  const circuit: Circuit =
    shown && !isPruningRecord(shown)
      ? { ...shown, sparsityCurve: curve, pruning: summary }
      : {
          id: `pruning-${r.method}-${name}-${Date.now().toString(36)}`,
          title,
          task: 'pruning',
          model: model?.folder ?? '',
          mode: ctx.config.mode,
          layers: model?.layers ?? 0,
          heads: model?.heads ?? 0,
          nodes: [],
          edges: [],
          sparsityCurve: curve,
          pruning: summary,
        };
  CircuitPanel.showCircuit(ctx, circuit, panelHandlers(ctx), 'charts');
  if (!isPruningRecord(circuit)) ctx.setCircuit(circuit);
}

async function pruneModel(ctx: Ctx, args: PruneArgs): Promise<EngineResult<'prune'> | undefined> {
  if (!(await ctx.ensureModel())) return undefined;
  let method = args.method;
  if (!method) {
    const lastMethod = ctx.extension.workspaceState.get<string>('circuitLens.lastPruneMethod');
    const order = [...PRUNE_METHODS].sort((a, b) => Number(b === lastMethod) - Number(a === lastMethod));
    const pick = await vscode.window.showQuickPick(
      order.map((m) => ({ label: m, description: PRUNE_METHOD_INFO[m], m })),
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
      prompt: `Fraction of the decoder-block linear weights to set to zero (${ctx.config.pruneScope === 'rowwise' ? 'the same fraction in every output row' : 'one global ranking'}; circuitLens.pruning.scope)`,
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
  const params = { method, sparsity, text, scope: ctx.config.pruneScope, windows: ctx.config.pruneWindows };
  const r = await ctx.runJob(`Pruning ${(sparsity * 100).toFixed(0)} % of the weights (${method})`, (opts) => ctx.client.prune(params, opts));
  if (!r) return undefined;
  ctx.log.info(`prune ${method}/${r.scope} ${r.sparsity}: ${r.prunedWeights} of ${r.totalWeights} weights; perplexity ${r.perplexityBefore} → ${r.perplexityAfter} on ${r.evalTokens} tokens of ${r.text}`);
  showPruning(ctx, r);
  void vscode.window
    .showInformationMessage(
      `Pruned ${(r.achievedSparsity * 100).toFixed(1)} % of the weights (${method}, ${r.scope}): perplexity ${fmtPpl(r.perplexityBefore)} → ${fmtPpl(r.perplexityAfter)}`,
      'Export Model…',
    )
    .then((a) => a && vscode.commands.executeCommand(CommandId.ExportModel));
  return r;
}

/** Arguments of Correct Model… when run programmatically. */
interface CorrectArgs {
  undesired?: string;
  general?: string;
  neurons?: number;
}

async function correctModel(ctx: Ctx, args: CorrectArgs): Promise<EngineResult<'correct'> | undefined> {
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
  const params = { undesired, general, neurons, mode: ctx.config.mode };
  const r = await ctx.runJob(`Correcting the model (${neurons} neurons)`, (opts) => ctx.client.correct(params, opts));
  if (!r) return undefined;
  const changes = Object.keys(r.before).map((k) => `${k.replace(/_/g, ' ')} ${fmtPpl(r.before[k]!)} → ${fmtPpl(r.after[k] ?? Number.NaN)}`);
  ctx.log.info(`correct: removed ${r.removed.join(', ')}; ${changes.join(', ')}`);
  void vscode.window
    .showInformationMessage(`Removed ${r.count} of ${r.totalComponents} MLP neurons: ${changes.join(', ')}`, 'Export Model…')
    .then((a) => a && vscode.commands.executeCommand(CommandId.ExportModel));
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
      defaultUri: defaultUri(`${path.basename(model.info.folder)}-edited`),
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

export function createCommands(ctx: Ctx, services: Services): Record<CommandId, Cmd> {
  const attribute = async (target?: TargetChoice) => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('Circuit Lens: open a file and select a prompt (or put the cursor on its line) to attribute it.');
      return;
    }
    const prompt = promptOf(editor);
    if (!prompt) {
      void vscode.window.showInformationMessage('Circuit Lens: the selection (or current line) is empty.');
      return;
    }
    const choice = target ?? ctx.config.target;
    const tokens = await askTarget(ctx, choice);
    if (!tokens) return;
    const model = await ctx.ensureModel();
    if (!model) return;
    const doc = editor.document;
    const version = doc.version;
    const result = await ctx.runJob('Attributing prompt', (opts) =>
      ctx.client.attributePrompt({ text: prompt.text, mode: ctx.config.mode, target: choice, ...tokens, topNext: 5 }, opts),
    );
    if (!result) return;
    if (doc.version !== version) {
      void vscode.window.showWarningMessage('Circuit Lens: the document changed while attributing; run the command again.');
      return;
    }
    ctx.log.info(`attributed ${result.tokens.length} tokens; target ${JSON.stringify(result.target.text)} = ${result.target.value}; token sum ${result.sums.token}`);
    const shown = vscode.window.visibleTextEditors.find((e) => e.document === doc) ?? editor;
    services.heatmap.show(shown, prompt.base, result);
  };

  const pickCircuit = async (arg: unknown): Promise<Circuit | undefined> => {
    if (arg && typeof arg === 'object' && 'circuit' in arg) return (arg as SavedCircuit).circuit;
    const shown = CircuitPanel.current?.circuit;
    if (shown && !isPruningRecord(shown)) return shown;
    if (ctx.currentCircuit && !isPruningRecord(ctx.currentCircuit)) return ctx.currentCircuit;
    const saved = await services.store.list();
    if (saved.length === 0) {
      const go = await vscode.window.showInformationMessage('Circuit Lens: no circuit yet. Discover one first.', 'Discover Circuit…');
      if (go) await vscode.commands.executeCommand(CommandId.DiscoverCircuit);
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      saved.map((s) => ({ label: s.circuit.title, description: `${s.circuit.nodes.length} nodes`, s })),
      { title: 'Circuit Lens: choose a saved circuit' },
    );
    return pick?.s.circuit;
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
    [CommandId.DiscoverCircuit]: async () => {
      const task = await vscode.window.showQuickPick(
        [
          { label: 'Indirect object identification (IOI)', description: '“When Mary and John went to the store, John gave a drink to” → Mary', task: 'ioi' as const },
          { label: 'Greater-than', description: '“The war lasted from the year 1732 to the year 17” → 33..99', task: 'greater-than' as const },
        ],
        { title: 'Circuit Lens: Discover Circuit', placeHolder: 'Which behaviour?' },
      );
      if (!task) return;
      if (!(await ctx.ensureModel())) return;
      const circuit = await ctx.runJob(`Discovering the ${task.task.toUpperCase()} circuit`, (opts) =>
        ctx.client.discover(
          { task: task.task, mode: ctx.config.mode, prompts: ctx.config.prompts, maxNodes: ctx.config.maxNodes, maxEdges: ctx.config.maxEdges, threshold: ctx.config.threshold },
          opts,
        ),
      );
      if (!circuit) return;
      ctx.setCircuit(circuit);
      await services.store.save(circuit);
      ctx.log.info(`discovered ${circuit.id}: ${circuit.nodes.length} nodes, ${circuit.edges.length} edges`);
      CircuitPanel.show(ctx, circuit, panelHandlers(ctx));
    },
    [CommandId.OpenGraph]: async (arg) => {
      const circuit = await pickCircuit(arg);
      if (!circuit) return;
      ctx.setCircuit(circuit);
      CircuitPanel.show(ctx, circuit, panelHandlers(ctx));
    },
    [CommandId.VerifyCircuit]: async (arg) => {
      const panel = CircuitPanel.current;
      if (panel?.circuit && !isPruningRecord(panel.circuit) && !(arg && typeof arg === 'object' && 'circuit' in arg)) {
        await panel.verify();
        return;
      }
      const circuit = await pickCircuit(arg);
      if (!circuit) return;
      const metrics = await verify(ctx, circuit, []);
      if (metrics) {
        void vscode.window.showInformationMessage(
          `${circuit.title}: ${metrics.metric} full ${metrics.full.toFixed(3)}, circuit ${metrics.circuit.toFixed(3)}, faithfulness ${metrics.faithfulness.toFixed(3)}`,
        );
      }
    },
    [CommandId.PruneModel]: (args?: unknown) => pruneModel(ctx, isObject(args) ? (args as PruneArgs) : {}),
    [CommandId.CorrectModel]: (args?: unknown) => correctModel(ctx, isObject(args) ? (args as CorrectArgs) : {}),
    [CommandId.ExportCircuit]: async (arg) => {
      const circuit = await pickCircuit(arg);
      if (!circuit) return;
      const format = await vscode.window.showQuickPick(
        [
          { label: 'Circuit Lens JSON', description: 'reopen in Circuit Lens', format: 'circuit-lens' as const },
          { label: 'EAP-IG / MIB circuit JSON', description: 'benchmark with EAP-IG tooling', format: 'eap-ig' as const },
          { label: 'Neuronpedia attribution graph', description: 'circuit-tracer JSON schema', format: 'neuronpedia' as const },
        ],
        { title: 'Circuit Lens: Export Circuit' },
      );
      if (format) await exportToFile(ctx, circuit, format.format, undefined);
    },
    [CommandId.ExportModel]: (folder?: unknown) => exportModel(ctx, typeof folder === 'string' ? folder : undefined),
    [CommandId.DeleteCircuit]: async (arg) => {
      if (arg && typeof arg === 'object' && 'file' in arg) await services.store.remove(arg as SavedCircuit);
    },
    [CommandId.SelectExecutionProvider]: async () => {
      const descriptions: Record<ExecutionProviderSetting, string> = {
        auto: 'CUDA or WebGPU when available, else CPU',
        cpu: 'always available',
        cuda: 'NVIDIA GPUs on Linux x64 (needs the CUDA 12 runtime)',
        webgpu: 'experimental',
      };
      const current = ctx.config.executionProvider;
      const pick = await vscode.window.showQuickPick(
        EXECUTION_PROVIDERS.map((ep) => ({ label: ep, description: `${descriptions[ep]}${ep === current ? ' (current)' : ''}`, ep })),
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

/** Writes a circuit JSON next to the workspace (used by tests and the walkthrough). */
export async function writeJson(file: string, data: unknown): Promise<void> {
  await fs.writeFile(file, JSON.stringify(data, null, 1));
}
