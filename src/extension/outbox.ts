/**
 * Messages from the host to a webview app (the circuit panel, the prompt graph panel). Until the
 * app says it is ready they are held, one per method: only the latest state or result matters.
 * When the app (re)loads, the host's full state goes first, then what was held.
 */
import type * as vscode from 'vscode';

export interface OutboxMessage {
  readonly method: string;
  readonly params: unknown;
}

export class Outbox {
  private ready = false;
  private readonly held: OutboxMessage[] = [];

  constructor(private readonly webview: vscode.Webview) {}

  post(message: OutboxMessage): void {
    if (!this.ready) {
      const i = this.held.findIndex((m) => m.method === message.method);
      if (i >= 0) this.held.splice(i, 1);
      this.held.push(message);
      return;
    }
    void this.webview.postMessage(message);
  }

  /** The app is (re)loaded: replay `state` (it replaces any held state), then the rest. */
  open(state: OutboxMessage): void {
    this.ready = true;
    const held = this.held.splice(0).filter((m) => m.method !== state.method);
    void this.webview.postMessage(state);
    for (const m of held) void this.webview.postMessage(m);
  }
}
