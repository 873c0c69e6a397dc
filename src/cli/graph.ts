/**
 * Prompt-graph commands: `graph` (the position-resolved attribution graph of one prompt),
 * `lens` (logit lens) and `steer` (steer-and-generate), plus the Neuronpedia export of a prompt
 * graph file that `export` hands over (see `isPromptGraphFile`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../models/errors';
import type { Composite } from '../engine/api';
import { COMPOSITES } from '../vocabulary';
import type { Engine } from '../engine/engine';
import { PROMPT_ABLATIONS, PROMPT_GRAPH_DEFAULTS, type PromptGraph } from '../circuits/prompt/promptGraph';
import { promptGraph } from '../pipelines/promptGraph';
import { promptGraphToNeuronpedia } from '../circuits/exporters/promptExport';
import { logitLens, steerAndGenerate } from '../circuits/prompt/promptViews';
import { validateNeuronpediaJson } from '../circuits/exporters/export';
import { writeFileAtomic } from '../circuits/files';
import { floatFlag, idsFlag, intFlag, oneOf, parseFlags } from './args';
import { MODEL_FLAGS, type Command } from './command';

const PROMPT = { ...MODEL_FLAGS, prompt: { type: 'string' }, ids: { type: 'string' } } as const;

function prompt(engine: Engine, flags: { prompt?: string; ids?: string }): { ids: number[]; text: string | null } {
  if (flags.prompt !== undefined && flags.ids !== undefined) throw new InputError('give --prompt or --ids, not both');
  if (flags.ids !== undefined) return { ids: idsFlag(flags.ids), text: null };
  if (flags.prompt === undefined) throw new InputError('give the prompt with --prompt TEXT or --ids 1,2,3');
  return { ids: engine.encode(flags.prompt).ids, text: flags.prompt };
}

/** Whether a --circuit file is a prompt graph (so `export` hands it here). */
export function isPromptGraphFile(file: string | undefined): boolean {
  if (!file || !fs.existsSync(file)) return false;
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { kind?: unknown }).kind === 'prompt-graph';
  } catch {
    return false;
  }
}

/** `export --format neuronpedia` of a prompt graph file. */
export function exportPromptGraph(file: string, format: string | undefined, out: string | undefined): { json: unknown; text: string } {
  if ((format ?? 'neuronpedia') !== 'neuronpedia') throw new InputError(`a prompt graph exports to --format neuronpedia only, got "${format}"`);
  if (!out) throw new InputError('give the output file with --out FILE');
  const graph = JSON.parse(fs.readFileSync(file, 'utf8')) as PromptGraph;
  if (!Array.isArray(graph.nodes) || !Array.isArray(graph.edges) || !graph.prompt || !graph.target) throw new InputError('not a valid prompt graph (nodes, edges, prompt and target are required)', path.resolve(file));
  const json = promptGraphToNeuronpedia(graph, { slug: path.basename(out).replace(/\.json$/, '').replace(/[^A-Za-z0-9_-]+/g, '-') });
  const problems = validateNeuronpediaJson(json);
  if (problems.length > 0) throw new Error(`the exported neuronpedia JSON does not validate: ${problems.join('; ')}`);
  writeFileAtomic(out, JSON.stringify(json) + '\n');
  return { json: { format: 'neuronpedia', out: path.resolve(out), nodes: json.nodes.length, links: json.links.length }, text: `wrote neuronpedia prompt graph to ${out} (${json.nodes.length} nodes, ${json.links.length} links)` };
}

/** The QK-selected edges into the strongest head at the explained position (where the head reads). */
function qkLines(graph: PromptGraph, show: (x: number) => string): string[] {
  const head = graph.nodes.filter((n) => n.kind === 'head' && n.position === graph.target.position).sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance))[0];
  if (!head) return [];
  const qk = graph.edges.filter((e) => e.target === head.id && e.qkSelected && e.paths).sort((a, b) => Math.abs(b.paths!.qkKey + b.paths!.qkQuery) - Math.abs(a.paths!.qkKey + a.paths!.qkQuery));
  if (qk.length === 0) return [];
  return [`QK edges into ${head.id}:`, ...qk.slice(0, 6).map((e) => `  ${e.source.padEnd(12)} QK key ${show(e.paths!.qkKey)}, QK query ${show(e.paths!.qkQuery)}`)];
}

export const graphCommands: Record<string, Command> = {
  graph: {
    summary: 'position-resolved attribution graph of one prompt (heads and MLPs per position, attention split into OV/QK)',
    usage:
      'circuit-lens graph [--model DIR] (--prompt TEXT | --ids …) [--target TOKEN | --target-id N] [--foil TOKEN | --foil-id N] [--mode attnlrp|cp-lrp|gradient] [--node-threshold F] [--edge-threshold F] [--qk-threshold F] [--verify zero|mean|resample] [--corrupted TEXT] [--top N] [--out graph.json] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...PROMPT,
        target: { type: 'string' },
        'target-id': { type: 'string' },
        foil: { type: 'string' },
        'foil-id': { type: 'string' },
        mode: { type: 'string' },
        'node-threshold': { type: 'string' },
        'edge-threshold': { type: 'string' },
        'qk-threshold': { type: 'string' },
        verify: { type: 'string' },
        corrupted: { type: 'string' },
        top: { type: 'string' },
        out: { type: 'string' },
      });
      const mode = oneOf(flags.mode, COMPOSITES, 'mode', 'attnlrp') as Composite;
      const nodeThreshold = floatFlag(flags['node-threshold'], 'node-threshold', PROMPT_GRAPH_DEFAULTS.nodeThreshold, 1e-9, 1);
      const edgeThreshold = floatFlag(flags['edge-threshold'], 'edge-threshold', PROMPT_GRAPH_DEFAULTS.edgeThreshold, 1e-9, 1);
      const qkThreshold = floatFlag(flags['qk-threshold'], 'qk-threshold', edgeThreshold, 1e-9, 1);
      const ablation = flags.verify === undefined ? undefined : oneOf(flags.verify, PROMPT_ABLATIONS, 'verify', 'zero');
      const count = intFlag(flags.top, 'top', 20, 2);
      if (flags.target !== undefined && flags['target-id'] !== undefined) throw new InputError('give --target or --target-id, not both');
      if (flags.foil !== undefined && flags['foil-id'] !== undefined) throw new InputError('give --foil or --foil-id, not both');
      if (ablation === 'resample' && flags.corrupted === undefined) throw new InputError('--verify resample needs --corrupted TEXT (a counterfactual prompt of the same token length)');
      const engine = await ctx.openEngine(flags.model, flags);
      const { ids, text } = prompt(engine, flags);
      const ref = (t: string | undefined, id: string | undefined, what: string) => (id !== undefined ? { id: intFlag(id, `${what}-id`, 0) } : t !== undefined ? { text: t } : undefined);
      const target = ref(flags.target, flags['target-id'], 'target');
      const foil = ref(flags.foil, flags['foil-id'], 'foil');
      // The same use case as the editor's prompt graph panel (src/pipelines/promptGraph.ts).
      const graph = await promptGraph(engine, {
        prompt: text !== null ? { text } : { ids },
        ...(target ? { target } : {}),
        ...(foil ? { foil } : {}),
        mode,
        nodeThreshold,
        edgeThreshold,
        qkThreshold,
        ...(ablation ? { verify: { ablation, count, ...(flags.corrupted !== undefined ? { corrupted: { text: flags.corrupted } } : {}) } } : {}),
      }, ctx.job);
      const position = graph.target.position;
      if (flags.out) writeFileAtomic(flags.out, JSON.stringify(graph) + '\n');
      const s = graph.selection;
      const show = (x: number) => x.toFixed(3);
      const lines = [
        `target ${JSON.stringify(graph.target.text ?? graph.target.token)}${graph.target.foil !== undefined ? ` − ${JSON.stringify(graph.target.foilText ?? graph.target.foil)}` : ''} at position ${position}: ${show(graph.target.value)} (${mode})`,
        `conservation: embeddings ${show(graph.conservation.embeddings)} + errors ${show(graph.conservation.errors)} = ${show(graph.conservation.sum)} (relative error ${graph.conservation.relativeError.toExponential(1)})`,
        `nodes: ${s.keptNodes} of ${s.candidates} heads/MLPs cover ${(100 * s.nodeShare).toFixed(1)} % of |relevance|; edges: ${s.keptEdges} of ${s.computedEdges} cover ${(100 * s.edgeShare).toFixed(1)} %; QK selection: ${s.qkEdges} edges into heads (${s.qkAdded} added) cover ${(100 * (s.qkShare ?? 1)).toFixed(1)} % of the heads' QK score`,
        `completeness ${show(graph.metrics.completeness)}, replacement ${show(graph.metrics.replacement)}`,
        'strongest edges:',
        ...[...graph.edges].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance)).slice(0, 12).map((e) => `  ${e.id.padEnd(28)} ${show(e.relevance)}${e.paths ? `  (OV ${show(e.paths.ov)}, QK key ${show(e.paths.qkKey)}, QK query ${show(e.paths.qkQuery)})` : ''}`),
        ...qkLines(graph, show),
      ];
      const v = graph.metrics.verification;
      if (v) lines.push(`verification (${v.ablation} ablation at the node's position, top ${v.nodes.length}): Pearson ${show(v.pearson)}, Spearman ${show(v.spearman)}`);
      if (flags.out) lines.push(`wrote ${flags.out}`);
      return { json: graph, text: lines.join('\n') };
    },
  },

  lens: {
    summary: 'logit lens: top tokens read from the residual stream after each layer, per position',
    usage: 'circuit-lens lens [--model DIR] (--prompt TEXT | --ids …) [--top K] [--positions 3,7] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...PROMPT, top: { type: 'string' }, positions: { type: 'string' } });
      const engine = await ctx.openEngine(flags.model, flags);
      const { ids } = prompt(engine, flags);
      const lens = await logitLens(engine, ids, { top: intFlag(flags.top, 'top', 5, 1), ...(flags.positions !== undefined ? { positions: idsFlag(flags.positions) } : {}) });
      const tokens = engine.tokenizer ? ids.map((id) => engine.tokenizer!.tokenString(id)) : ids.map(String);
      const lines = lens.positions.map((t, i) => `${String(t).padStart(3)} ${JSON.stringify(tokens[t]).padEnd(14)} ${lens.layers.map((_, l) => JSON.stringify(lens.top[l]![i]![0]!.token ?? lens.top[l]![i]![0]!.id)).join(' → ')}`);
      return { json: { ids, tokens, ...lens }, text: `position, token, top-1 per layer (${lens.layers.join(', ')})\n${lines.join('\n')}` };
    },
  },

  steer: {
    summary: 'scale or ablate a head/MLP at one position and continue greedily, beside the unmodified continuation',
    usage: 'circuit-lens steer [--model DIR] (--prompt TEXT | --ids …) --node a2.h2|m1 [--position P] [--scale F] [--max-new-tokens N] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...PROMPT, node: { type: 'string' }, position: { type: 'string' }, scale: { type: 'string' }, 'max-new-tokens': { type: 'string' } });
      if (!flags.node) throw new InputError('give the component with --node a<l>.h<h> or m<l> (add @P for a position, or --position P)');
      const engine = await ctx.openEngine(flags.model, flags);
      const { ids } = prompt(engine, flags);
      const [node, at] = flags.node.split('@');
      const position = at !== undefined ? intFlag(at, 'node position', 0) : intFlag(flags.position, 'position', ids.length - 1);
      const result = await steerAndGenerate(engine, ids, node!, position, floatFlag(flags.scale, 'scale', 0), intFlag(flags['max-new-tokens'], 'max-new-tokens', 10, 1));
      const text = `clean:   ${JSON.stringify(result.clean.text ?? result.clean.ids.join(','))}\nsteered: ${JSON.stringify(result.steered.text ?? result.steered.ids.join(','))}  (${result.node}@${position} × ${result.scale})`;
      return { json: { ids, position, ...result }, text };
    },
  },
};
