/**
 * Two cheap views on one prompt that researchers reach for next to its graph:
 * - the logit lens (nostalgebraist 2020): the residual stream after each layer, at each
 *   position, read through the final norm and the unembedding; the top tokens per cell;
 * - steer-and-generate: scale (or, with scale 0, zero-ablate) one head or MLP block at one
 *   position, continue the prompt greedily, and put the text beside the unmodified continuation.
 */
import type { Engine } from '../engine/engine';
import { parseComponent } from '../engine/engine';
import { InputError } from '../models/errors';
import type { LinearRef } from '../models/spec';

export interface LogitLens {
  /** Row labels: `embed`, then `after l0` … `after l{L−1}` (the last is the model's own logits). */
  readonly layers: string[];
  readonly positions: number[];
  /** [layer][position] → top tokens. */
  readonly top: { id: number; token: string | null; logit: number; probability: number }[][][];
}

/** Logit lens of a prompt; `positions` defaults to all. */
export async function logitLens(engine: Engine, ids: readonly number[], options: { top?: number; positions?: readonly number[] } = {}): Promise<LogitLens> {
  const spec = engine.spec;
  if (spec.projectOut) throw new InputError('the logit lens does not support models with a projection before the unembedding yet');
  const k = options.top ?? 5;
  const positions = options.positions ?? ids.map((_, t) => t);
  for (const t of positions) if (!Number.isInteger(t) || t < 0 || t >= ids.length) throw new InputError(`position ${t} is out of range for a prompt of ${ids.length} tokens`);
  // The prompt-graph readout carries the residual stream before every layer and after the last.
  const { tensors } = await engine.promptGraphTensors(ids, { kind: 'logit', position: ids.length - 1, token: 0 }, 'attnlrp');
  const D = spec.dModel;
  const streams = [...Array.from({ length: spec.nLayers }, (_, l) => tensors[`pg_x_pre_${l}`]!), tensors['pg_x_final']!];
  const weights = engine.loaded.weights;
  const gamma = spec.finalNorm ? weights.readFloat32(spec.finalNorm.weight) : null;
  const beta = spec.finalNorm?.bias ? weights.readFloat32(spec.finalNorm.bias) : null;
  const unembed = readLinear(engine, spec.lmHead);
  const tokenizer = engine.tokenizer;
  const top = streams.map((x) =>
    positions.map((t) => {
      const h = normalise(x.subarray(t * D, (t + 1) * D), gamma, beta, spec.norm.kind, spec.norm.eps);
      const logits = unembed(h);
      let max = -Infinity;
      for (const v of logits) max = Math.max(max, v);
      let z = 0;
      for (const v of logits) z += Math.exp(v - max);
      const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!).slice(0, k);
      return order.map((id) => ({ id, token: tokenizer ? tokenizer.tokenString(id) : null, logit: logits[id]!, probability: Math.exp(logits[id]! - max) / z }));
    }),
  );
  return { layers: ['embed', ...Array.from({ length: spec.nLayers }, (_, l) => `after l${l}`)], positions: [...positions], top };
}

function normalise(x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, kind: 'layernorm' | 'rmsnorm', eps: number): Float32Array {
  const D = x.length;
  const out = new Float32Array(D);
  if (!gamma) return x.slice();
  if (kind === 'layernorm') {
    let mean = 0;
    for (const v of x) mean += v;
    mean /= D;
    let variance = 0;
    for (const v of x) variance += (v - mean) ** 2;
    const r = 1 / Math.sqrt(variance / D + eps);
    for (let d = 0; d < D; d++) out[d] = (x[d]! - mean) * r * gamma[d]! + (beta ? beta[d]! : 0);
  } else {
    let ms = 0;
    for (const v of x) ms += v * v;
    const r = 1 / Math.sqrt(ms / D + eps);
    for (let d = 0; d < D; d++) out[d] = x[d]! * r * gamma[d]!;
  }
  return out;
}

/** x ↦ x·W (+ b) for a linear layer as stored. */
function readLinear(engine: Engine, ref: LinearRef): (x: Float32Array) => Float32Array {
  const weights = engine.loaded.weights;
  const w = weights.readFloat32(ref.weight);
  const [rows, cols] = weights.info(ref.weight).shape as [number, number];
  const bias = ref.bias ? weights.readFloat32(ref.bias) : null;
  return (x) => {
    if (ref.layout === 'out_in') {
      const out = new Float32Array(rows);
      for (let o = 0; o < rows; o++) {
        let sum = bias ? bias[o]! : 0;
        const base = o * cols;
        for (let i = 0; i < cols; i++) sum += w[base + i]! * x[i]!;
        out[o] = sum;
      }
      return out;
    }
    const out = new Float32Array(cols);
    if (bias) out.set(bias);
    for (let i = 0; i < rows; i++) {
      const xi = x[i]!;
      const base = i * cols;
      for (let o = 0; o < cols; o++) out[o] += w[base + o]! * xi;
    }
    return out;
  };
}

export interface SteerResult {
  readonly node: string;
  readonly scale: number;
  readonly clean: { ids: number[]; text: string | null };
  readonly steered: { ids: number[]; text: string | null };
}

/**
 * Greedy continuation with one head (`a{l}.h{h}`) or MLP block (`m{l}`) scaled at one position.
 * Each step runs the current text once with hooks and once with the component's activation at
 * that position multiplied by `scale` (its other positions keep their values of this step, which
 * is exact: a layer's activations do not depend on its own outputs).
 */
export async function steerAndGenerate(engine: Engine, ids: readonly number[], node: string, position: number, scale: number, maxNewTokens: number): Promise<SteerResult> {
  const spec = engine.spec;
  const component = parseComponent(node, spec);
  if (component.kind === 'neuron') throw new InputError('steer a head (a<l>.h<h>) or an MLP block (m<l>), not a single neuron');
  if (!Number.isInteger(position) || position < 0 || position >= ids.length) throw new InputError(`position ${position} is out of range for a prompt of ${ids.length} tokens (0..${ids.length - 1})`);
  if (!Number.isFinite(scale)) throw new InputError(`the scale must be a finite number, got ${scale}`);
  const { nHeads: H, headDim: dh, dMlp: F } = spec;
  const argmax = (v: Float32Array) => v.reduce((best, x, i) => (x > v[best]! ? i : best), 0);
  const generate = async (steered: boolean) => {
    const sequence = [...ids];
    const fresh: number[] = [];
    for (let i = 0; i < maxNewTokens && sequence.length < spec.maxPositions; i++) {
      let row;
      if (!steered) {
        [row] = await engine.forward({ ids: [sequence] });
      } else {
        const [hooked] = await engine.forward({ ids: [sequence], hooks: true });
        const heads = hooked!.headZ!;
        const neurons = hooked!.mlpPost!;
        if (component.kind === 'head') {
          const z = heads[component.layer]!;
          for (let j = 0; j < dh; j++) z[(position * H + component.head) * dh + j]! *= scale;
        } else {
          const p = neurons[component.layer]!;
          for (let f = 0; f < F; f++) p[position * F + f]! *= scale;
        }
        [row] = await engine.forward({ ids: [sequence], interventions: { ablate: [node], headReplacement: [heads], neuronReplacement: [neurons] } });
      }
      const next = argmax(row!.logitsLast);
      sequence.push(next);
      fresh.push(next);
      if (next === spec.eosTokenId) break;
    }
    return { ids: fresh, text: engine.tokenizer ? engine.tokenizer.decode(fresh) : null };
  };
  return { node, scale, clean: await generate(false), steered: await generate(true) };
}
