/**
 * The circuit graph panel, host side: builds the webview HTML (strict CSP with a nonce,
 * `asWebviewUri` assets), keeps the authoritative panel state, queues messages until the app
 * says `panel/ready` (and replays the state when it reloads), validates every message from the
 * app, and revives the panel after a window reload through a `WebviewPanelSerializer`.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import {
  type Circuit,
  type CircuitMetrics,
  FromWebview,
  fromWebviewMessages,
  type PanelState,
  panelStateSchema,
  parseWith,
  ToWebview,
  type ToWebviewType,
} from '../protocol';
import type { Ctx } from './ctx';

export const PANEL_VIEW_TYPE = 'circuitLens.circuitGraph';

export interface PanelHandlers {
  verify(circuit: Circuit, ablate: string[]): Promise<CircuitMetrics | undefined>;
  export(circuit: Circuit, format: 'circuit-lens' | 'neuronpedia' | 'eap-ig', nodes: string[] | undefined): Promise<void>;
  exportPng(circuit: Circuit, dataUrl: string): Promise<void>;
}

export function defaultState(circuit: Circuit | null, ctx: Ctx): PanelState {
  return {
    circuit,
    ablated: [],
    pinned: [],
    selected: null,
    threshold: ctx.config.threshold,
    topK: ctx.config.maxEdges,
    view: 'graph',
  };
}

export class CircuitPanel implements vscode.Disposable {
  static current: CircuitPanel | undefined;
  private ready = false;
  private readonly queue: { method: string; params: unknown }[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  private constructor(
    private readonly ctx: Ctx,
    readonly panel: vscode.WebviewPanel,
    private state: PanelState,
    private readonly handlers: PanelHandlers,
  ) {
    panel.webview.options = webviewOptions(ctx.extension.extensionUri);
    panel.iconPath = vscode.Uri.joinPath(ctx.extension.extensionUri, 'media', 'circuit-lens.svg');
    panel.webview.html = html(panel.webview, ctx.extension.extensionUri);
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => void this.onMessage(raw)),
      panel.onDidChangeViewState((e) => vscode.commands.executeCommand('setContext', 'circuitLens.panelActive', e.webviewPanel.active)),
    );
    void vscode.commands.executeCommand('setContext', 'circuitLens.panelActive', true);
  }

  /** Opens (or reveals) the panel showing `circuit`. */
  static show(ctx: Ctx, circuit: Circuit | null, handlers: PanelHandlers): CircuitPanel {
    const existing = CircuitPanel.current;
    if (existing) {
      existing.panel.reveal(existing.panel.viewColumn ?? vscode.ViewColumn.Beside);
      if (circuit && circuit.id !== existing.state.circuit?.id) existing.setState(defaultState(circuit, ctx));
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'Circuit Graph', vscode.ViewColumn.Beside, webviewOptions(ctx.extension.extensionUri));
    CircuitPanel.current = new CircuitPanel(ctx, panel, defaultState(circuit, ctx), handlers);
    return CircuitPanel.current;
  }

  /** Opens (or reveals) the panel showing `circuit`, keeping the panel's selection when it is the same circuit. */
  static showCircuit(ctx: Ctx, circuit: Circuit, handlers: PanelHandlers, view?: PanelState['view']): CircuitPanel {
    const panel = CircuitPanel.show(ctx, circuit, handlers);
    const state = panel.state.circuit?.id === circuit.id ? panel.state : defaultState(circuit, ctx);
    panel.setState({ ...state, circuit, ...(view ? { view } : {}) });
    return panel;
  }

  static revive(ctx: Ctx, panel: vscode.WebviewPanel, saved: unknown, handlers: PanelHandlers): CircuitPanel {
    let state = defaultState(ctx.currentCircuit, ctx);
    if (saved !== undefined && saved !== null) {
      try {
        state = parseWith(panelStateSchema, saved, 64 << 20);
      } catch (err) {
        ctx.log.warn(`could not restore the circuit panel's state: ${(err as Error).message}`);
      }
    }
    CircuitPanel.current?.dispose();
    CircuitPanel.current = new CircuitPanel(ctx, panel, state, handlers);
    if (state.circuit) ctx.setCircuit(state.circuit);
    return CircuitPanel.current;
  }

  get circuit(): Circuit | null {
    return this.state.circuit;
  }

  get ablated(): readonly string[] {
    return this.state.ablated;
  }

  setState(state: PanelState): void {
    this.state = state;
    this.post(ToWebview.state, state);
  }

  setMetrics(metrics: CircuitMetrics): void {
    if (this.state.circuit) this.state = { ...this.state, circuit: { ...this.state.circuit, metrics } };
    this.post(ToWebview.metrics, metrics);
  }

  /** Runs Verify for the panel's circuit with its current ablations. */
  async verify(): Promise<void> {
    const circuit = this.state.circuit;
    if (!circuit) return;
    this.post(ToWebview.verifying, { busy: true });
    try {
      const metrics = await this.handlers.verify(circuit, [...this.state.ablated]);
      if (metrics) this.setMetrics(metrics);
    } finally {
      this.post(ToWebview.verifying, { busy: false });
    }
  }

  private post<P>(type: ToWebviewType & { create(p: P): { method: string; params: P } }, params: P): void {
    const message = type.create(params);
    if (!this.ready) {
      // Only the latest state matters; keep one per method.
      const i = this.queue.findIndex((m) => m.method === message.method);
      if (i >= 0) this.queue.splice(i, 1);
      this.queue.push(message);
      return;
    }
    void this.panel.webview.postMessage(message);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const checked = fromWebviewMessages.validate(raw);
    if (!checked.ok) {
      this.ctx.log.warn(`circuit panel: rejected a message: ${checked.reason}`);
      void this.panel.webview.postMessage(ToWebview.rejected.create({ reason: checked.reason.slice(0, 1024) }));
      return;
    }
    const msg = checked.message;
    if (FromWebview.ready.is(msg)) {
      // A (re)loaded app: replay the full state, then anything queued.
      this.ready = true;
      const queued = this.queue.splice(0).filter((m) => m.method !== ToWebview.state.method);
      void this.panel.webview.postMessage(ToWebview.state.create(this.state));
      for (const m of queued) void this.panel.webview.postMessage(m);
      return;
    }
    if (FromWebview.selectNode.is(msg)) {
      this.state = { ...this.state, selected: msg.params.id };
    } else if (FromWebview.ablate.is(msg)) {
      const set = new Set(this.state.ablated);
      for (const id of msg.params.ids) {
        if (msg.params.ablated) set.add(id);
        else set.delete(id);
      }
      this.state = { ...this.state, ablated: [...set] };
    } else if (FromWebview.pin.is(msg)) {
      const set = new Set(this.state.pinned);
      if (msg.params.pinned) set.add(msg.params.id);
      else set.delete(msg.params.id);
      this.state = { ...this.state, pinned: [...set] };
    } else if (FromWebview.setThreshold.is(msg)) {
      this.state = { ...this.state, threshold: msg.params.threshold, topK: msg.params.topK };
    } else if (FromWebview.setView.is(msg)) {
      this.state = { ...this.state, view: msg.params.view };
    } else if (FromWebview.verify.is(msg)) {
      this.state = { ...this.state, ablated: [...msg.params.ablate] };
      await this.verify();
    } else if (FromWebview.export.is(msg)) {
      const circuit = this.state.circuit;
      if (!circuit) return;
      if (msg.params.format === 'png') {
        if (msg.params.dataUrl) await this.handlers.exportPng(circuit, msg.params.dataUrl);
      } else {
        await this.handlers.export(circuit, msg.params.format, msg.params.nodes);
      }
    }
  }

  dispose(): void {
    if (CircuitPanel.current === this) {
      CircuitPanel.current = undefined;
      void vscode.commands.executeCommand('setContext', 'circuitLens.panelActive', false);
    }
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    retainContextWhenHidden: false,
  };
}

function html(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.css'));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data: blob:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}" nonce="${nonce}">
<title>Circuit Graph</title>
</head>
<body>
<div id="app" data-nonce="${nonce}"></div>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

export class CircuitPanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(
    private readonly ctx: Ctx,
    private readonly handlers: PanelHandlers,
  ) {}
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    CircuitPanel.revive(this.ctx, panel, state, this.handlers);
  }
}
