/** Typed wrapper over `acquireVsCodeApi()` (callable once per webview). */
import type { FromWebviewType, PanelState } from '../src/protocol/webview';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api: VsCodeApi =
  typeof acquireVsCodeApi === 'function'
    ? acquireVsCodeApi()
    : // Outside VS Code (a plain browser while developing): log instead of posting.
      { postMessage: (m) => console.log('→ host', m), getState: () => undefined, setState: () => undefined };

export function send<P>(type: FromWebviewType & { create(p: P): { method: string; params: P } }, params: P): void {
  api.postMessage(type.create(params));
}

export function sendReady(): void {
  api.postMessage({ method: 'panel/ready' });
}

export function saveState(state: PanelState): void {
  api.setState(state);
}

export function loadState(): unknown {
  return api.getState();
}
