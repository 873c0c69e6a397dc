/**
 * Every command of Circuit Lens (category "Circuit Lens"), built by one factory so each id has
 * exactly one implementation and works — or says why not — whether or not a model is loaded.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ExecutionProviderSetting } from '../engine/api';
import { type Circuit, type CircuitMetrics, EXECUTION_PROVIDERS, type TargetChoice } from '../protocol';
import type { Ctx } from './ctx';
import { exportCircuit, type ExportFormat } from './exporters';
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

async function exportToFile(ctx: Ctx, circuit: Circuit, format: ExportFormat, nodes?: string[]): Promise<void> {
  const suffix = format === 'circuit-lens' ? 'circuit' : format;
  const uri = await vscode.window.showSaveDialog({
    title: 'Export Circuit',
    defaultUri: defaultUri(`${circuit.id}.${suffix}.json`),
    filters: { JSON: ['json'] },
  });
  if (!uri) return;
  const data = exportCircuit(circuit, format, nodes);
  await vscode.workspace.fs.writeFile(uri, Buffer.from(JSON.stringify(data, null, 1)));
  ctx.log.info(`exported ${circuit.id} as ${format} to ${uri.fsPath}`);
  void vscode.window.showInformationMessage(`Circuit exported to ${path.basename(uri.fsPath)}`);
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
    if (CircuitPanel.current?.circuit) return CircuitPanel.current.circuit;
    if (ctx.currentCircuit) return ctx.currentCircuit;
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
      if (panel?.circuit && !(arg && typeof arg === 'object' && 'circuit' in arg)) {
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
    [CommandId.PruneModel]: async () => {
      const value = await vscode.window.showInputBox({
        title: 'Circuit Lens: Prune Model',
        prompt: 'Fraction of attention heads to prune, by relevance (0–1)',
        value: '0.25',
        validateInput: (v) => (/^(0(\.\d+)?|1(\.0+)?)$/.test(v.trim()) ? undefined : 'A number between 0 and 1'),
      });
      if (value === undefined) return;
      if (!(await ctx.ensureModel())) return;
      const r = await ctx.runJob('Pruning model', (opts) => ctx.client.prune({ sparsity: Number(value), target: 'heads', mode: ctx.config.mode }, opts));
      if (r) void vscode.window.showInformationMessage(`Pruned ${r.pruned} components: perplexity ${r.perplexityBefore.toFixed(2)} → ${r.perplexityAfter.toFixed(2)}`);
    },
    [CommandId.CorrectModel]: async () => {
      const behaviour = await vscode.window.showInputBox({
        title: 'Circuit Lens: Correct Model',
        prompt: 'Behaviour to remove (a task name such as "toxic", or a prompt file)',
        value: 'toxic',
      });
      if (!behaviour) return;
      if (!(await ctx.ensureModel())) return;
      const r = await ctx.runJob('Correcting model', (opts) => ctx.client.correct({ behaviour, mode: ctx.config.mode }, opts));
      if (r) void vscode.window.showInformationMessage(`Removed ${r.removed.length} components: behaviour ${r.before.toFixed(3)} → ${r.after.toFixed(3)}, perplexity ${r.perplexityBefore.toFixed(2)} → ${r.perplexityAfter.toFixed(2)}`);
    },
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
    [CommandId.ExportModel]: async () => {
      if (!(await ctx.ensureModel())) return;
      const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Export Here', title: 'Circuit Lens: export the (pruned) model to a folder' });
      const folder = uris?.[0]?.fsPath;
      if (!folder) return;
      const ablate = [...(CircuitPanel.current?.ablated ?? [])];
      const r = await ctx.runJob('Exporting model', (opts) => ctx.client.exportModel({ folder, ablate }, opts));
      if (r) void vscode.window.showInformationMessage(`Model exported to ${r.folder} (${r.files.length} files)`);
    },
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
