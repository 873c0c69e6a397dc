/**
 * Attributing one prompt: the CLI's `attribute` and the editor's token heatmap. The target is
 * resolved the same way for both (top-1 by default, a token, or token − foil).
 */
import type { Attribution, Composite, Target } from '../engine/api';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import { cancellable, checkCancelled, type JobContext } from './context';
import { singleToken } from './inputs';

/** A token given as text or as an id. */
export type TokenRef = { readonly text: string } | { readonly id: number };

export interface AttributeOptions {
  /** The prompt as text (tokenized with offsets) or as token ids. */
  readonly prompt: { readonly text: string } | { readonly ids: readonly number[] };
  /** Explained token; default: the model's top-1 next token at `position`. */
  readonly target?: TokenRef;
  /** Subtracted token: explains logit(target) − logit(foil). */
  readonly foil?: TokenRef;
  /** Explain logit − mean logit instead (cannot be combined with a foil). */
  readonly contrastive?: boolean;
  /** Explained position; default: the last. */
  readonly position?: number;
  readonly mode: Composite;
  /** HF tensor names whose weight relevance is wanted. */
  readonly weights?: readonly string[];
  /** Per-neuron MLP relevance (costs a `[L][d_mlp]` readout). */
  readonly neurons?: boolean;
}

export interface PromptAttributionResult {
  readonly ids: number[];
  /** Token strings, or null for a model without a tokenizer. */
  readonly tokens: string[] | null;
  /** Character spans in the prompt text (text prompts only). */
  readonly offsets: [number, number][] | null;
  readonly text: string | null;
  readonly target: Target;
  readonly attribution: Attribution;
}

export function tokenIdOf(engine: Engine, ref: TokenRef, what: string): number {
  if ('id' in ref) {
    if (!Number.isInteger(ref.id) || ref.id < 0 || ref.id >= engine.spec.vocabSize) throw new InputError(`the ${what} id ${ref.id} is outside the vocabulary (0..${engine.spec.vocabSize - 1})`);
    return ref.id;
  }
  return singleToken(engine, ref.text, what);
}

export function argmaxOf(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function encodePrompt(engine: Engine, prompt: AttributeOptions['prompt']): { ids: number[]; offsets: [number, number][] | null; text: string | null } {
  if ('ids' in prompt) {
    const ids = [...prompt.ids];
    if (ids.length === 0) throw new InputError('the prompt has no tokens');
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= engine.spec.vocabSize);
    if (bad !== undefined) throw new InputError(`token id ${bad} is outside the vocabulary (0..${engine.spec.vocabSize - 1})`);
    return { ids, offsets: null, text: null };
  }
  if (!engine.tokenizer) throw new InputError('this model has no tokenizer, so text prompts cannot be attributed: give token ids');
  const { ids, offsets } = engine.tokenizer.encode(prompt.text);
  if (ids.length === 0) throw new InputError('the prompt has no tokens');
  return { ids, offsets, text: prompt.text };
}

export async function attributePrompt(engine: Engine, options: AttributeOptions, ctx: JobContext = {}): Promise<PromptAttributionResult> {
  const runner = cancellable(engine, ctx);
  const { ids, offsets, text } = encodePrompt(engine, options.prompt);
  const maxPositions = engine.spec.maxPositions;
  if (maxPositions > 0 && ids.length > maxPositions) throw new InputError(`the prompt has ${ids.length} tokens; this model takes at most ${maxPositions}`);
  const position = options.position ?? ids.length - 1;
  if (!Number.isInteger(position) || position < 0 || position >= ids.length) {
    throw new InputError(`position ${position} is out of range for a prompt of ${ids.length} tokens (0..${ids.length - 1})`);
  }
  if (options.foil !== undefined && options.contrastive) throw new InputError('a foil and a contrastive target are two different targets: pick one');
  let token: number;
  if (options.target !== undefined) token = tokenIdOf(engine, options.target, 'target token');
  else {
    ctx.progress?.({ message: 'Predicting the next token…' });
    const [row] = await runner.forward({ ids: [ids.slice(0, position + 1)] });
    token = argmaxOf(row!.logitsLast);
  }
  const foil = options.foil === undefined ? undefined : tokenIdOf(engine, options.foil, 'foil token');
  const target: Target = {
    kind: foil !== undefined ? 'logit_diff' : options.contrastive ? 'contrastive' : 'logit',
    position,
    token,
    ...(foil !== undefined ? { foil } : {}),
  };
  checkCancelled(ctx);
  ctx.progress?.({ message: 'Propagating relevance…' });
  const [attribution] = await runner.attribute({
    ids: [ids],
    targets: [target],
    mode: options.mode,
    ...(options.weights && options.weights.length > 0 ? { weights: options.weights } : {}),
    ...(options.neurons !== undefined ? { neurons: options.neurons } : {}),
  });
  const tokenizer = engine.tokenizer;
  return { ids, tokens: tokenizer ? ids.map((id) => tokenizer.tokenString(id)) : null, offsets, text, target, attribution: attribution! };
}

/** The k most likely next tokens with probabilities (softmax over the whole vocabulary). */
export function topTokens(logits: Float32Array, k: number, tokenString: (id: number) => string | null): { id: number; text: string | null; logit: number; prob: number }[] {
  if (k <= 0 || logits.length === 0) return [];
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const order: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (order.length < k || logits[i]! > logits[order[order.length - 1]!]!) {
      order.push(i);
      order.sort((a, b) => logits[b]! - logits[a]!);
      if (order.length > k) order.pop();
    }
  }
  return order.map((id) => ({ id, text: tokenString(id), logit: logits[id]!, prob: Math.exp(logits[id]! - max) / sum }));
}
