/**
 * The extension's context object (rust-analyzer's `Ctx`): settings, the log, the engine client,
 * the loaded model and the helpers every command uses — running a job with progress and Cancel,
 * reporting errors with a "Show Log" action, and making sure a model is loaded (with consent in
 * untrusted workspaces).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineClient, EngineError, type JobOptions } from '../worker/client';
import type { CircuitGraph } from '../circuits/discovery/graph';
import type { LoadedModel, Run } from '../protocol/shapes';
import type { EngineParams, Progress } from '../protocol/worker';
import type { ExecutionProviderSetting } from '../vocabulary';
import { Config } from './config';

/** A circuit as the extension shows it: the CLI's graph JSON and a name for it. */
export interface ShownCircuit {
  readonly graph: CircuitGraph;
  /** Its saved name, or the file it was opened from. */
  readonly title: string;
  /** The file it was read from or saved to, when there is one. */
  readonly file?: string;
}

const RECENT_KEY = 'circuitLens.recentModels';
const MAX_RECENT = 8;

export type Job<T> = (opts: Required<Pick<JobOptions, 'signal' | 'onProgress'>>, progress: vscode.Progress<{ message?: string; increment?: number }>) => Promise<T>;

export class Ctx implements vscode.Disposable {
  readonly config = new Config();
  readonly log: vscode.LogOutputChannel;
  readonly client: EngineClient;
  private readonly disposables: vscode.Disposable[] = [];
  private loaded: LoadedModel | null = null;
  private loading: Promise<LoadedModel> | null = null;
  private readonly modelEmitter = new vscode.EventEmitter<LoadedModel | null>();
  /** Fires when a model is loaded or unloaded. */
  readonly onDidChangeModel = this.modelEmitter.event;
  /** The circuit most recently discovered or opened (for Verify/Export without a panel). */
  currentCircuit: ShownCircuit | null = null;
  private readonly circuitEmitter = new vscode.EventEmitter<ShownCircuit | null>();
  readonly onDidChangeCircuit = this.circuitEmitter.event;
  /** Pruning and correction runs of this session, newest first (the Runs view, the panel's charts). */
  private runList: Run[] = [];
  private readonly runsEmitter = new vscode.EventEmitter<readonly Run[]>();
  readonly onDidChangeRuns = this.runsEmitter.event;
  /** Execution providers the user asked for and did not get, already reported (once each). */
  private readonly reportedFallbacks = new Set<string>();
  private readonly status: vscode.StatusBarItem;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('Circuit Lens', { log: true });
    this.client = new EngineClient({
      workerPath: path.join(extension.extensionPath, 'dist', 'worker.js'),
      testHooks: this.config.testHooks,
      log: (level, message) => this.log[level](message),
    });
    this.status = vscode.window.createStatusBarItem('circuitLens.model', vscode.StatusBarAlignment.Left, 10);
    this.status.name = 'Circuit Lens Model';
    this.status.command = 'circuitLens.loadModel';
    this.disposables.push(
      this.log,
      this.status,
      this.modelEmitter,
      this.circuitEmitter,
      this.runsEmitter,
      this.client.onDidDie((err) => {
        void this.showError(`The Circuit Lens engine stopped: ${err.message}. It restarts on the next command.`);
      }),
    );
    this.updateStatus();
  }

  get model(): LoadedModel | null {
    return this.loaded;
  }

  get embeddedModelPath(): string {
    return path.join(this.extension.extensionPath, 'models', 'tiny-ioi-gpt2');
  }

  setCircuit(circuit: ShownCircuit | null): void {
    this.currentCircuit = circuit;
    this.circuitEmitter.fire(circuit);
  }

  get runs(): readonly Run[] {
    return this.runList;
  }

  addRun(run: Run): void {
    this.runList = [run, ...this.runList.filter((r) => r.id !== run.id)];
    this.runsEmitter.fire(this.runList);
  }

  removeRun(id: string): void {
    this.runList = this.runList.filter((r) => r.id !== id);
    this.runsEmitter.fire(this.runList);
  }

  push(...disposables: vscode.Disposable[]): void {
    this.disposables.push(...disposables);
  }

  /** Recently loaded model folders, newest first. */
  get recentModels(): string[] {
    const v = this.extension.globalState.get<unknown>(RECENT_KEY);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  }

  private async remember(folder: string): Promise<void> {
    if (folder === this.embeddedModelPath) return;
    const next = [folder, ...this.recentModels.filter((f) => f !== folder)].slice(0, MAX_RECENT);
    await this.extension.globalState.update(RECENT_KEY, next);
  }

  /**
   * Runs an engine job under `window.withProgress` with a Cancel button. Cancellation and errors
   * are reported here; the returned promise resolves to undefined when the job did not finish.
   */
  async runJob<T>(title: string, job: Job<T>): Promise<T | undefined> {
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | { ok: false; cancelled: true }> => {
        const controller = new AbortController();
        const sub = token.onCancellationRequested(() => {
          this.log.info(`${title}: cancel requested`);
          controller.abort();
        });
        let last = 0;
        const onProgress = (p: Progress) => {
          const increment = p.fraction !== undefined ? Math.max(0, p.fraction * 100 - last) : undefined;
          if (p.fraction !== undefined) last = p.fraction * 100;
          progress.report({ ...(p.message !== undefined ? { message: p.message } : {}), ...(increment !== undefined ? { increment } : {}) });
        };
        const started = Date.now();
        try {
          const value = await job({ signal: controller.signal, onProgress }, progress);
          this.log.info(`${title}: done in ${Date.now() - started} ms`);
          return { ok: true, value };
        } catch (error) {
          if (error instanceof EngineError && error.code === 'cancelled') return { ok: false, cancelled: true };
          return { ok: false, error };
        } finally {
          sub.dispose();
        }
      },
    );
    if (outcome.ok) return outcome.value;
    // The progress notification is closed by now: the error toast does not keep it open.
    if ('cancelled' in outcome) {
      this.log.info(`${title}: cancelled`);
      void vscode.window.setStatusBarMessage(`Circuit Lens: ${title} cancelled`, 4000);
    } else {
      void this.reportError(title, outcome.error);
    }
    return undefined;
  }

  /** Logs an error (with the worker's stack, when there is one) and shows it with "Show Log". */
  async reportError(what: string, err: unknown): Promise<void> {
    const e = err instanceof Error ? err : new Error(String(err));
    this.log.error(`${what}: ${e.message}`);
    if (err instanceof EngineError && err.remoteStack) this.log.debug(err.remoteStack);
    else if (e.stack) this.log.debug(e.stack);
    await this.showError(`${what} failed: ${e.message}`);
  }

  async showError(message: string): Promise<void> {
    const action = await vscode.window.showErrorMessage(message, 'Show Log');
    if (action === 'Show Log') this.log.show(true);
  }

  /**
   * The loaded model, loading one first if needed: the `circuitLens.model.path` setting, or
   * what the user picks. Undefined when the user declines.
   */
  async ensureModel(): Promise<LoadedModel | undefined> {
    if (this.loaded) return this.loaded;
    if (this.loading) return this.loading.catch(() => undefined);
    const configured = this.config.modelPath;
    if (configured) return this.loadModel(configured);
    const pick = await vscode.window.showQuickPick(
      [
        { label: '$(beaker) Use Embedded Demo Model', description: 'tiny-ioi-gpt2', id: 'embedded' },
        { label: '$(folder-opened) Load Model Folder…', id: 'browse' },
      ],
      { title: 'Circuit Lens: no model is loaded', placeHolder: 'Choose a model to run this command' },
    );
    if (!pick) return undefined;
    if (pick.id === 'embedded') return this.loadModel(this.embeddedModelPath);
    return vscode.commands.executeCommand<LoadedModel | undefined>('circuitLens.loadModel');
  }

  /** The load request for `folder`: the engine settings, and the compiled-graph cache in the extension's global storage. */
  private loadParams(folder: string, executionProvider: ExecutionProviderSetting): EngineParams<'load'> {
    return {
      folder,
      executionProvider,
      weightPrecision: this.config.weightPrecision,
      ...(this.config.threads !== undefined ? { threads: this.config.threads } : {}),
      ...(this.config.memoryShare !== undefined ? { memoryShare: this.config.memoryShare } : {}),
      cacheDir: path.join(this.extension.globalStorageUri.fsPath, 'graph-cache'),
    };
  }

  /** Loads `folder` into the engine (asking for consent when it lies in an untrusted workspace). */
  async loadModel(folder: string): Promise<LoadedModel | undefined> {
    const embedded = path.resolve(folder) === path.resolve(this.embeddedModelPath);
    if (embedded && !fs.existsSync(path.join(folder, 'config.json'))) {
      await this.showError('The embedded demo model is missing from this installation of Circuit Lens.');
      return undefined;
    }
    if (!embedded && !(await this.consentToLoad(folder))) return undefined;
    const name = path.basename(folder);
    const previous = this.loaded;
    const requested = this.config.executionProvider;
    const params = this.loadParams(folder, requested);
    const run = this.runJob(`Loading model ${name}`, (opts) => this.client.load(params, opts));
    this.loading = run.then((m) => {
      if (!m) throw new Error('not loaded');
      return m;
    });
    this.loading.catch(() => undefined);
    try {
      const model = await run;
      if (!model) {
        // A failed load must not leave the editor without the model it had, nor showing one the
        // engine no longer holds (the worker drops its model before loading the next).
        await this.restoreAfterFailedLoad(previous);
        return undefined;
      }
      this.setLoaded(model);
      this.log.info(`loaded ${folder}: ${model.info.architecture}, ${model.info.layers} layers × ${model.info.heads} heads, ${model.info.parameters} parameters on ${model.info.executionProvider}`);
      this.reportFallback(requested, model);
      await this.remember(folder);
      return model;
    } finally {
      this.loading = null;
    }
  }

  private setLoaded(model: LoadedModel | null): void {
    this.loaded = model;
    void vscode.commands.executeCommand('setContext', 'circuitLens.modelLoaded', model !== null);
    this.updateStatus();
    this.modelEmitter.fire(model);
  }

  /**
   * After a failed load: the engine holds the previous model again (reloaded if it had to drop
   * it), and the status bar, views and context key show what the engine really holds.
   */
  private async restoreAfterFailedLoad(previous: LoadedModel | null): Promise<void> {
    let held: LoadedModel | null = null;
    try {
      held = await this.client.info();
    } catch (err) {
      this.log.warn(`could not ask the engine which model it holds: ${(err as Error).message}`);
    }
    if (previous && held?.info.folder !== previous.info.folder) {
      const folder = previous.info.folder;
      this.log.info(`the failed load dropped ${folder}; loading it again`);
      const params = this.loadParams(folder, this.config.executionProvider);
      held = (await this.runJob(`Restoring model ${path.basename(folder)}`, (opts) => this.client.load(params, opts))) ?? null;
    }
    if ((held?.info.folder ?? null) !== (this.loaded?.info.folder ?? null) || held === null) this.setLoaded(held);
  }

  /** A GPU asked for and not given is said once per provider and session (the log has the reason). */
  private reportFallback(requested: string, model: LoadedModel): void {
    const got = model.info.executionProvider;
    if (requested === 'auto' || requested === 'cpu' || got === requested || this.reportedFallbacks.has(requested)) return;
    this.reportedFallbacks.add(requested);
    void vscode.window
      .showWarningMessage(`Circuit Lens: ${requested} is not available here; the model runs on the ${got.toUpperCase()}. The log says why.`, 'Show Log')
      .then((a) => a && this.log.show(true));
  }

  /** Reloads the current model (after an execution-provider or thread change). */
  async reloadModel(): Promise<void> {
    if (this.loaded) await this.loadModel(this.loaded.info.folder);
  }

  private async consentToLoad(folder: string): Promise<boolean> {
    if (vscode.workspace.isTrusted) return true;
    const inWorkspace = (vscode.workspace.workspaceFolders ?? []).some((wf) => {
      const rel = path.relative(wf.uri.fsPath, folder);
      return !rel.startsWith('..') && !path.isAbsolute(rel);
    });
    const where = inWorkspace ? 'comes from this untrusted workspace' : 'was chosen while this workspace is untrusted';
    const answer = await vscode.window.showWarningMessage(
      `The model folder ${folder} ${where}. Its ONNX graph, weights and tokenizer are parsed by native code. Load it anyway?`,
      { modal: true },
      'Load Model',
    );
    this.log.info(`consent to load ${folder} in an untrusted workspace: ${answer === 'Load Model' ? 'given' : 'refused'}`);
    return answer === 'Load Model';
  }

  private updateStatus(): void {
    const m = this.loaded;
    if (m) {
      this.status.text = `$(circuit-board) ${path.basename(m.info.folder)}`;
      this.status.tooltip = `Circuit Lens: ${m.info.architecture} (${m.info.layers} layers, ${m.info.heads} heads) on ${m.info.executionProvider}\n${m.info.folder}\nClick to load another model`;
    } else {
      this.status.text = '$(circuit-board) No model';
      this.status.tooltip = 'Circuit Lens: click to load a model';
    }
    this.status.show();
  }

  dispose(): void {
    void this.client.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
