/** Circuit commands (discover, verify): flags in, a pipeline call, JSON out. `export` is in export-graph.ts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../models/errors';
import { circuitComponentIds, validateCircuitGraph, type CircuitGraph } from '../circuits/discovery/graph';
import { checkOutputFile, writeFileAtomic } from '../circuits/files';
import { DISCOVER_DEFAULTS, discover, verify } from '../pipelines/circuits';
import { isBuiltInTask, requireFile, resolveTask } from '../pipelines/inputs';
import { discoverShard } from './shard-commands';
import { circuitFileText } from '../pipelines/exports';
import { ABLATIONS, ABLATION_DOCS, AGGREGATIONS, AGGREGATION_DOCS, DISCOVERY_METHODS, DISCOVERY_METHOD_DOCS, GRANULARITIES, GRANULARITY_DOCS, describeVocabulary } from '../vocabulary';
import { floatFlag, intFlag, oneOf, parseFlags } from './args';
import { MODEL_FLAGS, type Command } from './command';

const TASK_FLAGS = { ...MODEL_FLAGS, task: { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' }, ablation: { type: 'string' }, batch: { type: 'string' } } as const;

/** Reads and validates a circuit graph JSON file (every problem listed with its JSON path). */
export function readCircuit(file: string | undefined): CircuitGraph {
  if (!file) throw new InputError('give the circuit with --circuit circuit.json');
  requireFile(file, 'circuit file');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`cannot read the circuit (${(err as Error).message})`, path.resolve(file));
  }
  return validateCircuitGraph(raw, file);
}


export const circuitCommands: Record<string, Command> = {
  discover: {
    summary: 'find the components a task uses (heads, MLPs, neurons) and write the circuit graph',
    usage: [
      `circuit-lens discover [--model DIR] [--task ioi|greater-than|FILE.jsonl] [--n N] [--seed S] [--method M] [--granularity G] [--aggregation A] [--edges] [--top K | --budget F] [--ablation X] [--no-verify] [--batch B] [--shard k/n] --out circuit.json [--json]`,
      `defaults: --task ${DISCOVER_DEFAULTS.task} --n ${DISCOVER_DEFAULTS.n} (built-in tasks) --seed ${DISCOVER_DEFAULTS.seed} --method ${DISCOVER_DEFAULTS.method} --aggregation ${DISCOVER_DEFAULTS.aggregation} --ablation ${DISCOVER_DEFAULTS.ablation}; granularity heads (heads+mlps with --edges); top ${DISCOVER_DEFAULTS.nodeShare * 100} % of the components (${DISCOVER_DEFAULTS.edgeShare * 100} % of the edges with --edges)`,
      `--method:\n${describeVocabulary(DISCOVERY_METHOD_DOCS)}`,
      `--granularity:\n${describeVocabulary(GRANULARITY_DOCS)}`,
      `--aggregation:\n${describeVocabulary(AGGREGATION_DOCS)}`,
      `--ablation:\n${describeVocabulary(ABLATION_DOCS)}`,
      '--edges: score every head/MLP edge (one gated backward row per downstream node) and select edges instead of nodes',
    ].join('\n\n'),
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...TASK_FLAGS,
        method: { type: 'string' },
        granularity: { type: 'string' },
        aggregation: { type: 'string' },
        top: { type: 'string' },
        budget: { type: 'string' },
        out: { type: 'string' },
        edges: { type: 'boolean' },
        'no-verify': { type: 'boolean' },
        shard: { type: 'string' },
      });
      if (flags.out) checkOutputFile(flags.out);
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.shard !== undefined) {
        // One shard of the component scores: partial sums for `circuit-lens merge` (README, "Past one machine").
        const spec = flags.task ?? DISCOVER_DEFAULTS.task;
        const n = flags.n !== undefined ? intFlag(flags.n, 'n', 1, 1) : isBuiltInTask(spec) ? DISCOVER_DEFAULTS.n : undefined;
        const task = resolveTask(engine, spec, { ...(n !== undefined ? { n } : {}), seed: intFlag(flags.seed, 'seed', DISCOVER_DEFAULTS.seed) });
        return discoverShard(engine, task, {
          method: oneOf(flags.method, DISCOVERY_METHODS, 'method', DISCOVER_DEFAULTS.method),
          batchSize: intFlag(flags.batch, 'batch', DISCOVER_DEFAULTS.batchSize, 1),
          shard: flags.shard,
          out: flags.out,
          edges: !!flags.edges,
        });
      }
      const { graph, task, seconds } = await discover(
        engine,
        {
          task: flags.task ?? DISCOVER_DEFAULTS.task,
          ...(flags.n !== undefined ? { n: intFlag(flags.n, 'n', 1, 1) } : {}),
          seed: intFlag(flags.seed, 'seed', DISCOVER_DEFAULTS.seed),
          method: oneOf(flags.method, DISCOVERY_METHODS, 'method', DISCOVER_DEFAULTS.method),
          ...(flags.granularity !== undefined ? { granularity: oneOf(flags.granularity, GRANULARITIES, 'granularity', 'heads') } : {}),
          aggregation: oneOf(flags.aggregation, AGGREGATIONS, 'aggregation', DISCOVER_DEFAULTS.aggregation),
          ablation: oneOf(flags.ablation, ABLATIONS, 'ablation', DISCOVER_DEFAULTS.ablation),
          edges: !!flags.edges,
          ...(flags.top !== undefined ? { top: intFlag(flags.top, 'top', 1, 1) } : {}),
          ...(flags.budget !== undefined ? { budget: floatFlag(flags.budget, 'budget', 0.5, 0, 1) } : {}),
          verify: !flags['no-verify'],
          batchSize: intFlag(flags.batch, 'batch', DISCOVER_DEFAULTS.batchSize, 1),
        },
        ctx.job,
      );
      if (flags.out) writeFileAtomic(flags.out, circuitFileText(graph));
      const circuit = circuitComponentIds(graph);
      const json = {
        task: task.name,
        examples: task.examples.length,
        method: graph.method.name,
        granularity: graph.granularity,
        aggregation: graph.method.aggregation,
        circuit,
        circuit_size: circuit.length,
        components: graph.selection.level === 'node' ? graph.selection.candidates : Object.keys(graph.scores ?? {}).length,
        edges: flags.edges ? graph.edges.map((e) => ({ id: e.id, relevance: e.relevance })) : undefined,
        discovery_seconds: seconds,
        metrics: graph.metrics ?? null,
        out: flags.out ? path.resolve(flags.out) : null,
        graph: flags.out ? undefined : graph,
      };
      const m = graph.metrics;
      const text =
        `${graph.method.name} circuit for ${task.name} (${task.examples.length} prompts): ${circuit.join(' ')}` +
        (m ? `\nfull ${m.full?.toFixed(3)}  circuit ${m.circuit?.toFixed(3)}  all ablated ${m.empty?.toFixed(3)}  faithfulness ${m.faithfulness?.toFixed(3)}  completeness ${m.completeness?.toFixed(3)}  CPR ${m.cpr?.toFixed(3)}  CMD ${m.cmd?.toFixed(3)}` : '');
      return { json, text };
    },
  },

  verify: {
    summary: 'ablate everything outside a circuit (and the circuit itself) and report faithfulness',
    usage: `circuit-lens verify [--model DIR] --circuit circuit.json [--task ioi|greater-than|FILE.jsonl] [--n N] [--seed S] [--ablation ${ABLATIONS.join('|')}] [--json]\n\nWithout --task the circuit's own task is made again (built-in tasks: same size and seed).`,
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...TASK_FLAGS, circuit: { type: 'string' } });
      const graph = readCircuit(flags.circuit);
      const engine = await ctx.openEngine(flags.model, flags);
      const v = await verify(
        engine,
        graph,
        {
          ...(flags.task !== undefined ? { task: flags.task } : {}),
          ...(flags.n !== undefined ? { n: intFlag(flags.n, 'n', 1, 1) } : {}),
          ...(flags.seed !== undefined ? { seed: intFlag(flags.seed, 'seed', 0) } : {}),
          ...(flags.ablation !== undefined ? { ablation: oneOf(flags.ablation, ABLATIONS, 'ablation', DISCOVER_DEFAULTS.ablation) } : {}),
          batchSize: intFlag(flags.batch, 'batch', DISCOVER_DEFAULTS.batchSize, 1),
        },
        ctx.job,
      );
      const e = v.evaluation;
      const json = { ...e, circuit_components: v.circuit, curve: v.curve.points, cpr: v.curve.cpr, cmd: v.curve.cmd };
      const text = `full ${e.full.toFixed(3)}  circuit ${e.circuit.toFixed(3)}  ablated ${e.complement.toFixed(3)}  all ablated ${e.empty.toFixed(3)}  faithfulness ${e.faithfulness.toFixed(3)}  completeness ${e.completeness.toFixed(3)}`;
      return { json, text };
    },
  },
};
