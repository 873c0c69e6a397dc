/**
 * The prompt graph panel, host side: one prompt's position-resolved attribution graph (the
 * graph `circuit-lens graph` writes, from the same pipeline) drawn by webview/promptGraph.ts.
 * The host keeps the authoritative state, replays it when the app (re)loads, validates every
 * message from the app, and runs "Ablate at this position & rerun" in the engine worker.
 */
import * as vscode from 'vscode';
import type { PromptAblationResult, PromptGraphWire } from '../protocol/promptGraph';
import { FromPromptPanel, fromPromptPanelMessages, MAX_PANEL_ABLATIONS, MAX_PANEL_STEERS, type PromptPanelState, ToPromptPanel, type ToPromptPanelType } from '../protocol/webview';
import type { Ctx, Job } from './ctx';
import { Outbox } from './outbox';
import { html, webviewOptions } from './panel';

const PROMPT_PANEL_VIEW_TYPE = 'circuitLens.promptGraph';

export class PromptGraphPanel implements vscode.Disposable {
  static current: PromptGraphPanel | undefined;
  private readonly outbox: Outbox;
  private readonly disposables: vscode.Disposable[] = [];
  /** Jobs of this panel still running: its busy ring stays on until the last one ends. */
  private running = 0;

  private constructor(
    private readonly ctx: Ctx,
    readonly panel: vscode.WebviewPanel,
    private state: PromptPanelState,
  ) {
    this.outbox = new Outbox(panel.webview);
    panel.iconPath = vscode.Uri.joinPath(ctx.extension.extensionUri, 'media', 'circuit-lens.svg');
    panel.webview.html = html(panel.webview, ctx.extension.extensionUri, 'promptGraph', 'Prompt Graph');
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => void this.onMessage(raw)),
    );
  }

  /** Opens (or reveals) the panel showing `graph`; a new graph clears the selection and ablations. */
  static show(ctx: Ctx, graph: PromptGraphWire, title: string): PromptGraphPanel {
    const state: PromptPanelState = { graph, title, selected: null, ablations: [], lens: null, steers: [] };
    let current = PromptGraphPanel.current;
    if (current) {
      current.panel.reveal(current.panel.viewColumn ?? vscode.ViewColumn.Beside);
      current.panel.title = `Prompt Graph: ${title}`;
    } else {
      const panel = vscode.window.createWebviewPanel(PROMPT_PANEL_VIEW_TYPE, `Prompt Graph: ${title}`, vscode.ViewColumn.Beside, webviewOptions(ctx.extension.extensionUri));
      current = PromptGraphPanel.current = new PromptGraphPanel(ctx, panel, state);
    }
    current.setState(state);
    return current;
  }

  private setState(state: PromptPanelState): void {
    this.state = state;
    this.post(ToPromptPanel.state, state);
  }

  private post<P>(type: ToPromptPanelType & { create(p: P): { method: string; params: P } }, params: P): void {
    this.outbox.post(type.create(params));
  }

  /** Ablates a head/MLP node at its position, re-runs the prompt and adds the result to the panel. */
  async ablate(node: string, ablation: 'zero' | 'mean'): Promise<PromptAblationResult | undefined> {
    const graph = this.state.graph;
    if (!graph || !(await this.sameModel(graph))) return undefined;
    const t = graph.target;
    const result = await this.busyJob(`Ablating ${node} (${ablation}) and re-running the prompt`, (opts) =>
      this.ctx.client.ablatePromptNode(
        { ids: graph.prompt.ids, metric: graph.task.metric, position: t.position, token: t.token, ...(t.foil !== undefined ? { foil: t.foil } : {}), node, ablation },
        opts,
      ),
    );
    if (!result || this.state.graph !== graph) return result;
    this.ctx.log.info(`prompt graph: ${node} ablated (${ablation}): ${result.full} → ${result.ablated}`);
    const ablations = [...this.state.ablations.filter((a) => a.node !== node || a.ablation !== ablation), result].slice(-MAX_PANEL_ABLATIONS);
    this.setState({ ...this.state, ablations });
    return result;
  }

  /** Runs a job of this panel with its busy ring on; overlapping jobs keep it on until the last ends. */
  private async busyJob<T>(title: string, job: Job<T>): Promise<T | undefined> {
    this.running++;
    this.post(ToPromptPanel.busy, { busy: true });
    try {
      return await this.ctx.runJob(title, job);
    } finally {
      this.running--;
      this.post(ToPromptPanel.busy, { busy: this.running > 0 });
    }
  }

  /** The model the graph was built on, or undefined (reported) when another one is loaded. */
  private async sameModel(graph: PromptGraphWire): Promise<boolean> {
    const model = await this.ctx.ensureModel();
    if (!model) return false;
    if (model.info.layers !== graph.model.nLayers || model.info.heads !== graph.model.nHeads || model.info.vocab <= Math.max(...graph.prompt.ids)) {
      void this.ctx.showError(`Circuit Lens: the prompt graph was built on ${graph.model.name}; load that model to re-run it.`);
      return false;
    }
    return true;
  }

  /** The logit lens of the graph's prompt (as `circuit-lens lens`), shown under the graph. */
  async lens(): Promise<void> {
    const graph = this.state.graph;
    if (!graph || !(await this.sameModel(graph))) return;
    const lens = await this.busyJob('Logit lens', (opts) => this.ctx.client.logitLens({ ids: graph.prompt.ids, top: 3 }, opts));
    if (lens && this.state.graph === graph) this.setState({ ...this.state, lens });
  }

  /** Scales a node at its position and continues the prompt greedily (as `circuit-lens steer`). */
  async steer(node: string, scale: number): Promise<void> {
    const graph = this.state.graph;
    if (!graph || !(await this.sameModel(graph))) return;
    const result = await this.busyJob(`Steering ${node} × ${scale}`, (opts) => this.ctx.client.steer({ ids: graph.prompt.ids, node, scale }, opts));
    if (!result || this.state.graph !== graph) return;
    this.ctx.log.info(`prompt graph: ${node} × ${scale}: ${JSON.stringify(result.clean.text)} → ${JSON.stringify(result.steered.text)}`);
    // A result names its node without the position (`a2.h2`, position 19); `node` is `a2.h2@19`.
    const others = (this.state.steers ?? []).filter((x) => `${x.node}@${x.position}` !== node || x.scale !== scale);
    this.setState({ ...this.state, steers: [...others, result].slice(-MAX_PANEL_STEERS) });
  }

  private async onMessage(raw: unknown): Promise<void> {
    const checked = fromPromptPanelMessages.validate(raw);
    if (!checked.ok) {
      this.ctx.log.warn(`prompt graph panel: rejected a message: ${checked.reason}`);
      void this.panel.webview.postMessage(ToPromptPanel.rejected.create({ reason: checked.reason.slice(0, 1024) }));
      return;
    }
    const msg = checked.message;
    if (FromPromptPanel.ready.is(msg)) {
      this.outbox.open(ToPromptPanel.state.create(this.state));
      // A reloaded app (the panel was hidden) starts idle: tell it about jobs still running.
      if (this.running > 0) this.post(ToPromptPanel.busy, { busy: true });
    } else if (FromPromptPanel.select.is(msg)) {
      this.state = { ...this.state, selected: msg.params.id };
    } else if (FromPromptPanel.ablate.is(msg)) {
      await this.ablate(msg.params.node, msg.params.ablation);
    } else if (FromPromptPanel.lens.is(msg)) {
      await this.lens();
    } else if (FromPromptPanel.steer.is(msg)) {
      await this.steer(msg.params.node, msg.params.scale);
    }
  }

  dispose(): void {
    if (PromptGraphPanel.current === this) PromptGraphPanel.current = undefined;
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
