/**
 * Circuit discovery: score every component on a task's prompts with one method, aggregate over
 * the reference set, and build the circuit graph. Methods share the data and the batching, so
 * LRP and its baselines are compared on the same prompts in the same run.
 *
 * - `attnlrp`, `cp-lrp`: relevance of the task's explained quantity (IO − S logit difference for
 *   IOI) at heads (z ⊙ g̃) and MLP neurons, one modified backward pass per batch.
 * - `gradient`: gradient × activation with the plain gradient (the same readouts, no LRP rules).
 * - `activation`: activation magnitude (‖z_h‖ and |post| summed over positions), forward only.
 * - `eap`: attribution patching (Nanda 2023; Syed et al. 2023), the first-order estimate of what
 *   patching a component's corrupted activation in would cost the metric:
 *   m(clean) − m(patched) ≈ (clean − corrupted activation) · ∇m. Needs corrupted prompts. The
 *   sign makes an important component score positive, like the LRP relevances, so every method
 *   is ranked the same way (signed value, or |value|).
 */
import type { Attribution, Composite, Target } from '../../engine/api';
import { aggregateAttributions, aggregateVectors, DEFAULT_AGGREGATION, type ComponentRelevance } from './aggregate';
import { CircuitInputError } from '../errors';
import { buildCircuitGraph, type CircuitGraph } from './graph';
import type { ModelRunner } from '../runner';
import { attributionTarget, type Task } from '../tasks/tasks';

import type { DiscoveryMethod } from '../../vocabulary';
import { type Aggregation, type Granularity } from '../../vocabulary';

export interface DiscoveryOptions {
  readonly method: DiscoveryMethod;
  readonly aggregation?: Aggregation;
  readonly batchSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

type PerSample = Pick<Attribution, 'headRelevance' | 'mlpRelevance'>;

/** Per-component scores aggregated over the task's examples. */
export async function scoreComponents(runner: ModelRunner, task: Task, options: DiscoveryOptions): Promise<ComponentRelevance> {
  return aggregateAttributions(await scoreSamples(runner, task, options), options.aggregation ?? DEFAULT_AGGREGATION);
}

/** Per-example component scores, before aggregation (shards sum them: shard.ts). */
export async function scoreSamples(runner: ModelRunner, task: Task, options: DiscoveryOptions): Promise<PerSample[]> {
  const batchSize = options.batchSize ?? 32;
  const samples: PerSample[] = [];
  const examples = task.examples;
  for (let start = 0; start < examples.length; start += batchSize) {
    const batch = examples.slice(start, start + batchSize);
    samples.push(...(await scoreBatch(runner, batch, options.method)));
    options.onProgress?.(Math.min(start + batchSize, examples.length), examples.length);
  }
  return samples;
}

async function scoreBatch(runner: ModelRunner, batch: Task['examples'], method: DiscoveryMethod): Promise<PerSample[]> {
  const ids = batch.map((e) => e.ids);
  if (method === 'activation') {
    const rows = await runner.forward({ ids, hooks: true });
    const { nLayers: L, nHeads: H, headDim: dh, dMlp: F } = runner.spec;
    return rows.map((row, b) => {
      const T = ids[b]!.length;
      const headRelevance = Array.from({ length: L }, (_, l) =>
        Array.from({ length: H }, (__, h) => {
          let total = 0;
          for (let t = 0; t < T; t++) {
            let sq = 0;
            for (let d = 0; d < dh; d++) sq += row.headZ![l]![(t * H + h) * dh + d]! ** 2;
            total += Math.sqrt(sq);
          }
          return total;
        }),
      );
      const mlpRelevance = Array.from({ length: L }, (_, l) => {
        const out = new Float32Array(F);
        for (let t = 0; t < T; t++) for (let n = 0; n < F; n++) out[n]! += Math.abs(row.mlpPost![l]![t * F + n]!);
        return out;
      });
      return { headRelevance, mlpRelevance };
    });
  }
  // A set contrast (greater-than: later years vs earlier ones) explains the mean logit of the
  // good tokens minus the mean logit of the bad ones.
  const targets = batch.map(targetOf);
  if (method === 'eap') {
    // Attribution patching: clean forward/backward with the corrupted activations fed as (unused)
    // replacements, so the graph reports Σ corrupted ⊙ ∇ next to Σ clean ⊙ ∇.
    for (const e of batch) {
      if (!e.corruptedIds) throw new CircuitInputError(e.origin, 'eap needs a corrupted prompt (corrupted_prompt or corrupted_ids) on every example');
      if (e.corruptedIds.length !== e.ids.length) throw new CircuitInputError(e.origin, 'the corrupted prompt must have as many tokens as the prompt');
    }
    const corrupted = await runner.forward({ ids: batch.map((e) => e.corruptedIds!), hooks: true });
    const attributions = await runner.attribute({
      ids,
      targets,
      mode: 'gradient',
      interventions: { ablate: [], headReplacement: corrupted.map((r) => r.headZ!), neuronReplacement: corrupted.map((r) => r.mlpPost!) },
    });
    // (clean − corrupted) · ∇: positive when patching the component in lowers the metric.
    return attributions.map((a) => ({
      headRelevance: a.headPatch!.map((row, l) => row.map((patched, h) => a.headRelevance[l]![h]! - patched)),
      mlpRelevance: a.neuronPatch!.map((patched, l) => patched.map((v, n) => a.mlpRelevance![l]![n]! - v)),
    }));
  }
  return runner.attribute({ ids, targets, mode: method as Composite });
}

/**
 * Edge relevance aggregated over the task's examples (LRP modes and the plain gradient), keyed
 * `source->target`. Output-projection bias terms are dropped: they are not components.
 */
export async function scoreEdges(runner: ModelRunner, task: Task, options: DiscoveryOptions): Promise<{ source: string; target: string; relevance: number }[]> {
  if (options.method === 'activation' || options.method === 'eap') throw new Error(`edge relevance is computed with attnlrp, cp-lrp or gradient, not ${options.method}`);
  const mode = options.method as Composite;
  // Each prompt takes one batch row per downstream node; a few prompts per run keep memory flat.
  const promptsPerRun = Math.max(1, Math.floor((options.batchSize ?? 32) / 8));
  const perEdge = new Map<string, { source: string; target: string; samples: number[] }>();
  const examples = task.examples;
  for (let start = 0; start < examples.length; start += promptsPerRun) {
    const batch = examples.slice(start, start + promptsPerRun);
    const results = await runner.edges(batch.map((e) => ({ ids: e.ids, target: targetOf(e) })), mode);
    for (const result of results) {
      for (const edge of result.edges) {
        if (edge.source.endsWith('.bias')) continue;
        const key = `${edge.source}->${edge.target}`;
        let entry = perEdge.get(key);
        if (!entry) perEdge.set(key, (entry = { source: edge.source, target: edge.target, samples: [] }));
        entry.samples.push(edge.relevance);
      }
    }
    options.onProgress?.(Math.min(start + promptsPerRun, examples.length), examples.length);
  }
  const entries = [...perEdge.values()];
  const aggregated = aggregateVectors(
    examples.map((_, i) => entries.map((e) => e.samples[i]!)),
    options.aggregation ?? DEFAULT_AGGREGATION,
    'edge relevance',
  );
  return entries.map((e, i) => ({ source: e.source, target: e.target, relevance: aggregated[i]! }));
}

function targetOf(example: Task['examples'][number]): Target {
  if (example.target === undefined && example.goodTokens?.length && example.badTokens?.length) {
    return { kind: 'set_diff', position: example.ids.length - 1, token: example.goodTokens[0]!, good: example.goodTokens, bad: example.badTokens };
  }
  const target = attributionTarget(example);
  if (!target) throw new CircuitInputError(example.origin, 'this example has no target token to explain');
  return target;
}

export interface DiscoverResult {
  readonly graph: CircuitGraph;
  readonly relevance: ComponentRelevance;
}

/** Scores components and returns the full (unselected) circuit graph. */
export async function discoverCircuit(
  runner: ModelRunner,
  task: Task,
  options: DiscoveryOptions & { readonly granularity: Granularity; readonly modelName: string; readonly edges?: boolean },
): Promise<DiscoverResult> {
  const relevance = await scoreComponents(runner, task, options);
  const edges = options.edges ? await scoreEdges(runner, task, options) : undefined;
  if (edges && options.granularity !== 'heads+mlps') throw new Error('edge circuits are built over heads and MLP blocks: use granularity heads+mlps');
  const { spec } = runner;
  const graph = buildCircuitGraph({
    model: { name: options.modelName, nLayers: spec.nLayers, nHeads: spec.nHeads, dModel: spec.dModel, dMlp: spec.dMlp },
    task: { name: task.name, metric: task.metric, examples: task.examples.length },
    method: { name: options.method, aggregation: options.aggregation ?? DEFAULT_AGGREGATION },
    heads: relevance.heads,
    ...(options.granularity === 'heads+mlps' && relevance.mlps ? { mlps: relevance.mlps } : {}),
    ...((options.granularity === 'neurons' || options.granularity === 'heads+neurons') && relevance.neurons ? { neurons: relevance.neurons } : {}),
    ...(edges ? { edges } : {}),
  });
  return { graph, relevance };
}
