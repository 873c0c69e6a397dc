/**
 * `discover --shard k/n` (one part of the examples, exact sums written to --out) and
 * `circuit-lens merge` (the parts added exactly, then the circuit graph as discover builds it).
 * See src/circuits/shard.ts and README "Speed and memory" for a Slurm array example.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../models/errors';
import { scoreSamples } from '../circuits/discovery/discover';
import { AGGREGATIONS, GRANULARITIES, type Aggregation, type DiscoveryMethod, type Granularity } from '../vocabulary';
import { checkOutputFile, writeFileAtomic } from '../circuits/files';
import { mergePruneCurves, PARTIAL_CURVE_FORMAT, type PartialPruneCurve } from '../pipelines/pruneCurve';
import { decodePartialWeights, encodeWeightScores, mergePartialWeights, PARTIAL_WEIGHT_FORMAT, sniffFormat } from '../circuits/pruning/shard';
import { buildCircuitGraph, circuitComponentIds, selectNodes } from '../circuits/discovery/graph';
import type { ModelRunner } from '../circuits/runner';
import { mergePartials, parseShard, partialRelevance, relevanceFromPartial, shardTask, PARTIAL_FORMAT, type PartialRelevance } from '../circuits/discovery/shard';
import type { Task } from '../circuits/tasks/tasks';
import type { Engine } from '../engine/engine';
import { intFlag, oneOf } from './args';
import type { Command } from './command';

/** Scores shard `shard` of `task` and writes its exact sums to `out` (the discover command's --shard). */
export async function discoverShard(engine: Engine, task: Task, options: { method: DiscoveryMethod; batchSize: number; shard: string; out: string | undefined; edges: boolean }): Promise<{ json: unknown; text: string }> {
  if (!options.out) throw new InputError('--shard writes its partial sums to --out FILE');
  if (options.edges) throw new InputError('--shard is for component scores; edge graphs are not sharded yet');
  let shard;
  try {
    shard = parseShard(options.shard);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const part = shardTask(task, shard, options.batchSize);
  const started = Date.now();
  const samples = part.examples.length ? await scoreSamples(engine as ModelRunner, part, { method: options.method, batchSize: options.batchSize }) : [];
  const { nLayers, nHeads, dModel, dMlp } = engine.spec;
  const partial = partialRelevance(samples, { model: path.basename(engine.folder), task: task.name, metric: task.metric, method: options.method, examples: task.examples.length, batchSize: options.batchSize, layers: nLayers, heads: nHeads, dModel, dMlp }, shard);
  writeFileAtomic(options.out, JSON.stringify(partial) + '\n');
  const json = { shard: `${shard.index + 1}/${shard.count}`, examples: part.examples.length, of: task.examples.length, seconds: (Date.now() - started) / 1000, out: path.resolve(options.out) };
  return { json, text: `shard ${json.shard}: ${json.examples} of ${json.of} examples scored in ${json.seconds.toFixed(1)} s → ${json.out} (combine with circuit-lens merge)` };
}

export const shardCommands: Record<string, Command> = {
  merge: {
    summary: 'combine the parts of discover, prune or prune-curve --shard runs exactly (a circuit graph, merged weight scores, or the curves)',
    usage:
      'circuit-lens merge PART.json… --out circuit.json [--granularity heads|heads+mlps|heads+neurons|neurons] [--aggregation signed-mean|mean-abs|abs-mean] [--top K] [--json]   (discover --shard parts)\n' +
      'circuit-lens merge PART.bin… --out MERGED.bin [--json]   (prune --shard parts: the merged weight scores, for prune --from-scores)\n' +
      'circuit-lens merge PART.json… [--out curves.json] [--json]   (prune-curve --shard parts: the prune-curve result)\n' +
      'The parts are told apart by their format field; every shard 1…n of one run must be given once.',
    async run(ctx) {
      let values: Record<string, string | boolean | undefined>;
      let files: string[];
      try {
        const parsed = parseArgs({
          args: ctx.argv,
          options: { out: { type: 'string' }, granularity: { type: 'string' }, aggregation: { type: 'string' }, top: { type: 'string' }, json: { type: 'boolean' } },
          strict: true,
          allowPositionals: true,
        });
        values = parsed.values;
        files = parsed.positionals;
      } catch (err) {
        throw new InputError((err as Error).message);
      }
      if (files.length === 0) throw new InputError('give the partial files of every shard: circuit-lens merge parts/*.json --out circuit.json');
      const other = await mergeOtherFormats(files, values);
      if (other) return other;
      const parts = files.map((file) => readPartial(file));
      let merged: PartialRelevance;
      try {
        merged = mergePartials(parts);
      } catch (err) {
        throw new InputError((err as Error).message);
      }
      const granularity = oneOf<Granularity>(values.granularity as string | undefined, GRANULARITIES, 'granularity', 'heads');
      const aggregation = oneOf<Aggregation>(values.aggregation as string | undefined, AGGREGATIONS, 'aggregation', 'signed-mean');
      const relevance = relevanceFromPartial(merged, aggregation);
      if (granularity !== 'heads' && !relevance.neurons) throw new InputError(`granularity ${granularity} needs neuron relevance, which the shards' method did not give`);
      const { run } = merged;
      const full = buildCircuitGraph({
        model: { name: run.model, nLayers: run.layers, nHeads: run.heads, dModel: run.dModel, dMlp: run.dMlp },
        task: { name: run.task, metric: run.metric, examples: run.examples },
        method: { name: run.method, aggregation },
        heads: relevance.heads,
        ...(granularity === 'heads+mlps' ? { mlps: relevance.mlps! } : {}),
        ...(granularity === 'neurons' || granularity === 'heads+neurons' ? { neurons: relevance.neurons! } : {}),
      });
      const graph = values.top !== undefined ? selectNodes(full, { kind: 'top-k', k: intFlag(values.top as string, 'top', 1, 1) }, { absolute: aggregation !== 'signed-mean' }) : full;
      if (values.out) writeFileAtomic(values.out as string, JSON.stringify(graph, null, 1) + '\n');
      const json = { shards: parts.length, examples: merged.count, task: run.task, method: run.method, aggregation, granularity, heads: relevance.heads, circuit: circuitComponentIds(graph), out: values.out ? path.resolve(values.out as string) : null };
      return { json, text: `merged ${parts.length} shards (${merged.count} examples of ${run.task}, ${run.method}, ${aggregation})${json.out ? ` → ${json.out}` : ''}` };
    },
  },
};

/** Parts of `prune --shard` (weight relevance) and of `prune-curve --shard`, recognised by their format field; null for discover's. */
async function mergeOtherFormats(files: string[], values: Record<string, string | boolean | undefined>): Promise<{ json: unknown; text: string } | null> {
  const data = files.map((file) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new InputError(`cannot read a partial result (${(err as Error).message})`, file);
    }
  });
  const formats = data.map((d) => sniffFormat(d));
  if (formats.includes(PARTIAL_CURVE_FORMAT)) return mergeCurves(files, data, formats, values);
  if (!formats.includes(PARTIAL_WEIGHT_FORMAT)) return null;
  const odd = formats.findIndex((f) => f !== PARTIAL_WEIGHT_FORMAT);
  if (odd >= 0) throw new InputError(`cannot merge parts of different kinds: ${files[odd]} is not a prune --shard output (format "${PARTIAL_WEIGHT_FORMAT}")`, files[odd]);
  for (const flag of ['granularity', 'aggregation', 'top']) if (values[flag] !== undefined) throw new InputError(`--${flag} is for discover parts; prune parts carry their aggregation`);
  if (!values.out) throw new InputError('--out MERGED.bin is required: prune --from-scores MERGED.bin reads it');
  checkOutputFile(values.out as string);
  let merged;
  try {
    merged = mergePartialWeights(data.map((d, i) => {
      try {
        return decodePartialWeights(d);
      } catch (err) {
        throw new Error(`${files[i]}: ${(err as Error).message}`);
      }
    }));
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const out = encodeWeightScores(merged);
  writeFileAtomic(values.out as string, out);
  const json = { shards: files.length, samples: merged.run.rows, model: merged.run.model, method: merged.run.method, aggregation: merged.run.aggregation, weights: merged.tensors.reduce((n, t) => n + t.length, 0), bytes: out.length, out: path.resolve(values.out as string) };
  return { json, text: `merged ${files.length} prune shards (${json.samples} reference samples, ${json.method}, ${json.aggregation}, ${json.weights} weights) → ${json.out} (prune --from-scores)` };
}

/** prune-curve --shard parts: the merged JSON is the unsharded prune-curve's. */
function mergeCurves(files: string[], data: Buffer[], formats: (string | null)[], values: Record<string, string | boolean | undefined>): { json: unknown; text: string } {
  const odd = formats.findIndex((f) => f !== PARTIAL_CURVE_FORMAT);
  if (odd >= 0) throw new InputError(`cannot merge parts of different kinds: ${files[odd]} is not a prune-curve --shard output (format "${PARTIAL_CURVE_FORMAT}")`, files[odd]);
  for (const flag of ['granularity', 'aggregation', 'top']) if (values[flag] !== undefined) throw new InputError(`--${flag} is for discover parts`);
  if (values.out) checkOutputFile(values.out as string);
  let merged;
  try {
    merged = mergePruneCurves(data.map((d, i) => {
      try {
        return JSON.parse(d.toString('utf8')) as PartialPruneCurve;
      } catch (err) {
        throw new Error(`${files[i]}: ${(err as Error).message}`);
      }
    }));
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  if (values.out) writeFileAtomic(values.out as string, JSON.stringify(merged, null, 1) + '\n');
  return { json: merged, text: `merged ${files.length} prune-curve shards (${merged.settings.references} seeds, ${merged.series.length} series; dense IOI accuracy ${merged.dense.toFixed(3)})${values.out ? ` → ${path.resolve(values.out as string)}` : ''}` };
}

function readPartial(file: string): PartialRelevance {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`cannot read a partial result (${(err as Error).message})`, file);
  }
  if (typeof data !== 'object' || data === null || (data as { format?: unknown }).format !== PARTIAL_FORMAT) {
    throw new InputError(`not a discover --shard output (format must be "${PARTIAL_FORMAT}")`, file);
  }
  return data as PartialRelevance;
}
