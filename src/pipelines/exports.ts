/**
 * Circuit → peer format, for `circuit-lens export` and the editor's Export Circuit… alike.
 * Every document is checked by its validator before it is returned; what a peer would trip over
 * (no model id for a Neuronpedia upload, a circuit all in layer 0) comes back as warnings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  graphMetadataEntry,
  mergeGraphMetadata,
  neuronpediaWarnings,
  toEapIgJson,
  toNeuronpediaJson,
  validateEapIgJson,
  validateNeuronpediaJson,
  type QkvScore,
} from '../circuits/exporters/export';
import type { CircuitGraph } from '../circuits/discovery/graph';
import { writeFileAtomic } from '../circuits/files';
import { InputError } from '../models/errors';

export const EXPORT_FORMATS = ['circuit-lens', 'eap-ig', 'neuronpedia'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The prompt a Neuronpedia graph is drawn on (its tokens become the input nodes). */
export interface ExportPrompt {
  readonly text: string;
  readonly ids: readonly number[];
  readonly tokens: readonly string[];
  /** The explained token and its probability (the viewers print it in the logit node's label). */
  readonly target: { readonly id: number; readonly text: string; readonly probability: number };
  readonly tokenRelevance: ArrayLike<number>;
}

export interface ExportOptions {
  /** Neuronpedia: URL-safe graph name, and the model id Neuronpedia knows (`metadata.scan`). */
  readonly slug?: string;
  readonly scan?: string;
  readonly description?: string;
  /** EAP-IG: how an edge into a head is written on its q, k and v inputs; node scores too. */
  readonly qkv?: QkvScore;
  readonly nodeScores?: boolean;
}

export interface ExportedDocument {
  readonly json: unknown;
  readonly warnings: string[];
  /** Neuronpedia: circuit-tracer's graph-metadata.json entry for this graph. */
  readonly metadataEntry?: Record<string, unknown>;
}

/** The circuit graph file as every writer (CLI, editor) writes it: one-space indent, final newline. */
export function circuitFileText(graph: CircuitGraph): string {
  return JSON.stringify(graph, null, 1) + '\n';
}

export function exportCircuitDocument(graph: CircuitGraph, format: ExportFormat, prompt?: ExportPrompt, options: ExportOptions = {}): ExportedDocument {
  if (format === 'circuit-lens') return { json: graph, warnings: [] };
  if (format === 'eap-ig') {
    const json = toEapIgJson(graph, { qkvScore: options.qkv ?? 'split', ...(options.nodeScores ? { nodeScores: true } : {}) });
    throwIfInvalid(format, validateEapIgJson(json));
    return { json, warnings: [] };
  }
  if (!prompt) throw new Error('a Neuronpedia graph is drawn on one prompt: no prompt given');
  const json = toNeuronpediaJson(graph, {
    slug: (options.slug ?? `${graph.task.name}-${graph.method.name}`).replace(/[^A-Za-z0-9_-]+/g, '-'),
    ...(options.scan !== undefined ? { scan: options.scan } : {}),
    prompt: prompt.text,
    promptIds: [...prompt.ids],
    promptTokens: [...prompt.tokens],
    target: prompt.target,
    tokenRelevance: prompt.tokenRelevance,
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  throwIfInvalid(format, validateNeuronpediaJson(json));
  const warnings = neuronpediaWarnings(json);
  if (options.scan === undefined) {
    warnings.push(`metadata.scan is the model name "${json.metadata.scan}"; a Neuronpedia upload needs a model id Neuronpedia knows: pass --scan (e.g. --scan gpt2-small)`);
  }
  return { json, warnings, metadataEntry: graphMetadataEntry(json) };
}

/**
 * circuit-tracer's `serve` lists the graphs of a folder from graph-metadata.json: merges this
 * graph's entry into the folder's index (written atomically) and returns the index's path.
 */
export function updateGraphIndex(folder: string, entry: Record<string, unknown>): string {
  const index = path.join(folder, 'graph-metadata.json');
  let existing: unknown;
  if (fs.existsSync(index)) {
    try {
      existing = JSON.parse(fs.readFileSync(index, 'utf8'));
    } catch (err) {
      throw new InputError(`cannot read the existing graph index (${(err as Error).message})`, index);
    }
  }
  writeFileAtomic(index, JSON.stringify(mergeGraphMetadata(existing, entry), null, 2) + '\n');
  return index;
}

function throwIfInvalid(format: ExportFormat, problems: readonly string[]): void {
  if (problems.length > 0) throw new Error(`the exported ${format} JSON does not validate: ${problems.slice(0, 5).join('; ')}`);
}
