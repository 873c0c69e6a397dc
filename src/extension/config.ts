/** Typed access to the `circuitLens.*` settings (see `contributes.configuration` in package.json). */
import * as vscode from 'vscode';
import type { ExecutionProviderSetting } from '../engine/api';
import { EXECUTION_PROVIDERS, type TargetChoice, TARGET_CHOICES } from '../protocol';

export type AttributionMode = 'attnlrp' | 'cp-lrp';

const SECTION = 'circuitLens';

function pick<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? (value as T) : fallback;
}

function int(value: unknown, fallback: number, min: number, max: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(max, Math.max(min, Math.round(value))) : fallback;
}

export class Config {
  private get c(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION);
  }
  /** Machine-scoped model folder loaded on first use ('' = ask). */
  get modelPath(): string {
    return String(this.c.get('model.path') ?? '').trim();
  }
  get executionProvider(): ExecutionProviderSetting {
    return pick(this.c.get('engine.executionProvider'), EXECUTION_PROVIDERS, 'auto');
  }
  /** 0 = let ONNX Runtime decide. */
  /** Share of free memory a model or a run may take before the engine refuses it (memory.ts). */
  get memoryShare(): number {
    const v = this.c.get<number>('engine.memoryShare');
    return typeof v === 'number' && v >= 0.05 && v <= 1 ? v : 0.8;
  }

  get threads(): number {
    return int(this.c.get('engine.threads'), 0, 0, 256);
  }
  get mode(): AttributionMode {
    return pick(this.c.get('attribution.mode'), ['attnlrp', 'cp-lrp'] as const, 'attnlrp');
  }
  get target(): TargetChoice {
    return pick(this.c.get('attribution.target'), TARGET_CHOICES, 'top1');
  }
  get codeLens(): boolean {
    return this.c.get('attribution.codeLens') !== false;
  }
  get maxNodes(): number {
    return int(this.c.get('graph.maxNodes'), 40, 1, 1 << 15);
  }
  get maxEdges(): number {
    return int(this.c.get('graph.maxEdges'), 120, 0, 1 << 17);
  }
  get threshold(): number {
    const v = this.c.get('graph.threshold');
    return typeof v === 'number' && v >= 0 && v <= 1 ? v : 0.02;
  }
  get prompts(): number {
    return int(this.c.get('circuits.prompts'), 32, 1, 10000);
  }
  get pruneScope(): 'rowwise' | 'global' {
    return pick(this.c.get('pruning.scope'), ['rowwise', 'global'] as const, 'rowwise');
  }
  /** Calibration windows of 64 tokens for pruning scores. */
  get pruneWindows(): number {
    return int(this.c.get('pruning.windows'), 32, 1, 4096);
  }
  get testHooks(): boolean {
    return this.c.get('developer.testHooks') === true;
  }
  async setExecutionProvider(value: ExecutionProviderSetting): Promise<void> {
    await this.c.update('engine.executionProvider', value, vscode.ConfigurationTarget.Global);
  }
  affects(e: vscode.ConfigurationChangeEvent, key: string): boolean {
    return e.affectsConfiguration(`${SECTION}.${key}`);
  }
}
