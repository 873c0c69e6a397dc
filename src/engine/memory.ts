/**
 * Memory estimates, checked before a model is loaded or a batch is run, so an oversized request
 * is refused with a suggestion instead of ending in an out-of-memory kill of the extension host.
 * The estimates are deliberately generous upper bounds (float32 throughout).
 */
import * as os from 'node:os';
import { InputError } from '../models/errors';
import type { ArchSpec } from '../models/spec';

export interface MemoryPolicy {
  /** Refuse when an estimate exceeds this share of the free memory (default 0.8). */
  readonly share: number;
  /** An absolute cap in bytes instead of the share of free memory (tests, settings). */
  readonly limitBytes?: number;
}

const MiB = 1024 * 1024;
const format = (bytes: number) => (bytes >= 1024 * MiB ? `${(bytes / 1024 / MiB).toFixed(1)} GiB` : `${Math.ceil(bytes / MiB)} MiB`);

/**
 * Weights as float32, times three: the file buffer, and ONNX Runtime's own copy with prepacked
 * (transposed) variants, per open session.
 */
export function estimateModelBytes(parameters: number): number {
  return parameters * 4 * 3;
}

/**
 * Activations for one run: per row and layer, the residual-sized tensors (about 16 of them with
 * the backward pass's gradients and LRP readouts), the MLP width (about 6), and the attention
 * scores/probabilities (about 6 T×T per head). Attribution keeps the forward activations alive
 * for the backward pass, hence the factor.
 */
export function estimateRunBytes(spec: ArchSpec, rows: number, tokens: number, attribution: boolean): number {
  const perLayer = tokens * (16 * spec.dModel + 6 * spec.dMlp) + 6 * spec.nHeads * tokens * tokens;
  const logits = attribution ? spec.vocabSize * 2 : tokens * spec.vocabSize;
  const perRow = spec.nLayers * perLayer + logits + 4 * tokens * spec.dModel;
  return rows * perRow * 4 * (attribution ? 3 : 1);
}

export function checkMemory(bytes: number, what: string, policy: MemoryPolicy, suggestion: string): void {
  const limit = policy.limitBytes ?? os.freemem() * policy.share;
  if (bytes > limit) {
    const basis = policy.limitBytes !== undefined ? `the configured limit of ${format(limit)}` : `${Math.round(policy.share * 100)} % of the ${format(os.freemem())} free`;
    throw new InputError(`${what} needs an estimated ${format(bytes)}, more than ${basis}; ${suggestion}`);
  }
}
