/**
 * Component ids, built and parsed here only. They follow TransformerLens / EAP-IG, so circuits
 * read the same in our JSON, in EAP-IG's graph files and in papers:
 *
 * | id            | component                                        |
 * |---------------|--------------------------------------------------|
 * | `input`       | token (+ positional) embeddings                  |
 * | `a{l}.h{h}`   | attention head h of layer l (its z, before W_O)  |
 * | `m{l}`        | the MLP block of layer l                         |
 * | `m{l}.n{i}`   | neuron i of that MLP (its activation)            |
 * | `logits`      | the unembedding                                  |
 * | `a{l}.bias`   | layer l's attention output bias (an edge source) |
 *
 * An edge id is `{source}->{target}`.
 */

export type ComponentKind = 'input' | 'head' | 'mlp' | 'neuron' | 'logits';

export const componentId = {
  head: (layer: number, head: number): string => `a${layer}.h${head}`,
  mlp: (layer: number): string => `m${layer}`,
  neuron: (layer: number, neuron: number): string => `m${layer}.n${neuron}`,
  /** The attention output bias of a layer: an upstream term of the edge readout, not a node. */
  attentionBias: (layer: number): string => `a${layer}.bias`,
  input: 'input',
  logits: 'logits',
} as const;

/** Any node id (for validators of untrusted input: bounded digit counts). */
export const COMPONENT_ID_PATTERN = /^(input|logits|a\d{1,4}\.h\d{1,4}|m\d{1,4}(\.n\d{1,7})?)$/;

export interface ParsedComponentId {
  readonly kind: ComponentKind;
  /** −1 for input; null for logits (its layer is the model's layer count). */
  readonly layer: number | null;
  readonly head?: number;
  readonly neuron?: number;
}

const HEAD_ID = /^a(\d+)\.h(\d+)$/;
const MLP_ID = /^m(\d+)$/;
const NEURON_ID = /^m(\d+)\.n(\d+)$/;

/** Parses a node id; null when it is not one. */
export function parseComponentId(id: string): ParsedComponentId | null {
  if (id === componentId.input) return { kind: 'input', layer: -1 };
  if (id === componentId.logits) return { kind: 'logits', layer: null };
  let match = HEAD_ID.exec(id);
  if (match) return { kind: 'head', layer: Number(match[1]), head: Number(match[2]) };
  match = MLP_ID.exec(id);
  if (match) return { kind: 'mlp', layer: Number(match[1]) };
  match = NEURON_ID.exec(id);
  if (match) return { kind: 'neuron', layer: Number(match[1]), neuron: Number(match[2]) };
  return null;
}

export function edgeId(source: string, target: string): string {
  return `${source}->${target}`;
}

/** Every head (and MLP block, or every neuron) of a model, in forward order. */
export function allComponentIds(spec: { readonly nLayers: number; readonly nHeads: number; readonly dMlp: number }, mlps: 'blocks' | 'neurons' | 'none'): string[] {
  const ids: string[] = [];
  for (let layer = 0; layer < spec.nLayers; layer++) {
    for (let head = 0; head < spec.nHeads; head++) ids.push(componentId.head(layer, head));
    if (mlps === 'blocks') ids.push(componentId.mlp(layer));
    else if (mlps === 'neurons') for (let neuron = 0; neuron < spec.dMlp; neuron++) ids.push(componentId.neuron(layer, neuron));
  }
  return ids;
}
