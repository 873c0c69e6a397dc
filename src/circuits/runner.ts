/**
 * What the circuit tooling needs from a loaded model. The engine (`src/engine/engine.ts`)
 * implements it; everything in `src/circuits/` is written against this interface only, so the
 * circuit logic stays free of ONNX Runtime and can be unit-tested on plain numbers.
 */

import type { AttributeRequest, Attribution, Composite, EdgeAttribution, ForwardRequest, ForwardRow, Target } from '../engine/api';
import type { ArchSpec } from '../models/spec';

export interface RunnerTokenizer {
  encode(text: string): { ids: number[]; offsets: [number, number][] };
  encodeIds(text: string): number[];
  decode(ids: number[]): string;
  tokenString(id: number): string;
}

export interface ModelRunner {
  readonly spec: ArchSpec;
  /** Null for models shipped without a tokenizer (feed token ids). */
  readonly tokenizer: RunnerTokenizer | null;
  forward(req: ForwardRequest): Promise<ForwardRow[]>;
  attribute(req: AttributeRequest): Promise<Attribution[]>;
  /** Edge relevance (one gated backward row per downstream node). */
  edges(prompts: readonly { ids: readonly number[]; target: Target }[], mode: Composite): Promise<EdgeAttribution[]>;
}

/** Text → token ids, without special tokens. Task loading and generators take one of these. */
export type EncodeFn = (text: string) => readonly number[];
