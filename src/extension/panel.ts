/**
 * The circuit graph panel, host side: builds the webview HTML (strict CSP with a nonce,
 * `asWebviewUri` assets), keeps the authoritative panel state, queues messages until the app
 * says `panel/ready` (and replays the state when it reloads), validates every message from the
 * app, and revives the panel after a window reload through a `WebviewPanelSerializer`.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { parseWith } from '../protocol/schema';
import type { Run, VerificationSummary } from '../protocol/shapes';
import { FromWebview, fromWebviewMessages, type PanelState, panelStateSchema, ToWebview, type ToWebviewType } from '../protocol/webview';
import type { Ctx, ShownCircuit } from './ctx';
import { Outbox } from './outbox';

export const PANEL_VIEW_TYPE = 'circuitLens.circuitGraph';

export interface PanelHandlers {
  verify(circuit: ShownCircuit, ablate: string[]): Promise<VerificationSummary | undefined>;
  export(circuit: ShownCircuit, format: 'circuit-lens' | 'neuronpedia' | 'eap-ig'): Promise<void>;
  exportPng(name: string, dataUrl: string): Promise<void>;
}

/** The same circuit (a re-show keeps the panel's ablations, pins and verification). */
function sameCircuit(a: ShownCircuit | null, state: PanelState): boolean {
  return a !== null && state.circuit !== null && a.title === state.title && a.graph.created === state.circuit.created && a.graph.nodes.length === state.circuit.nodes.length;
}

export function defaultState(circuit: ShownCircuit | null, ctx: Ctx, runs: readonly Run[] = ctx.runs): PanelState {
  return {
    circuit: circuit?.graph ?? null,
    title: circuit?.title ?? '',
    verification: null,
    runs: [...runs],
    shownRuns: [],
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
  private readonly outbox: Outbox;
  private readonly disposables: vscode.Disposable[] = [];
  /** The circuit shown, with the file it came from (the state holds only what the app needs). */
  private shown: ShownCircuit | null;

  private constructor(
    private readonly ctx: Ctx,
    readonly panel: vscode.WebviewPanel,
    private state: PanelState,
    private readonly handlers: PanelHandlers,
    shown: ShownCircuit | null,
  ) {
    this.shown = shown;
    this.outbox = new Outbox(panel.webview);
    panel.webview.options = webviewOptions(ctx.extension.extensionUri);
    panel.iconPath = vscode.Uri.joinPath(ctx.extension.extensionUri, 'media', 'circuit-lens.svg');
    panel.webview.html = html(panel.webview, ctx.extension.extensionUri);
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => void this.onMessage(raw)),
      panel.onDidChangeViewState((e) => vscode.commands.executeCommand('setContext', 'circuitLens.panelActive', e.webviewPanel.active)),
      ctx.onDidChangeRuns((runs) => {
        const ids = new Set(runs.map((r) => r.id));
        this.setState({ ...this.state, runs: [...runs], shownRuns: this.state.shownRuns.filter((id) => ids.has(id)) });
      }),
    );
    void vscode.commands.executeCommand('setContext', 'circuitLens.panelActive', true);
  }

  private static open(ctx: Ctx, state: PanelState, handlers: PanelHandlers, shown: ShownCircuit | null): CircuitPanel {
    const existing = CircuitPanel.current;
    if (existing) {
      existing.panel.reveal(existing.panel.viewColumn ?? vscode.ViewColumn.Beside);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'Circuit Graph', vscode.ViewColumn.Beside, webviewOptions(ctx.extension.extensionUri));
    CircuitPanel.current = new CircuitPanel(ctx, panel, state, handlers, shown);
    return CircuitPanel.current;
  }

  /**
   * Opens (or reveals) the panel showing `circuit`. The same circuit keeps its ablations, pins
   * and verification; another one starts afresh (a stale verification is never shown).
   */
  static show(ctx: Ctx, circuit: ShownCircuit, handlers: PanelHandlers, view?: PanelState['view']): CircuitPanel {
    const panel = CircuitPanel.open(ctx, defaultState(circuit, ctx), handlers, circuit);
    const keep = sameCircuit(circuit, panel.state);
    const base = keep ? panel.state : { ...defaultState(circuit, ctx), shownRuns: panel.state.shownRuns, topK: panel.state.topK, threshold: panel.state.threshold };
    panel.shown = circuit;
    panel.setState({ ...base, circuit: circuit.graph, title: circuit.title, runs: [...ctx.runs], ...(view ? { view } : {}) });
    ctx.setCircuit(circuit);
    return panel;
  }

  /** Opens (or reveals) the panel's Charts view overlaying `ids` (pruning/correction runs). */
  static showRuns(ctx: Ctx, ids: readonly string[], handlers: PanelHandlers): CircuitPanel {
    const panel = CircuitPanel.open(ctx, { ...defaultState(null, ctx), view: 'charts' }, handlers, null);
    const known = new Set(ctx.runs.map((r) => r.id));
    const shownRuns = [...new Set([...ids, ...panel.state.shownRuns])].filter((id) => known.has(id));
    panel.setState({ ...panel.state, runs: [...ctx.runs], shownRuns, view: 'charts' });
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
    // Runs live in the extension host for one session; a reload starts without them.
    state = { ...state, runs: [...ctx.runs], shownRuns: state.shownRuns.filter((id) => ctx.runs.some((r) => r.id === id)) };
    const shown = state.circuit ? { graph: state.circuit, title: state.title } : null;
    CircuitPanel.current?.dispose();
    CircuitPanel.current = new CircuitPanel(ctx, panel, state, handlers, shown);
    if (shown) ctx.setCircuit(shown);
    return CircuitPanel.current;
  }

  get circuit(): ShownCircuit | null {
    return this.shown;
  }

  get ablated(): readonly string[] {
    return this.state.ablated;
  }

  setState(state: PanelState): void {
    this.state = state;
    this.post(ToWebview.state, state);
  }

  setVerification(verification: VerificationSummary): void {
    this.state = { ...this.state, verification };
    this.post(ToWebview.verification, verification);
  }

  /** Runs Verify for the panel's circuit with its current ablations. */
  async verify(): Promise<VerificationSummary | undefined> {
    const circuit = this.shown;
    if (!circuit) return undefined;
    this.post(ToWebview.verifying, { busy: true });
    try {
      const result = await this.handlers.verify(circuit, [...this.state.ablated]);
      // Only if the panel still shows that circuit.
      if (result && this.shown === circuit) this.setVerification(result);
      return result;
    } finally {
      this.post(ToWebview.verifying, { busy: false });
    }
  }

  private post<P>(type: ToWebviewType & { create(p: P): { method: string; params: P } }, params: P): void {
    this.outbox.post(type.create(params));
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
      this.outbox.open(ToWebview.state.create(this.state));
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
    } else if (FromWebview.showRuns.is(msg)) {
      const known = new Set(this.state.runs.map((r) => r.id));
      this.state = { ...this.state, shownRuns: msg.params.ids.filter((id) => known.has(id)) };
    } else if (FromWebview.verify.is(msg)) {
      this.state = { ...this.state, ablated: [...msg.params.ablate] };
      await this.verify();
    } else if (FromWebview.export.is(msg)) {
      if (msg.params.format === 'png') {
        if (msg.params.dataUrl) await this.handlers.exportPng(this.shown?.title || 'circuit', msg.params.dataUrl);
        return;
      }
      const circuit = this.shown;
      if (circuit) await this.handlers.export(circuit, msg.params.format);
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

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    retainContextWhenHidden: false,
  };
}

/** The page of a panel app: `bundle` names dist/<bundle>.js and .css (the prompt graph panel has its own). */
export function html(webview: vscode.Webview, extensionUri: vscode.Uri, bundle = 'webview', title = 'Circuit Graph'): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', `${bundle}.js`));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', `${bundle}.css`));
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
<title>${title}</title>
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
