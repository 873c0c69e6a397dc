/**
 * Circuit → file, for Save, Export Circuit… and the panel's export menu. The circuit is the
 * CLI's `CircuitGraph` itself, written by the export use case the CLI runs
 * (src/pipelines/exports.ts, over src/circuits/exporters/export.ts):
 * - `circuit-lens`: the circuit graph JSON, byte for byte what `circuit-lens discover --out`
 *   writes (`circuitFileText`), so `circuit-lens verify|export --circuit` read it;
 * - `eap-ig`: `toEapIgJson`;
 * - `neuronpedia`: `toNeuronpediaJson`, drawn on one prompt (its tokens, target and token
 *   relevance come from the engine, as in `circuit-lens export --format neuronpedia --prompt …`).
 * Every document is checked by its validator before it is written.
 */
import { validateCircuitGraph, type CircuitGraph } from '../circuits/discovery/graph';
import { circuitFileText, exportCircuitDocument, type ExportFormat } from '../pipelines/exports';
import type { PromptAttribution } from '../protocol/shapes';

export type { ExportFormat };


/** Reads a circuit file the CLI (or the panel) wrote; throws naming the file and the problem. */
export function parseCircuitFile(text: string, file: string): CircuitGraph {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message})`);
  }
  return validateCircuitGraph(json, file);
}

/** A file-name-safe name for a circuit: task, method, granularity and time. */
export function circuitName(graph: CircuitGraph): string {
  const time = (graph.created ?? new Date().toISOString()).replace(/\.\d+Z$/, 'Z').replace(/[:]/g, '-');
  return `${graph.task.name}-${graph.method.name}-${graph.granularity}-${time}`.replace(/[^A-Za-z0-9_.+-]+/g, '_');
}

/** The file text for `format`: the export pipeline's document (validated), written as the CLI writes it. */
export function exportCircuit(graph: CircuitGraph, format: ExportFormat, prompt?: { readonly text: string; readonly attribution: PromptAttribution; readonly slug: string }): string {
  if (format === 'circuit-lens') return circuitFileText(graph);
  const a = prompt?.attribution;
  const { json } = exportCircuitDocument(
    graph,
    format,
    prompt && a
      ? {
          text: prompt.text,
          ids: a.tokens.map((t) => t.id),
          tokens: a.tokens.map((t) => t.text),
          // The viewers need the target's probability: from the top next tokens, or 0 (circuit-tracer's default) when it is not among them.
          target: { id: a.target.token, text: a.target.text, probability: a.topNext.find((t) => t.id === a.target.token)?.prob ?? 0 },
          tokenRelevance: a.tokens.map((t) => t.relevance),
        }
      : undefined,
    prompt ? { slug: prompt.slug } : {},
  );
  // As `circuit-lens export` writes it.
  return `${JSON.stringify(json)}\n`;
}
