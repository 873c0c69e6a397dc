/**
 * Two cheap views on one prompt that researchers reach for next to its graph:
 * - the logit lens (nostalgebraist 2020): the residual stream after each layer, at each
 *   position, read through the final norm and the unembedding; the top tokens per cell;
 * - steer-and-generate: scale (or, with scale 0, zero-ablate) one head or MLP block at one
 *   position, continue the prompt greedily, and put the text beside the unmodified continuation.
 */
import type { Engine } from '../../engine/engine';
import { parseComponent } from '../../engine/engine';
import { InputError } from '../../models/errors';

export interface LogitLens {
  /** Row labels: `embed`, then `after l0` … `after l{L−1}` (the last is the model's own logits). */
  readonly layers: string[];
  readonly positions: number[];
  /** [layer][position] → top tokens. */
  readonly top: { id: number; token: string | null; logit: number; probability: number }[][][];
}

/** Logit lens of a prompt (in the ONNX graph: build.ts `logitLens`); `positions` defaults to all. */
export async function logitLens(engine: Engine, ids: readonly number[], options: { top?: number; positions?: readonly number[] } = {}): Promise<LogitLens> {
  const spec = engine.spec;
  const k = options.top ?? 5;
  const positions = options.positions ?? ids.map((_, t) => t);
  for (const t of positions) if (!Number.isInteger(t) || t < 0 || t >= ids.length) throw new InputError(`position ${t} is out of range for a prompt of ${ids.length} tokens`);
  const layers = await engine.logitLens(ids, k);
  const tokenizer = engine.tokenizer;
  const top = layers.map(({ values, indices, lse }) =>
    positions.map((t) =>
      Array.from({ length: k }, (_, i) => {
        const id = Number(indices[t * k + i]!);
        const logit = values[t * k + i]!;
        return { id, token: tokenizer ? tokenizer.tokenString(id) : null, logit, probability: Math.exp(logit - lse[t]!) };
      }),
    ),
  );
  return { layers: ['embed', ...Array.from({ length: spec.nLayers }, (_, l) => `after l${l}`)], positions: [...positions], top };
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
