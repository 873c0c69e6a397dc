/**
 * The architecture spec: everything the graph builder needs to know about a Hugging Face
 * causal LM, derived from config.json. Adding an architecture means producing one of these,
 * not writing a new forward or backward pass.
 */

export type Family = 'gpt2' | 'opt' | 'llama';

/** Element-wise MLP activation. `gelu_new` is GPT-2's tanh approximation. */
export type Activation = 'gelu_new' | 'gelu' | 'relu' | 'silu';

/**
 * Where a linear layer's weight lives in the safetensors file and how it is laid out.
 * `in_out` is GPT-2's Conv1D (`[in, out]`, used as x·W); `out_in` is nn.Linear (`[out, in]`, used as x·Wᵀ).
 */
export interface LinearRef {
  readonly weight: string;
  readonly bias?: string;
  readonly layout: 'in_out' | 'out_in';
  /**
   * For a fused projection (GPT-2's c_attn packs q, k, v along the output dimension): the
   * slice of output units this logical projection uses.
   */
  readonly outSlice?: readonly [start: number, end: number];
}

export interface NormRef {
  readonly weight: string;
  /** LayerNorm β; absent for RMSNorm. */
  readonly bias?: string;
}

export interface LayerWeights {
  readonly ln1: NormRef;
  readonly q: LinearRef;
  readonly k: LinearRef;
  readonly v: LinearRef;
  readonly o: LinearRef;
  readonly ln2: NormRef;
  /** GPT-2 c_fc / OPT fc1 / Llama up_proj. */
  readonly up: LinearRef;
  /** Llama gate_proj (SwiGLU); absent for plain MLPs. */
  readonly gate?: LinearRef;
  /** GPT-2 mlp.c_proj / OPT fc2 / Llama down_proj. */
  readonly down: LinearRef;
}

export type Positional =
  | { readonly kind: 'learned'; readonly weight: string; readonly offset: number }
  | { readonly kind: 'rope'; readonly theta: number; readonly scaling?: RopeScaling };

export type RopeScaling =
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

export interface ArchSpec {
  readonly family: Family;
  /** config.json `model_type` as given (e.g. `mistral`, `qwen2` map to family `llama`). */
  readonly modelType: string;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Key/value heads; < nHeads means grouped-query attention. */
  readonly nKvHeads: number;
  readonly dModel: number;
  readonly headDim: number;
  readonly dMlp: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly norm: { readonly kind: 'layernorm' | 'rmsnorm'; readonly eps: number };
  readonly activation: Activation;
  /** Pre-norm blocks (GPT-2, Llama, most OPT); OPT-350m is post-norm. */
  readonly preNorm: boolean;
  /** Scale applied to Q·Kᵀ (1/√headDim unless the config says otherwise). */
  readonly attnScale: number;
  readonly positional: Positional;
  readonly embedTokens: string;
  /** OPT: `word_embed_proj_dim` ≠ hidden size adds project_in/project_out. */
  readonly projectIn?: LinearRef;
  readonly projectOut?: LinearRef;
  readonly finalNorm?: NormRef;
  /** The unembedding; for tied models this is the token-embedding tensor (`out_in` layout [V, D]). */
  readonly lmHead: LinearRef;
  readonly tiedEmbeddings: boolean;
  readonly layers: readonly LayerWeights[];
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
}

/** Component ids live in one module (./componentIds). */
export { componentId } from './componentIds';
