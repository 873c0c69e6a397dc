/**
 * A reverse-mode tape over the ONNX writer: the relevance-graph compiler's core.
 *
 * ONNX Runtime has no autograd, so the backward pass is emitted as ONNX nodes too. Each forward
 * op records a vector-Jacobian product (VJP); `backward` walks the tape in reverse and emits
 * them. LRP enters only through the VJPs of the few non-linear ops, and only as data: every op
 * that has a rule takes it from the composite's rule table (rules.ts). Linear ops keep their
 * ordinary gradient, which in gradient×input form *is* the ε-rule (methods.md A.0).
 *
 * Shapes are tracked symbolically (numbers, or names like 'B' and 'T' for dynamic axes) only as
 * far as broadcasting needs: a broadcast input's gradient is summed over the broadcast axes.
 */
import type { OnnxWriter } from './onnx';

export type Dim = number | string;
export type Shape = readonly Dim[];

export interface Tensor {
  readonly name: string;
  readonly shape: Shape;
  /** Whether a gradient must flow into this tensor (it depends on a leaf being explained). */
  readonly grad: boolean;
}

type Vjp = (gradOut: string) => ReadonlyArray<readonly [Tensor, string]>;

interface TapeEntry {
  readonly output: Tensor;
  readonly vjp: Vjp;
}

/** A forward block that the backward pass recomputes (see `recomputeInBackward`). */
interface Recomputed {
  readonly start: number;
  readonly end: number;
  readonly input: string;
  copy?: Map<string, string>;
}

export class Tape {
  private readonly entries: TapeEntry[] = [];
  private readonly grads = new Map<string, string[]>();
  private readonly finalGrads = new Map<string, string>();
  private readonly recomputed = new Map<string, Recomputed>();
  private done = false;

  constructor(readonly w: OnnxWriter) {}

  /** A tensor that takes no gradient (inputs, weights, masks). */
  constant(name: string, shape: Shape): Tensor {
    return { name, shape, grad: false };
  }

  /** A leaf whose relevance is read (token embeddings, positional embeddings). */
  leaf(name: string, shape: Shape): Tensor {
    return { name, shape, grad: true };
  }

  /** Records an op's output and its VJP (only when some input takes a gradient). */
  record(name: string, shape: Shape, inputs: readonly Tensor[], vjp: Vjp): Tensor {
    const grad = inputs.some((t) => t.grad);
    const output: Tensor = { name, shape, grad };
    if (grad) this.entries.push({ output, vjp });
    return output;
  }

  /** Seeds the backward pass: `gradient` flows into `tensor`. Call before `backward`. */
  seed(tensor: Tensor, gradient: string): void {
    this.push(tensor.name, gradient);
  }

  backward(): void {
    if (this.done) throw new Error('backward() already ran on this tape');
    this.done = true;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const { output, vjp } = this.entries[i]!;
      const g = this.gradOf(output);
      if (g === undefined) continue;
      for (const [input, gi] of vjp(g)) if (input.grad) this.push(input.name, gi);
    }
  }

  /** The tape position now: `localBackward` stops at a mark taken before a block was built. */
  mark(): number {
    return this.entries.length;
  }

  /**
   * Re-runs the recorded VJPs of one block on another incoming gradient, without touching the
   * main backward pass: `gradient` enters at `seed`, flows down through the entries recorded
   * since `from` (a `mark()`), and what reaches `wanted` is returned. The VJPs read the forward
   * tensors, so the gradient may carry a batch of rows where the forward has one (ONNX
   * broadcasting): edge attribution sends one row per attention head through its layer this way
   * instead of repeating the whole forward and backward pass per row (build.ts `localEdgeOutputs`).
   */
  localBackward(seed: Tensor, gradient: string, from: number, wanted: Tensor): string | undefined {
    const grads = new Map<string, string[]>([[seed.name, [gradient]]]);
    const final = new Map<string, string>();
    const read = (name: string): string | undefined => {
      const done = final.get(name);
      if (done) return done;
      const parts = grads.get(name);
      if (!parts || parts.length === 0) return undefined;
      const sum = parts.length === 1 ? parts[0]! : this.w.op1('Sum', parts, {}, `gl_${name}`);
      final.set(name, sum);
      return sum;
    };
    for (let i = this.entries.length - 1; i >= from; i--) {
      const { output, vjp } = this.entries[i]!;
      const g = read(output.name);
      if (g === undefined) continue;
      for (const [input, gi] of vjp(g)) {
        if (!input.grad) continue;
        if (final.has(input.name)) throw new Error(`local gradient of ${input.name} was read before all its contributions arrived`);
        const list = grads.get(input.name);
        if (list) list.push(gi);
        else grads.set(input.name, [gi]);
      }
    }
    return read(wanted.name);
  }

  /**
   * Activation checkpointing. The nodes written since `start` (a writer mark) compute values
   * from `input` that the backward pass needs; rather than keep them from the forward pass to
   * the backward one, the backward pass reads a copy computed again when its VJPs first ask
   * for one (`read`), made to wait for the gradient that asked. The attention maps (T×T per
   * head) are the case: kept, every layer's probabilities live from its forward to its
   * backward; recomputed, one layer's at a time.
   */
  recomputeInBackward(start: number, input: string): void {
    const block: Recomputed = { start, end: this.w.mark(), input };
    for (const name of this.w.outputsBetween(block.start, block.end)) this.recomputed.set(name, block);
  }

  /** A forward value as a VJP reads it, given the gradient `g` it is computing with. */
  read(name: string, g: string): string {
    const block = this.recomputed.get(name);
    if (!block) return name;
    block.copy ??= this.w.clone(block.start, block.end, new Map([[block.input, this.w.after(block.input, g, `${block.input}_after_grad`)]]));
    return block.copy.get(name)!;
  }

  /** The (modified) gradient that reached `tensor`, or undefined if none did. */
  gradOf(tensor: Tensor): string | undefined {
    const done = this.finalGrads.get(tensor.name);
    if (done) return done;
    const parts = this.grads.get(tensor.name);
    if (!parts || parts.length === 0) return undefined;
    const sum = parts.length === 1 ? parts[0]! : this.w.op1('Sum', parts, {}, `g_${tensor.name}`);
    this.finalGrads.set(tensor.name, sum);
    return sum;
  }

  private push(name: string, gradient: string): void {
    if (this.finalGrads.has(name)) throw new Error(`gradient of ${name} was read before all its contributions arrived`);
    const list = this.grads.get(name);
    if (list) list.push(gradient);
    else this.grads.set(name, [gradient]);
  }
}

/** Broadcast result shape (numpy rules, aligned right). */
export function broadcastShape(a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Sums a gradient of shape `out` back to a broadcast input of shape `input`. */
export function unbroadcast(w: OnnxWriter, g: string, out: Shape, input: Shape): string {
  const lead = out.length - input.length;
  const kept: number[] = [];
  for (let i = lead; i < out.length; i++) if (input[i - lead] === 1 && out[i] !== 1) kept.push(i);
  let result = g;
  if (kept.length > 0) result = w.op1('ReduceSum', [result, w.ints(kept)], { keepdims: 1 }, 'g_unbroadcast');
  if (lead > 0) {
    const leading = Array.from({ length: lead }, (_, i) => i);
    result = w.op1('ReduceSum', [result, w.ints(leading)], { keepdims: 0 }, 'g_unbroadcast_lead');
  }
  return result;
}
