/**
 * Typed access to the `circuitLens.*` settings (see `contributes.configuration` in package.json).
 * The enums are the vocabulary's (src/vocabulary.ts) and the defaults the pipelines' — both
 * checked against package.json by test/unit/vocabulary.test.ts — so a getter falls back to
 * "not given" (undefined: the pipeline's default applies) rather than to a number of its own.
 */
import * as vscode from 'vscode';
import { COMPOSITES, EXECUTION_PROVIDERS, PRUNE_SCOPES, TARGET_CHOICES, type Composite, type ExecutionProviderSetting, type PruneScope, type TargetChoice, WEIGHT_PRECISIONS, type WeightPrecision } from '../vocabulary';

const SECTION = 'circuitLens';

function pick<T extends string>(value: unknown, allowed: readonly T[]): T | undefined {
  return allowed.includes(value as T) ? (value as T) : undefined;
}

function int(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : undefined;
}

export class Config {
  private get c(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION);
  }
  /** Machine-scoped model folder loaded on first use ('' = ask). */
  get modelPath(): string {
    return String(this.c.get('model.path') ?? '').trim();
  }
  /** `auto` (the engine's own default) when the setting is missing or invalid. */
  get executionProvider(): ExecutionProviderSetting {
    return pick(this.c.get('engine.executionProvider'), EXECUTION_PROVIDERS) ?? 'auto';
  }
  /** How weight matrices are kept; `auto` (the engine's default) when missing or invalid. */
  get weightPrecision(): WeightPrecision {
    return pick(this.c.get('engine.weightPrecision'), WEIGHT_PRECISIONS) ?? 'auto';
  }
  /** Share of free memory a model or a run may take before the engine refuses it (memory.ts). */
  get memoryShare(): number | undefined {
    const v = this.c.get<number>('engine.memoryShare');
    return typeof v === 'number' && v >= 0.05 && v <= 1 ? v : undefined;
  }
  /** 0 = let ONNX Runtime decide. */
  get threads(): number | undefined {
    return int(this.c.get('engine.threads'), 0, 1024);
  }
  get mode(): Composite | undefined {
    return pick(this.c.get('attribution.mode'), COMPOSITES);
  }
  get target(): TargetChoice {
    return pick(this.c.get('attribution.target'), TARGET_CHOICES) ?? 'top1';
  }
  get codeLens(): boolean {
    return this.c.get('attribution.codeLens') !== false;
  }
  /** Edges the panel shows at first (its Top-k slider). */
  get maxEdges(): number {
    return int(this.c.get('graph.maxEdges'), 1, 1 << 17) ?? 1 << 17;
  }
  /** Edges below this share of the largest |relevance| are hidden at first (the Threshold slider). */
  get threshold(): number {
    const v = this.c.get('graph.threshold');
    return typeof v === 'number' && v >= 0 && v <= 1 ? v : 0;
  }
  /** Prompts generated for a built-in task (undefined: the pipeline's DISCOVER_DEFAULTS.n). */
  get prompts(): number | undefined {
    return int(this.c.get('circuits.prompts'), 1, 100000);
  }
  get pruneScope(): PruneScope | undefined {
    return pick(this.c.get('pruning.scope'), PRUNE_SCOPES);
  }
  /** Calibration windows for pruning scores (undefined: PRUNE_DEFAULTS.windows). */
  get pruneWindows(): number | undefined {
    return int(this.c.get('pruning.windows'), 1, 4096);
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
