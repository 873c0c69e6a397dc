/** Circuit commands (discover, verify) registered into the CLI's table. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../models/errors';
import { AGGREGATION_MODES, type AggregationMode } from '../circuits/aggregate';
import { DISCOVERY_METHODS, discoverCircuit, type DiscoveryMethod } from '../circuits/discover';
import { ABLATION_KINDS, evaluateCircuit, faithfulnessCurve, type AblationKind } from '../circuits/faithfulness';
import { builtInTask } from '../circuits/generators';
import { circuitComponentIds, GRANULARITIES, selectEdges, selectNodes, validateCircuitGraph, type CircuitGraph, type Granularity } from '../circuits/graph';
import type { ModelRunner } from '../circuits/runner';
import { loadTaskFile, type Task } from '../circuits/tasks';
import { toEapIgJson, toNeuronpediaJson, validateEapIgJson, validateNeuronpediaJson } from '../circuits/export';
import { argmaxOf } from './format';
import type { Engine } from '../engine/engine';
import { componentId } from '../models/spec';
import { floatFlag, intFlag, oneOf, parseFlags } from './args';
import { MODEL_FLAGS, type Command } from './command';
import { writeFileAtomic } from '../circuits/files';
import { discoverShard } from './shard-commands';

const TASK_FLAGS = { ...MODEL_FLAGS, task: { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' }, ablation: { type: 'string' }, batch: { type: 'string' } } as const;


/** `ioi` and `greater-than` are generated for the model's tokenizer; anything else is a JSONL file. */
export function loadTask(engine: Engine, spec: string | undefined, n: number | undefined, seed: number): Task {
  if (!spec) throw new InputError('give the task with --task ioi|greater-than|FILE.jsonl');
  const tokenizer = engine.tokenizer;
  const encode = tokenizer ? (text: string) => tokenizer.encodeIds(text) : undefined;
  let task: Task;
  if (spec === 'ioi' || spec === 'greater-than') {
    if (!tokenizer) throw new InputError(`the built-in ${spec} task needs a model with a tokenizer; pass a JSONL file of token ids instead`);
    task = builtInTask(spec, tokenizer, n ?? 100, seed);
  } else {
    if (!fs.existsSync(spec)) throw new InputError(`task file does not exist`, path.resolve(spec));
    task = loadTaskFile(spec, { ...(encode ? { encode } : {}), vocabSize: engine.spec.vocabSize });
  }
  if (n !== undefined && task.examples.length > n) task = { ...task, examples: task.examples.slice(0, n) };
  if (task.examples.length === 0) throw new InputError(`the task "${spec}" has no examples`);
  return task;
}

/** Every head, plus MLP blocks when the circuit has them: what "everything else ablated" means. */
function universeFor(engine: Engine, graph: Pick<CircuitGraph, 'nodes'>): string[] {
  const { nLayers, nHeads } = engine.spec;
  const ids: string[] = [];
  const withMlps = graph.nodes.some((node) => node.kind === 'mlp');
  const neurons = graph.nodes.filter((node) => node.kind === 'neuron').map((node) => node.id);
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) ids.push(componentId.head(l, h));
    if (withMlps) ids.push(componentId.mlp(l));
  }
  return [...ids, ...neurons];
}

async function verifyGraph(engine: Engine, task: Task, graph: CircuitGraph, full: CircuitGraph, ablation: AblationKind, batchSize: number) {
  const circuit = circuitComponentIds(graph);
  // The curve ranks components the way the circuit was selected (signed or by magnitude).
  const score = (r: number) => (graph.selection.absolute ? Math.abs(r) : r);
  const ranked = [...full.nodes].filter((node) => node.kind !== 'input' && node.kind !== 'logits').sort((a, b) => score(b.relevance) - score(a.relevance)).map((node) => node.id);
  const universe = universeFor(engine, full);
  const evaluation = await evaluateCircuit(engine as ModelRunner, task, circuit, ablation, universe, { batchSize });
  const curve = await faithfulnessCurve(engine as ModelRunner, task, ranked, ablation, undefined, { batchSize });
  return { circuit, evaluation, curve };
}

function readCircuit(file: string | undefined): CircuitGraph {
  if (!file) throw new InputError('give the circuit with --circuit circuit.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`cannot read the circuit (${(err as Error).message})`, path.resolve(file));
  }
  return validateCircuitGraph(raw, file);
}

export const extraCommands: Record<string, Command> = {
  discover: {
    summary: 'find the components a task uses (heads, MLPs, neurons) and write the circuit graph',
    usage:
      'circuit-lens discover [--model DIR] --task ioi|greater-than|FILE.jsonl [--n N] [--method attnlrp|cp-lrp|gradient|activation|eap] [--granularity heads|heads+mlps|heads+neurons|neurons] [--aggregation signed-mean|mean-abs|abs-mean] [--top K | --budget F] [--ablation zero|mean|mean-positional|resample] [--no-verify] [--shard k/n] --out circuit.json [--json]',
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
      const method = oneOf<DiscoveryMethod>(flags.method, DISCOVERY_METHODS, 'method', 'attnlrp');
      const granularity = oneOf<Granularity>(flags.granularity, GRANULARITIES, 'granularity', flags.edges ? 'heads+mlps' : 'heads');
      // Signed by default: a component that consistently works against the task metric is not part
      // of its circuit (on IOI this picks the best 4-head circuit of all 1,820; bench/best-circuit.ts).
      const aggregation = oneOf<AggregationMode>(flags.aggregation, AGGREGATION_MODES, 'aggregation', 'signed-mean');
      const absolute = aggregation !== 'signed-mean';
      const ablation = oneOf<AblationKind>(flags.ablation, ABLATION_KINDS, 'ablation', 'mean');
      if (flags.top !== undefined && flags.budget !== undefined) throw new InputError('give --top or --budget, not both');
      const engine = await ctx.openEngine(flags.model, flags);
      const n = flags.n === undefined ? undefined : intFlag(flags.n, 'n', 1, 1);
      const task = loadTask(engine, flags.task, n, intFlag(flags.seed, 'seed', 0));
      const batchSize = intFlag(flags.batch, 'batch', 32, 1);
      if (flags.shard !== undefined) return discoverShard(engine, task, { method, batchSize, shard: flags.shard, out: flags.out, edges: !!flags.edges });
      const started = Date.now();
      const { graph: full } = await discoverCircuit(engine as ModelRunner, task, {
        method,
        granularity,
        aggregation,
        batchSize,
        edges: !!flags.edges,
        modelName: path.basename(engine.folder),
      });
      const componentCount = full.nodes.filter((node) => node.kind !== 'input' && node.kind !== 'logits').length;
      const candidates = flags.edges ? full.edges.length : componentCount;
      const rule =
        flags.budget !== undefined
          ? { kind: 'budget' as const, fraction: floatFlag(flags.budget, 'budget', 0.5, 0, 1) }
          : { kind: 'top-k' as const, k: intFlag(flags.top, 'top', Math.max(1, Math.round(candidates * (flags.edges ? 0.1 : 0.25))), 1) };
      // Edge circuits are verified at node level: every node no kept edge touches is ablated.
      let graph = flags.edges ? selectEdges(full, rule, { absolute }) : selectNodes(full, rule, { absolute });
      const discoverySeconds = (Date.now() - started) / 1000;
      let verification: Awaited<ReturnType<typeof verifyGraph>> | undefined;
      if (!flags['no-verify']) {
        verification = await verifyGraph(engine, task, graph, full, ablation, batchSize);
        const { evaluation, curve } = verification;
        graph = {
          ...graph,
          metrics: {
            metric: evaluation.metric,
            ablation,
            full: evaluation.full,
            empty: evaluation.empty,
            circuit: evaluation.circuit,
            faithfulness: evaluation.faithfulness,
            completeness: evaluation.completeness,
            cpr: curve.cpr,
            cmd: curve.cmd,
            curve: curve.points,
          },
        };
      }
      if (flags.out) writeFileAtomic(flags.out, JSON.stringify(graph, null, 1) + '\n');
      const circuit = circuitComponentIds(graph);
      const json = {
        task: task.name,
        examples: task.examples.length,
        method,
        granularity,
        aggregation,
        circuit,
        circuit_size: circuit.length,
        components: componentCount,
        edges: flags.edges ? graph.edges.map((e) => ({ id: e.id, relevance: e.relevance })) : undefined,
        discovery_seconds: discoverySeconds,
        metrics: graph.metrics ?? null,
        out: flags.out ? path.resolve(flags.out) : null,
        graph: flags.out ? undefined : graph,
      };
      const m = graph.metrics;
      const text = `${method} circuit for ${task.name} (${task.examples.length} prompts): ${circuit.join(' ')}` + (m ? `\nfull ${m.full?.toFixed(3)}  circuit ${m.circuit?.toFixed(3)}  all ablated ${m.empty?.toFixed(3)}  faithfulness ${m.faithfulness?.toFixed(3)}  completeness ${m.completeness?.toFixed(3)}  CPR ${m.cpr?.toFixed(3)}  CMD ${m.cmd?.toFixed(3)}` : '');
      return { json, text };
    },
  },

  verify: {
    summary: 'ablate everything outside a circuit (and the circuit itself) and report faithfulness',
    usage: 'circuit-lens verify [--model DIR] --circuit circuit.json --task ioi|greater-than|FILE.jsonl [--n N] [--ablation zero|mean|mean-positional|resample] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...TASK_FLAGS, circuit: { type: 'string' } });
      const graph = readCircuit(flags.circuit);
      const ablation = oneOf<AblationKind>(flags.ablation, ABLATION_KINDS, 'ablation', 'mean');
      const engine = await ctx.openEngine(flags.model, flags);
      if (graph.model.nLayers !== engine.spec.nLayers || graph.model.nHeads !== engine.spec.nHeads) {
        throw new InputError(`the circuit was found on a model with ${graph.model.nLayers} layers × ${graph.model.nHeads} heads; this one has ${engine.spec.nLayers} × ${engine.spec.nHeads}`);
      }
      const n = flags.n === undefined ? undefined : intFlag(flags.n, 'n', 1, 1);
      const task = loadTask(engine, flags.task, n, intFlag(flags.seed, 'seed', 0));
      const batchSize = intFlag(flags.batch, 'batch', 32, 1);
      const { circuit, evaluation, curve } = await verifyGraph(engine, task, graph, graph, ablation, batchSize);
      const json = { ...evaluation, circuit_components: circuit, curve: curve.points, cpr: curve.cpr, cmd: curve.cmd };
      const text = `full ${evaluation.full.toFixed(3)}  circuit ${evaluation.circuit.toFixed(3)}  ablated ${evaluation.complement.toFixed(3)}  all ablated ${evaluation.empty.toFixed(3)}  faithfulness ${evaluation.faithfulness.toFixed(3)}  completeness ${evaluation.completeness.toFixed(3)}`;
      return { json, text };
    },
  },

  export: {
    summary: 'convert a circuit graph to the EAP-IG or Neuronpedia (circuit-tracer) graph JSON',
    usage: 'circuit-lens export --circuit circuit.json --format eap-ig|neuronpedia [--model DIR --prompt TEXT] --out FILE [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...MODEL_FLAGS, circuit: { type: 'string' }, format: { type: 'string' }, prompt: { type: 'string' }, out: { type: 'string' } });
      const graph = readCircuit(flags.circuit);
      const format = oneOf(flags.format, ['eap-ig', 'neuronpedia'] as const, 'format', 'eap-ig');
      if (!flags.out) throw new InputError('give the output file with --out FILE');
      let json: unknown;
      let problems: string[];
      if (format === 'eap-ig') {
        json = toEapIgJson(graph);
        problems = validateEapIgJson(json);
      } else {
        // Neuronpedia graphs are per prompt: the circuit is shown on one prompt, its tokens as inputs.
        if (flags.prompt === undefined) throw new InputError('a Neuronpedia graph is drawn on one prompt: give --prompt TEXT');
        const engine = await ctx.openEngine(flags.model, flags);
        const { ids } = engine.encode(flags.prompt);
        const [row] = await engine.forward({ ids: [ids] });
        const targetId = argmaxOf(row!.logitsLast);
        const [attribution] = await engine.attribute({ ids: [ids], targets: [{ kind: 'logit', position: ids.length - 1, token: targetId }], mode: 'attnlrp' });
        json = toNeuronpediaJson(graph, {
          slug: path.basename(flags.out).replace(/\.json$/, '').replace(/[^A-Za-z0-9_-]+/g, '-'),
          prompt: flags.prompt,
          promptIds: ids,
          promptTokens: ids.map((id) => engine.tokenizer!.tokenString(id)),
          target: { id: targetId, text: engine.tokenizer!.tokenString(targetId) },
          tokenRelevance: attribution!.tokenRelevance,
        });
        problems = validateNeuronpediaJson(json);
      }
      if (problems.length > 0) throw new Error(`the exported ${format} JSON does not validate: ${problems.join('; ')}`);
      writeFileAtomic(flags.out, JSON.stringify(json) + '\n');
      return { json: { format, out: path.resolve(flags.out) }, text: `wrote ${format} graph to ${flags.out}` };
    },
  },
};
