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
 * Node, ONNX Runtime, the compiled graph's protobuf and the tokenizer: what a process holds
 * besides weights and activations. Fitted with `estimateModelBytes` and `estimateRunBytes` to
 * bench/scale.ts (README "Speed and memory at scale").
 */
export const RUNTIME_BYTES = 256 * MiB;

/**
 * Weights as float32, once: ONNX Runtime maps the safetensors files itself (session.ts) and
 * constant folding is off, so no transposed copies exist; JavaScript never reads the file. Plus
 * `RUNTIME_BYTES`. Two cases need more and are not estimated separately: weights ORT cannot
 * map (files in more than one real folder, or a folder ORT refuses: ORT then gets a buffer and
 * copies it, 8 bytes per parameter) and F16/BF16 files kept as float32 (the CPU's default),
 * converted in JavaScript. With half weights (`weightPrecision`) such files are mapped as stored,
 * 2 bytes per parameter, and the estimate is high.
 */
export function estimateModelBytes(parameters: number): number {
  return parameters * 4 + RUNTIME_BYTES;
}

/**
 * Activations for one run, per row, as float32 (T tokens):
 * - attribution keeps, per layer, about 8 residual-sized and 2 MLP-sized tensors per token for
 *   the backward pass. The attention maps are not kept: the backward pass recomputes each
 *   layer's from Q and K (build.ts `recomputeAttention`), so one layer's are alive at a time,
 *   about 10 T×T maps per head with the softmax rule's temporaries;
 * - a forward pass frees each layer's tensors once the next layer has them: about 3 residual-
 *   and 2 MLP-sized tensors per token per layer stay live, the maps of one layer (about 3 per
 *   head), and the logits at every position.
 * Fitted to the peaks of bench/scale.ts on the GPT-2-small-sized model at 128…2,048 tokens,
 * with ONNX Runtime mapping the weights and its memory pattern off (session.ts); README "Speed
 * and memory at scale" gives each measured peak with this estimate beside it.
 */
export function estimateRunBytes(spec: ArchSpec, rows: number, tokens: number, attribution: boolean): number {
  const T = tokens;
  const floats = attribution
    ? spec.nLayers * T * (8 * spec.dModel + 2 * spec.dMlp) + 10 * spec.nHeads * T * T + 2 * spec.vocabSize + 4 * T * spec.dModel
    : spec.nLayers * T * (3 * spec.dModel + 2 * spec.dMlp) + 3 * spec.nHeads * T * T + T * spec.vocabSize;
  return rows * floats * 4;
}

export function checkMemory(bytes: number, what: string, policy: MemoryPolicy, suggestion: string): void {
  const limit = policy.limitBytes ?? os.freemem() * policy.share;
  if (bytes > limit) {
    const basis = policy.limitBytes !== undefined ? `the configured limit of ${format(limit)}` : `${Math.round(policy.share * 100)} % of the ${format(os.freemem())} free`;
    throw new InputError(`${what} needs an estimated ${format(bytes)}, more than ${basis}; ${suggestion}`);
  }
}
