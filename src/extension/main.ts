/**
 * Extension entry: builds the context, registers commands, views (model, saved circuits, runs),
 * the heatmap providers and the panel serializer. Nothing else happens here — no model is loaded until a command needs one.
 */
import * as vscode from 'vscode';
import { createCommands, panelHandlers } from './commands';
import { Ctx } from './ctx';
import { Heatmap } from './heatmap';
import { CircuitPanelSerializer, PANEL_VIEW_TYPE } from './panel';
import { CircuitStore, ModelTree, RunsTree } from './views';

let ctx: Ctx | undefined;

export function activate(context: vscode.ExtensionContext): void {
  try {
    ctx = new Ctx(context);
    const c = ctx;
    const heatmap = new Heatmap(() => c.config.codeLens);
    const store = new CircuitStore(c);
    const commands = createCommands(c, { heatmap, store });
    for (const [id, run] of Object.entries(commands)) {
      c.push(vscode.commands.registerCommand(id, run));
    }
    c.push(
      heatmap,
      vscode.languages.registerHoverProvider('*', heatmap),
      vscode.languages.registerCodeLensProvider('*', heatmap),
      vscode.window.registerTreeDataProvider('circuitLens.model', new ModelTree(c)),
      vscode.window.registerTreeDataProvider('circuitLens.circuits', store),
      vscode.window.registerTreeDataProvider('circuitLens.runs', new RunsTree(c)),
      vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, new CircuitPanelSerializer(c, panelHandlers(c))),
      vscode.workspace.onDidGrantWorkspaceTrust(() => c.log.info('workspace trusted: workspace model settings now apply')),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (c.config.affects(e, 'engine.executionProvider') || c.config.affects(e, 'engine.threads') || c.config.affects(e, 'engine.weightPrecision')) {
          void vscode.window.showInformationMessage('Circuit Lens: engine settings changed.', 'Reload Model').then((a) => a && c.reloadModel());
        }
      }),
    );
    void vscode.commands.executeCommand('setContext', 'circuitLens.modelLoaded', false);
    c.log.info(`Circuit Lens activated (${context.extension.packageJSON.version as string}); commands: ${Object.keys(commands).length}`);
  } catch (err) {
    // VS Code does not show a notification when activation fails; do it here.
    void vscode.window.showErrorMessage(`Circuit Lens failed to activate: ${(err as Error).message}`);
    throw err;
  }
}

export function deactivate(): void {
  ctx?.dispose();
  ctx = undefined;
}
