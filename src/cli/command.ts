/** What a CLI command is; kept apart from main.ts so command modules can import it without a cycle. */
import type { Engine } from '../engine/engine';
import type { JobContext } from '../pipelines/context';
import type { FlagSpec } from './args';

export interface CommandContext {
  readonly argv: string[];
  openEngine(model: string | undefined, flags: { ep?: string; 'weight-precision'?: string; threads?: string; 'cache-dir'?: string }): Promise<Engine>;
  /** Progress and log lines for the pipelines (stderr). */
  readonly job: JobContext;
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  run(ctx: CommandContext): Promise<{ json: unknown; text: string }>;
}

export const MODEL_FLAGS = {
  model: { type: 'string' },
  ep: { type: 'string' },
  /** How weight matrices are kept (vocabulary.ts WEIGHT_PRECISION_DOCS). */
  'weight-precision': { type: 'string' },
  threads: { type: 'string' },
  /** Compiled-graph cache folder, or "off" (src/engine/cache.ts). */
  'cache-dir': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies FlagSpec;

