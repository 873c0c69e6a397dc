/**
 * Memory estimates, checked before a model is loaded or a batch is run, so an oversized request
 * is refused with a suggestion instead of ending in an out-of-memory kill of the extension host.
 * Float32 throughout; the attribution figures are fitted to measured peaks (bench/scale.ts).
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
 * Weights as float32, times four: the safetensors buffer the graph is compiled from, ONNX
 * Runtime's own copy of the initializers, and the constant-folded transposes the backward pass
 * (g·Wᵀ) and `out_in` layouts add (prepacking is off, session.ts). Fitted to bench/scale.ts:
 * 1.96 GiB at 128 tokens on the GPT-2-small-sized model (124M parameters, 16 B each = 1.85 GiB,
 * plus that length's activations). A graph-cache hit (cache.ts) needs less: no JavaScript copy.
 */
export function estimateModelBytes(parameters: number): number {
  return parameters * 4 * 4;
}

/**
 * Activations for one run, per row: per layer about 16 residual-sized and 6 MLP-sized tensors
 * per token, and the attention maps. A forward pass keeps about 6 T×T maps per head per layer
 * alive at its peak; attribution about 4, since its head readouts no longer sum over the maps
 * (build.ts `relevanceOutputs`; 9 before). Fitted to attribution peaks on the GPT-2-small-sized
 * model at 512, 768 and 1,024 tokens (3,016, 4,142 and 5,180 MiB; the estimate with
 * `estimateModelBytes` is 3–9 % above each).
 */
export function estimateRunBytes(spec: ArchSpec, rows: number, tokens: number, attribution: boolean): number {
  const T = tokens;
  const perLayer = T * (16 * spec.dModel + 6 * spec.dMlp) + (attribution ? 4 : 6) * spec.nHeads * T * T;
  const logits = attribution ? 2 * spec.vocabSize : T * spec.vocabSize;
  return rows * (spec.nLayers * perLayer + logits + 4 * T * spec.dModel) * 4;
}

export function checkMemory(bytes: number, what: string, policy: MemoryPolicy, suggestion: string): void {
  const limit = policy.limitBytes ?? os.freemem() * policy.share;
  if (bytes > limit) {
    const basis = policy.limitBytes !== undefined ? `the configured limit of ${format(limit)}` : `${Math.round(policy.share * 100)} % of the ${format(os.freemem())} free`;
    throw new InputError(`${what} needs an estimated ${format(bytes)}, more than ${basis}; ${suggestion}`);
  }
}
