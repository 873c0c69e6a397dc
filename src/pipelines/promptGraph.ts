/**
 * The prompt-graph use case: one prompt in, its position-resolved attribution graph out
 * (src/circuits/prompt/promptGraph.ts), and the clicked-node ablation that the panel re-runs.
 * One implementation for `circuit-lens graph` and the editor's prompt graph panel, so the file
 * the CLI writes and the graph the panel draws are the same for the same settings.
 */
import type { Composite, Target } from '../engine/api';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import {
  ablatePromptNodes,
  buildPromptGraph,
  PROMPT_ABLATIONS,
  PROMPT_GRAPH_DEFAULTS,
  verifyPromptGraph,
  type PromptAblation,
  type PromptGraph,
} from '../circuits/prompt/promptGraph';
import { argmaxOf, tokenIdOf, type TokenRef } from './attribution';
import { cancellable, checkCancelled, type JobContext } from './context';
import type { PromptGraphWire } from '../protocol/promptGraph';

// Compile-time check that the wire schema and the graph type agree, both ways: the worker sends
// this object as is, and the panel reads it through the schema.
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const PROMPT_GRAPH_WIRE_MATCHES: Mutual<PromptGraphWire, PromptGraph> = true;

export interface PromptGraphOptions {
  /** The prompt as text or as token ids; the last position is explained. */
  readonly prompt: { readonly text: string } | { readonly ids: readonly number[] };
  /** Explained token; default: the model's top-1 next token. */
  readonly target?: TokenRef;
  /** Subtracted token: explains logit(target) − logit(foil). */
  readonly foil?: TokenRef;
  readonly mode?: Composite;
  readonly nodeThreshold?: number;
  readonly edgeThreshold?: number;
  /** Share of the kept heads' QK score whose edges are added (default: the edge threshold). */
  readonly qkThreshold?: number;
  /** Predicted-vs-ablated check of the top `count` nodes (`--verify`). */
  readonly verify?: { readonly ablation: PromptAblation; readonly count?: number; readonly corrupted?: { readonly text: string } | { readonly ids: readonly number[] } };
}

function idsOf(engine: Engine, prompt: PromptGraphOptions['prompt']): { ids: number[]; text: string | null } {
  if ('ids' in prompt) {
    const ids = [...prompt.ids];
    if (ids.length === 0) throw new InputError('the prompt has no tokens');
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= engine.spec.vocabSize);
    if (bad !== undefined) throw new InputError(`token id ${bad} is outside the vocabulary (0..${engine.spec.vocabSize - 1})`);
    return { ids, text: null };
  }
  const { ids } = engine.encode(prompt.text);
  if (ids.length === 0) throw new InputError('the prompt has no tokens');
  return { ids, text: prompt.text };
}

/** The prompt graph of one prompt at its last position (and, with `verify`, its verification). */
export async function promptGraph(engine: Engine, options: PromptGraphOptions, ctx: JobContext = {}): Promise<PromptGraph> {
  const runner = cancellable(engine, ctx);
  const { ids, text } = idsOf(engine, options.prompt);
  const position = ids.length - 1;
  const foil = options.foil === undefined ? undefined : tokenIdOf(engine, options.foil, 'foil token');
  let token: number;
  if (options.target !== undefined) token = tokenIdOf(engine, options.target, 'target token');
  else {
    ctx.progress?.({ message: 'Predicting the next token…' });
    token = argmaxOf((await runner.forward({ ids: [ids] }))[0]!.logitsLast);
  }
  const target: Target = foil === undefined ? { kind: 'logit', position, token } : { kind: 'logit_diff', position, token, foil };
  const verify = options.verify;
  if (verify && !PROMPT_ABLATIONS.includes(verify.ablation)) throw new InputError(`unknown ablation "${String(verify.ablation)}" (use ${PROMPT_ABLATIONS.join(', ')})`);
  const corruptedIds = verify?.corrupted ? idsOf(engine, verify.corrupted).ids : undefined;
  if (verify?.ablation === 'resample' && !corruptedIds) throw new InputError('resample verification needs a corrupted prompt (a counterfactual of the same token length)');
  checkCancelled(ctx);
  ctx.progress?.({ message: 'Building the prompt graph…', fraction: 0.1 });
  // The raw engine: prompt graphs cache the model's weights per Engine object (a WeakMap), which
  // a fresh cancellable proxy per job would miss; cancellation is checked between the steps.
  const graph = await buildPromptGraph(engine, ids, target, {
    mode: options.mode ?? 'attnlrp',
    nodeThreshold: options.nodeThreshold ?? PROMPT_GRAPH_DEFAULTS.nodeThreshold,
    edgeThreshold: options.edgeThreshold ?? PROMPT_GRAPH_DEFAULTS.edgeThreshold,
    ...(options.qkThreshold !== undefined ? { qkThreshold: options.qkThreshold } : {}),
    text,
  });
  if (verify) {
    checkCancelled(ctx);
    ctx.progress?.({ message: `Ablating the top nodes (${verify.ablation})…`, fraction: 0.7 });
    graph.metrics.verification = await verifyPromptGraph(engine, graph, { ablation: verify.ablation, ...(verify.count !== undefined ? { count: verify.count } : {}), ...(corruptedIds ? { corruptedIds } : {}) });
  }
  return graph;
}

/** The part of a prompt graph that re-running it needs: the prompt and the explained target. */
export interface PromptGraphTarget {
  readonly ids: readonly number[];
  readonly metric: PromptGraph['task']['metric'];
  readonly position: number;
  readonly token: number;
  readonly foil?: number;
}

/**
 * The explained value of a prompt graph's target with each node ablated alone at its position
 * (`ablatePromptNodes`): what the panel's "Ablate at this position & rerun" runs. The graph must
 * come from the loaded model (its prompt ids are re-run).
 */
export async function ablatePromptGraphNodes(engine: Engine, of: PromptGraphTarget, nodes: readonly string[], ablation: PromptAblation, ctx: JobContext = {}): Promise<{ full: number; ablated: number[] }> {
  if (nodes.length === 0) throw new InputError('no node to ablate');
  const bad = of.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= engine.spec.vocabSize);
  if (bad !== undefined) throw new InputError(`the prompt graph's token id ${bad} is outside the loaded model's vocabulary: load the model the graph was built on`);
  if (!Number.isInteger(of.position) || of.position < 0 || of.position >= of.ids.length) throw new InputError(`the explained position ${of.position} is outside the prompt (0..${of.ids.length - 1})`);
  for (const t of [of.token, of.foil]) if (t !== undefined && (!Number.isInteger(t) || t < 0 || t >= engine.spec.vocabSize)) throw new InputError(`token id ${t} is outside the vocabulary (0..${engine.spec.vocabSize - 1})`);
  if (of.metric === 'logit_diff' && of.foil === undefined) throw new InputError('a logit difference needs its foil token');
  ctx.progress?.({ message: `Re-running the prompt with ${nodes.join(', ')} ablated (${ablation})…` });
  const graph = {
    prompt: { ids: [...of.ids], text: null, tokens: null },
    task: { name: 'prompt', metric: of.metric, examples: 1 },
    // ablatePromptNodes reads the position and tokens only.
    target: { position: of.position, token: of.token, ...(of.foil !== undefined ? { foil: of.foil } : {}), text: null, value: NaN, probability: NaN, competitors: [] },
  } satisfies Pick<PromptGraph, 'prompt' | 'target' | 'task'>;
  return ablatePromptNodes(cancellable(engine, ctx), graph, nodes, ablation);
}
