/**
 * The architecture spec: everything the graph builder needs to know about a Hugging Face
 * causal LM, derived from config.json. Adding an architecture means producing one of these,
 * not writing a new forward or backward pass.
 */

export type Family = 'gpt2' | 'opt' | 'llama' | 'gpt_neox' | 'gemma2' | 'gemma3' | 'qwen3' | 'phi3';

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
  /**
   * For a fused projection whose parts are interleaved (GPT-NeoX's query_key_value rows are
   * ordered (head, q|k|v, dim)): the output units, in the tensor's order, this projection uses.
   */
  readonly outRows?: readonly number[];
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
  /** Qwen3, Gemma 3: per-head RMSNorm of q and k over head_dim, before RoPE. */
  readonly qNorm?: NormRef;
  readonly kNorm?: NormRef;
  /** Gemma 2/3: RMSNorm of the attention and MLP outputs before they join the residual stream. */
  readonly postAttnNorm?: NormRef;
  readonly postMlpNorm?: NormRef;
}

export type Positional =
  | { readonly kind: 'learned'; readonly weight: string; readonly offset: number }
  | {
      readonly kind: 'rope';
      readonly theta: number;
      readonly scaling?: RopeScaling;
      /** GPT-NeoX partial rotary: RoPE acts on the first `dims` of each head (default: all). */
      readonly dims?: number;
      /** Gemma 3: the rotary embedding of sliding-window layers (its own base, unscaled). */
      readonly local?: { readonly theta: number; readonly scaling?: RopeScaling };
    };

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
  /** `unitOffset`: the gain is 1 + w (Gemma's RMSNorm), for every norm of the model. */
  readonly norm: { readonly kind: 'layernorm' | 'rmsnorm'; readonly eps: number; readonly unitOffset?: boolean };
  readonly activation: Activation;
  /** Pre-norm blocks (GPT-2, Llama, most OPT); OPT-350m is post-norm. */
  readonly preNorm: boolean;
  /** Scale applied to Q·Kᵀ (1/√headDim unless the config says otherwise). */
  readonly attnScale: number;
  readonly positional: Positional;
  /** GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x)) (the MLP reads the block input, not resid_mid). */
  readonly parallelResidual?: boolean;
  /** Gemma 2: tanh soft-capping cap·tanh(x/cap) of the attention scores and of the logits. */
  readonly attnSoftcap?: number;
  readonly finalSoftcap?: number;
  /** Per layer: the sliding-window size (query i sees keys i − w < j ≤ i), or null for full attention. */
  readonly windows?: readonly (number | null)[];
  /** Gemma 2: the token embedding is multiplied by √hidden_size. */
  readonly embedScale?: number;
  readonly embedTokens: string;
  /** OPT: `word_embed_proj_dim` ≠ hidden size adds project_in/project_out. */
  readonly projectIn?: LinearRef;
  readonly projectOut?: LinearRef;
  readonly finalNorm?: NormRef;
  /** The unembedding; for tied models this is the token-embedding tensor (`out_in` layout [V, D]). */
  readonly lmHead: LinearRef;
  /** The unembedding's HF parameter name (`lm_head.weight`; GPT-NeoX `embed_out.weight`), even when tied. */
  readonly headName: string;
  /** The HF parameter name of the token embedding, even when a tied file stores only the head. */
  readonly embedName: string;
  readonly tiedEmbeddings: boolean;
  readonly layers: readonly LayerWeights[];
  readonly bosTokenId?: number;
  /** The first end-of-sequence id; `eosTokenIds` has all when the config lists several. */
  readonly eosTokenId?: number;
  readonly eosTokenIds?: readonly number[];
}

/** Component ids live in one module (./componentIds). */
export { componentId } from './componentIds';
