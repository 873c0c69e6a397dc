/**
 * Interoperability commands: `export` (a circuit graph as EAP-IG or Neuronpedia/circuit-tracer
 * JSON, see src/circuits/exporters/export.ts) and `export-graph` (the compiled forward + relevance graph
 * as a standalone ONNX model, see src/engine/graph-file.ts).
 */
import * as path from 'node:path';
import { InputError } from '../models/errors';
import { QKV_SCORES } from '../circuits/exporters/export';
import { checkOutputFile, writeFileAtomic } from '../circuits/files';
import type { Composite } from '../engine/api';
import type { GraphOptions } from '../engine/build';
import { OPSET } from '../engine/onnx';
import { compileForExport, writeGraphFile } from '../engine/graph-file';
import { attributePrompt, topTokens } from '../pipelines/attribution';
import { exportCircuitDocument, updateGraphIndex, type ExportPrompt } from '../pipelines/exports';
import { COMPOSITES } from '../vocabulary';
import { oneOf, parseFlags } from './args';
import { readCircuit } from './commands';
import { MODEL_FLAGS, type Command } from './command';
import { exportPromptGraph, isPromptGraphFile } from './graph';

const EXPORT_OUTPUTS = ['relevance', 'edges', 'sequence', 'contrastive-sequence', 'logits', 'hooks'] as const;

export const interopCommands: Record<string, Command> = {
  export: {
    summary: 'convert a circuit graph to the EAP-IG or Neuronpedia (circuit-tracer) graph JSON',
    usage:
      'circuit-lens export --circuit circuit.json --format eap-ig|neuronpedia [--qkv split|copy] [--node-scores] [--model DIR --prompt TEXT] [--scan MODEL_ID] [--slug NAME] --out FILE [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        circuit: { type: 'string' },
        format: { type: 'string' },
        prompt: { type: 'string' },
        scan: { type: 'string' },
        slug: { type: 'string' },
        qkv: { type: 'string' },
        'node-scores': { type: 'boolean' },
        out: { type: 'string' },
      });
      if (isPromptGraphFile(flags.circuit)) return exportPromptGraph(flags.circuit!, flags.format, flags.out);
      const format = oneOf(flags.format, ['eap-ig', 'neuronpedia'] as const, 'format', 'eap-ig');
      if (!flags.out) throw new InputError('give the output file with --out FILE');
      checkOutputFile(flags.out);
      // --prompt is accepted and unused for eap-ig (scripts pass one command line for both formats).
      if (format === 'eap-ig' && (flags.scan !== undefined || flags.slug !== undefined)) throw new InputError('--scan and --slug belong to --format neuronpedia');
      if (format === 'neuronpedia' && (flags.qkv !== undefined || flags['node-scores'])) throw new InputError('--qkv and --node-scores belong to --format eap-ig');
      const graph = readCircuit(flags.circuit);
      const written: string[] = [path.resolve(flags.out)];
      let prompt: ExportPrompt | undefined;
      let slug: string | undefined;
      if (format === 'neuronpedia') {
        // Neuronpedia graphs are per prompt: the circuit is shown on one prompt, its tokens as inputs.
        if (flags.prompt === undefined) throw new InputError('a Neuronpedia graph is drawn on one prompt: give --prompt TEXT');
        if (flags.scan !== undefined && !/^[A-Za-z0-9._-]+$/.test(flags.scan)) throw new InputError(`--scan must be a model id such as gpt2-small, got "${flags.scan}"`);
        slug = flags.slug ?? path.basename(flags.out).replace(/\.json$/, '').replace(/[^A-Za-z0-9_-]+/g, '-');
        if (!/^[A-Za-z0-9_-]+$/.test(slug)) throw new InputError(`--slug must be URL-safe (letters, digits, - and _), got "${slug}"`);
        const engine = await ctx.openEngine(flags.model, flags);
        const tokenizer = engine.tokenizer;
        if (!tokenizer) throw new InputError("a Neuronpedia graph needs the model's tokenizer (the prompt is shown as tokens)");
        const r = await attributePrompt(engine, { prompt: { text: flags.prompt }, mode: 'attnlrp', neurons: false }, ctx.job);
        const [top] = topTokens(r.attribution.logitsLast, 1, (id) => tokenizer.tokenString(id));
        prompt = { text: flags.prompt, ids: r.ids, tokens: r.tokens!, target: { id: r.target.token, text: tokenizer.tokenString(r.target.token), probability: top!.prob }, tokenRelevance: r.attribution.tokenRelevance };
      }
      const doc = exportCircuitDocument(graph, format, prompt, {
        ...(slug !== undefined ? { slug } : {}),
        ...(flags.scan !== undefined ? { scan: flags.scan } : {}),
        qkv: oneOf(flags.qkv, QKV_SCORES, 'qkv', 'split'),
        ...(flags['node-scores'] ? { nodeScores: true } : {}),
      });
      if (doc.metadataEntry) written.push(updateGraphIndex(path.dirname(path.resolve(flags.out)), doc.metadataEntry));
      writeFileAtomic(flags.out, JSON.stringify(doc.json) + '\n');
      for (const warning of doc.warnings) process.stderr.write(`circuit-lens export: warning: ${warning}\n`);
      return { json: { format, out: path.resolve(flags.out), files: written, warnings: doc.warnings }, text: `wrote ${format} graph to ${flags.out}` };
    },
  },

  'export-graph': {
    summary: 'write the compiled forward + relevance graph as a standalone ONNX model (external data beside it)',
    usage:
      'circuit-lens export-graph [--model DIR] [--mode attnlrp|cp-lrp|gradient|forward] [--outputs relevance|edges|sequence|contrastive-sequence|logits|hooks] [--interventions] [--weights NAME,…] --out graph.onnx [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        mode: { type: 'string' },
        outputs: { type: 'string' },
        interventions: { type: 'boolean' },
        weights: { type: 'string' },
        out: { type: 'string' },
      });
      const mode = oneOf(flags.mode, [...COMPOSITES, 'forward'] as const, 'mode', 'attnlrp');
      const forward = mode === 'forward';
      const outputs = oneOf(flags.outputs, EXPORT_OUTPUTS, 'outputs', forward ? 'logits' : 'relevance');
      if (forward !== (outputs === 'logits' || outputs === 'hooks')) {
        throw new InputError(forward ? `--mode forward writes --outputs logits or hooks, not ${outputs}` : `--outputs ${outputs} needs --mode forward`);
      }
      if (!flags.out) throw new InputError('give the output file with --out graph.onnx');
      const weights = flags.weights ? flags.weights.split(',').map((s) => s.trim()).filter(Boolean) : [];
      if (weights.length > 0 && outputs !== 'relevance') throw new InputError('--weights (weight relevance outputs) goes with --outputs relevance');
      if (flags.interventions && outputs !== 'relevance' && outputs !== 'logits' && outputs !== 'hooks') {
        throw new InputError(`--interventions is not available with --outputs ${outputs}`);
      }
      const engine = await ctx.openEngine(flags.model, flags);
      for (const name of weights) if (!engine.loaded.weights.has(name)) throw new InputError(`--weights: the model has no weight "${name}"`);
      const options: GraphOptions = {
        composite: forward ? null : (mode as Composite),
        interventions: !!flags.interventions,
        hooks: outputs === 'hooks',
        weightRelevance: weights,
        ...(outputs === 'edges' ? { edges: true } : {}),
        ...(outputs === 'sequence' || outputs === 'contrastive-sequence' ? { sequenceTargets: true } : {}),
        ...(outputs === 'contrastive-sequence' ? { contrastiveSequence: true } : {}),
      };
      const file = writeGraphFile(compileForExport(engine.spec, engine.loaded.weights, options), flags.out);
      const json = {
        model: file.model,
        data: file.data,
        opset: OPSET,
        mode,
        outputs_kind: outputs,
        nodes: file.nodeCount,
        model_bytes: file.modelBytes,
        data_bytes: file.dataBytes,
        inputs: file.inputs,
        outputs: file.outputs,
      };
      const text = `wrote ${flags.out} (${file.nodeCount} nodes, opset ${OPSET}) and ${path.basename(file.data)} (${(file.dataBytes / 1048576).toFixed(1)} MiB)\ninputs:  ${file.inputs.map((i) => `${i.name}[${i.dims.join(',')}]`).join(' ')}\noutputs: ${file.outputs.map((o) => `${o.name}[${o.dims.map((d) => d ?? '?').join(',')}]`).join(' ')}`;
      return { json, text };
    },
  },
};
