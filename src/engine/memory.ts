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
 * Activations for one run, per row. A forward pass keeps little alive: per layer the
 * residual-sized tensors (≈16), the MLP width (≈6) and attention scores/probabilities (≈6
 * T×T per head), as a generous bound. Attribution keeps for the backward pass, per layer, ≈8
 * residual-sized tensors (LayerNorm input and output, q/k/v, z, the residual sums), ≈3
 * MLP-sized ones (pre-activation, activation, its gradient) and ≈3 T×T per head (scores,
 * probabilities, the uniform rule's copy), plus ≈4 T×T per head transient while one layer's
 * attention backward runs. Fitted to the peak RSS of bench/scale.ts at 256 and 512 tokens
 * (estimate within 5 % of the measured peaks).
 */
export function estimateRunBytes(spec: ArchSpec, rows: number, tokens: number, attribution: boolean): number {
  const T = tokens;
  const square = spec.nHeads * T * T;
  if (!attribution) {
    const perLayer = T * (16 * spec.dModel + 6 * spec.dMlp) + 6 * square;
    return rows * (spec.nLayers * perLayer + T * spec.vocabSize + 4 * T * spec.dModel) * 4;
  }
  const kept = spec.nLayers * (T * (8 * spec.dModel + 3 * spec.dMlp) + 3 * square);
  const transient = 4 * square + 2 * spec.vocabSize + 4 * T * spec.dModel;
  return rows * (kept + transient) * 4;
}

export function checkMemory(bytes: number, what: string, policy: MemoryPolicy, suggestion: string): void {
  const limit = policy.limitBytes ?? os.freemem() * policy.share;
  if (bytes > limit) {
    const basis = policy.limitBytes !== undefined ? `the configured limit of ${format(limit)}` : `${Math.round(policy.share * 100)} % of the ${format(os.freemem())} free`;
    throw new InputError(`${what} needs an estimated ${format(bytes)}, more than ${basis}; ${suggestion}`);
  }
}
