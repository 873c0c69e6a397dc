/**
 * config.json → ArchSpec, for the GPT-2, OPT, Llama, GPT-NeoX (Pythia), Gemma 2 and Qwen3
 * families (Mistral and Qwen2 configs are Llama-shaped; Qwen2 adds q/k/v biases). Tensor names
 * are resolved against the names actually present in the weights, so files saved with or
 * without the `transformer.` / `model.` / `gpt_neox.` prefixes all load. Tied embeddings are
 * resolved as Hugging Face does on load (`tiedHead`).
 */
import { InputError } from './errors';
import type { ArchSpec, Activation, LayerWeights, LinearRef, NormRef, RopeScaling } from './spec';

export const SUPPORTED_MODEL_TYPES = ['gpt2', 'opt', 'llama', 'mistral', 'qwen2', 'qwen3', 'gpt_neox', 'gemma2', 'gemma3_text', 'phi3'] as const;

type Config = Record<string, unknown>;

/** The shapes the spec expects, checked against the weight files by `checkShapes`. */
export type ShapeOf = (name: string) => readonly number[] | undefined;

export function specFromConfig(config: Config, hasTensor: (name: string) => boolean, file = 'config.json'): ArchSpec {
  const modelType = config.model_type;
  if (modelType === undefined || modelType === null) throw new InputError('"model_type" is missing', file);
  if (typeof modelType !== 'string') throw new InputError(`"model_type" must be a string, got ${JSON.stringify(modelType)}`, file);
  const read = new ConfigReader(config, file);
  switch (modelType) {
    case 'gpt2':
      return gpt2Spec(read, hasTensor, file);
    case 'opt':
      return optSpec(read, hasTensor, file);
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'qwen3':
      return llamaSpec(read, modelType, hasTensor, file);
    case 'gpt_neox':
      return neoxSpec(read, hasTensor, file);
    case 'gemma2':
      return gemmaSpec(read, hasTensor, file, 2);
    case 'gemma3_text':
      return gemmaSpec(read, hasTensor, file, 3);
    case 'phi3':
      return phi3Spec(read, hasTensor, file);
    default:
      throw new InputError(`unsupported model_type "${modelType}" (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`, file);
  }
}

class ConfigReader {
  constructor(
    private readonly config: Config,
    private readonly file: string,
  ) {}

  /** A positive integer field; the first name present wins (configs alias fields). */
  int(...names: string[]): number {
    for (const name of names) {
      const v = this.config[name];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
        throw new InputError(`"${name}" must be a positive integer, got ${JSON.stringify(v)}`, this.file);
      }
      return v;
    }
    throw new InputError(`"${names[0]}" is missing`, this.file);
  }

  optionalInt(name: string): number | undefined {
    const v = this.config[name];
    return v === undefined || v === null ? undefined : this.int(name);
  }

  /** A finite number; `min` (inclusive) or `above` (exclusive) bound it where other values only make NaN later. */
  number(name: string, fallback: number, bound: { min?: number; above?: number } = {}): number {
    const v = this.config[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`"${name}" must be a number, got ${JSON.stringify(v)}`, this.file);
    if (bound.min !== undefined && v < bound.min) throw new InputError(`"${name}" must be at least ${bound.min}, got ${v}`, this.file);
    if (bound.above !== undefined && v <= bound.above) throw new InputError(`"${name}" must be greater than ${bound.above}, got ${v}`, this.file);
    return v;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.config[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new InputError(`"${name}" must be true or false, got ${JSON.stringify(v)}`, this.file);
    return v;
  }

  string(name: string, fallback: string): string {
    const v = this.config[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new InputError(`"${name}" must be a string, got ${JSON.stringify(v)}`, this.file);
    return v;
  }

  raw(name: string): unknown {
    return this.config[name];
  }

  /**
   * One HF setting that configs spell several ways (GPT-NeoX `rotary_pct` = `partial_rotary_factor`,
   * `rotary_emb_base` = `rope_theta`), also looked up in transformers v5's `rope_parameters`.
   * Every spelling present must agree; a disagreement names the fields.
   */
  aliasNumber(names: readonly string[], fallback: number, bound: { min?: number; above?: number; max?: number } = {}): number {
    const params = this.config.rope_parameters;
    const sources: [string, Record<string, unknown>][] = [['', this.config]];
    if (params !== undefined && params !== null) {
      if (typeof params !== 'object' || Array.isArray(params)) this.fail('"rope_parameters" must be an object or null');
      sources.push(['rope_parameters.', params as Record<string, unknown>]);
    }
    const found: [string, number][] = [];
    for (const [prefix, source] of sources) {
      for (const name of names) {
        const v = source[name];
        if (v === undefined || v === null) continue;
        const field = `${prefix}${name}`;
        if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`"${field}" must be a number, got ${JSON.stringify(v)}`);
        if (bound.min !== undefined && v < bound.min) this.fail(`"${field}" must be at least ${bound.min}, got ${v}`);
        if (bound.above !== undefined && v <= bound.above) this.fail(`"${field}" must be greater than ${bound.above}, got ${v}`);
        if (bound.max !== undefined && v > bound.max) this.fail(`"${field}" must be at most ${bound.max}, got ${v}`);
        found.push([field, v]);
      }
    }
    const disagree = found.find(([, v]) => v !== found[0]![1]);
    if (disagree) this.fail(`"${found[0]![0]}" = ${found[0]![1]} and "${disagree[0]}" = ${disagree[1]} disagree (they are the same setting)`);
    return found[0]?.[1] ?? fallback;
  }

  fail(message: string): never {
    throw new InputError(message, this.file);
  }
}

/** Finds which prefix the weight file uses (`transformer.h.0…` vs `h.0…`). */
function prefixResolver(hasTensor: (name: string) => boolean, probes: readonly string[], prefixes: string[], file: string): (name: string) => string {
  const prefix = prefixes.find((p) => probes.some((probe) => hasTensor(p + probe)));
  if (prefix === undefined) {
    throw new InputError(`tensor "${prefixes[0]}${probes[0]}" is missing from the weights (is this the right model folder?)`, file);
  }
  return (name) => prefix + name;
}

/**
 * The token embedding and the unembedding, resolved as Hugging Face's `tie_weights()` does.
 * Tied (`tie_word_embeddings`, default per family): one matrix serves both, read from the
 * embedding, or from the head when a file stores only the head (several exporters write
 * `lm_head.weight` alone); with both stored the embedding wins, as HF re-ties the head to it.
 * Untied: both must be stored.
 */
function tiedHead(read: ConfigReader, hasTensor: (name: string) => boolean, embedName: string, headName: string, tieDefault: boolean): { embedTokens: string; lmHead: LinearRef; headName: string; embedName: string; tiedEmbeddings: boolean } {
  const tie = read.bool('tie_word_embeddings', tieDefault);
  const hasEmbed = hasTensor(embedName);
  const hasHead = hasTensor(headName);
  if (tie) {
    if (!hasEmbed && !hasHead) read.fail(`tensor "${embedName}" is missing from the weights (and so is "${headName}", which a tied model may store instead)`);
    const source = hasEmbed ? embedName : headName;
    return { embedTokens: source, lmHead: { weight: source, layout: 'out_in' }, headName, embedName, tiedEmbeddings: true };
  }
  if (!hasEmbed) read.fail(`tensor "${embedName}" is missing from the weights`);
  if (!hasHead) read.fail(`tensor "${headName}" is missing from the weights and "tie_word_embeddings" is false (a model that shares its embedding sets it true)`);
  return { embedTokens: embedName, lmHead: { weight: headName, layout: 'out_in' }, headName, embedName, tiedEmbeddings: false };
}

function activationFrom(name: string, read: ConfigReader): Activation {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_new';
    case 'gelu':
      return 'gelu';
    case 'relu':
      return 'relu';
    case 'silu':
    case 'swish':
      return 'silu';
    default:
      return read.fail(`unsupported activation "${name}" (supported: gelu_new, gelu, relu, silu)`);
  }
}

function checkHeads(read: ConfigReader, dModel: number, nHeads: number, nKvHeads: number, headDim: number, explicitHeadDim: boolean): void {
  if (!explicitHeadDim && dModel % nHeads !== 0) read.fail(`hidden size ${dModel} is not divisible by the ${nHeads} attention heads`);
  if (nHeads % nKvHeads !== 0) read.fail(`${nHeads} attention heads are not a multiple of the ${nKvHeads} key/value heads`);
  if (headDim % 2 !== 0 && explicitHeadDim) read.fail(`head_dim ${headDim} must be even for rotary embeddings`);
}

/** Sizes beyond these are not a model this tool can run; refusing early beats a 10⁹-layer loop. */
const LIMITS = { layers: 1024, heads: 1024, width: 1 << 17, vocab: 1 << 22, positions: 1 << 21 };

function checkLimits(read: ConfigReader, sizes: { layers: number; heads: number; width: number; vocab: number; positions: number; mlp: number }): void {
  const over = (what: string, v: number, limit: number) => v > limit && read.fail(`${what} ${v} is beyond the supported maximum ${limit}`);
  over('number of layers', sizes.layers, LIMITS.layers);
  over('number of heads', sizes.heads, LIMITS.heads);
  over('hidden size', sizes.width, LIMITS.width);
  over('MLP width', sizes.mlp, LIMITS.width * 8);
  over('vocabulary size', sizes.vocab, LIMITS.vocab);
  over('context length', sizes.positions, LIMITS.positions);
}

function gpt2Spec(read: ConfigReader, hasTensor: (name: string) => boolean, file: string): ArchSpec {
  const dModel = read.int('n_embd', 'hidden_size');
  const nLayers = read.int('n_layer', 'num_hidden_layers');
  const nHeads = read.int('n_head', 'num_attention_heads');
  const vocabSize = read.int('vocab_size');
  const maxPositions = read.int('n_positions', 'n_ctx', 'max_position_embeddings');
  const dMlp = read.optionalInt('n_inner') ?? 4 * dModel;
  checkHeads(read, dModel, nHeads, nHeads, dModel / nHeads, false);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  if (read.bool('scale_attn_by_inverse_layer_idx', false)) read.fail('scale_attn_by_inverse_layer_idx is not supported');
  const name = prefixResolver(hasTensor, ['wte.weight', 'h.0.ln_1.weight', 'ln_f.weight'], ['transformer.', ''], file);
  const conv = (base: string, slice?: readonly [number, number]): LinearRef => ({
    weight: name(`${base}.weight`),
    bias: name(`${base}.bias`),
    layout: 'in_out',
    ...(slice ? { outSlice: slice } : {}),
  });
  const norm = (base: string): NormRef => ({ weight: name(`${base}.weight`), bias: name(`${base}.bias`) });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `h.${l}`;
    layers.push({
      ln1: norm(`${p}.ln_1`),
      q: conv(`${p}.attn.c_attn`, [0, dModel]),
      k: conv(`${p}.attn.c_attn`, [dModel, 2 * dModel]),
      v: conv(`${p}.attn.c_attn`, [2 * dModel, 3 * dModel]),
      o: conv(`${p}.attn.c_proj`),
      ln2: norm(`${p}.ln_2`),
      up: conv(`${p}.mlp.c_fc`),
      down: conv(`${p}.mlp.c_proj`),
    });
  }
  const headDim = dModel / nHeads;
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    nLayers, nHeads, nKvHeads: nHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'layernorm', eps: read.number('layer_norm_epsilon', 1e-5, { min: 0 }) },
    activation: activationFrom(read.string('activation_function', 'gelu_new'), read),
    preNorm: true,
    attnScale: read.bool('scale_attn_weights', true) ? 1 / Math.sqrt(headDim) : 1,
    positional: { kind: 'learned', weight: name('wpe.weight'), offset: 0 },
    finalNorm: norm('ln_f'),
    ...tiedHead(read, hasTensor, name('wte.weight'), 'lm_head.weight', true),
    layers,
    ...ids(read),
  };
}

function optSpec(read: ConfigReader, hasTensor: (name: string) => boolean, file: string): ArchSpec {
  const dModel = read.int('hidden_size');
  const nLayers = read.int('num_hidden_layers');
  const nHeads = read.int('num_attention_heads');
  const vocabSize = read.int('vocab_size');
  const maxPositions = read.int('max_position_embeddings');
  const dMlp = read.int('ffn_dim');
  const wordDim = read.optionalInt('word_embed_proj_dim') ?? dModel;
  checkHeads(read, dModel, nHeads, nHeads, dModel / nHeads, false);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  const name = prefixResolver(hasTensor, ['decoder.embed_tokens.weight', 'decoder.embed_positions.weight'], ['model.', ''], file);
  const bias = read.bool('enable_bias', true);
  const linear = (base: string): LinearRef => ({
    weight: name(`${base}.weight`),
    ...(bias ? { bias: name(`${base}.bias`) } : {}),
    layout: 'out_in',
  });
  if (!read.bool('layer_norm_elementwise_affine', true)) read.fail('layer_norm_elementwise_affine=false is not supported');
  const norm = (base: string): NormRef => ({ weight: name(`${base}.weight`), bias: name(`${base}.bias`) });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `decoder.layers.${l}`;
    layers.push({
      ln1: norm(`${p}.self_attn_layer_norm`),
      q: linear(`${p}.self_attn.q_proj`),
      k: linear(`${p}.self_attn.k_proj`),
      v: linear(`${p}.self_attn.v_proj`),
      o: linear(`${p}.self_attn.out_proj`),
      ln2: norm(`${p}.final_layer_norm`),
      up: linear(`${p}.fc1`),
      down: linear(`${p}.fc2`),
    });
  }
  const preNorm = read.bool('do_layer_norm_before', true);
  // OPT-350m (post-norm) has no final layer norm; `_remove_final_layer_norm` says so explicitly.
  const hasFinalNorm = preNorm && !read.bool('_remove_final_layer_norm', false);
  const projected = wordDim !== dModel;
  const headDim = dModel / nHeads;
  return {
    family: 'opt',
    modelType: 'opt',
    nLayers, nHeads, nKvHeads: nHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'layernorm', eps: 1e-5 },
    activation: activationFrom(read.string('activation_function', 'relu'), read),
    preNorm,
    attnScale: 1 / Math.sqrt(headDim),
    // OPT's learned positions are looked up at t + 2 (a fairseq padding convention).
    positional: { kind: 'learned', weight: name('decoder.embed_positions.weight'), offset: 2 },
    ...(projected
      ? {
          projectIn: { weight: name('decoder.project_in.weight'), layout: 'out_in' as const },
          projectOut: { weight: name('decoder.project_out.weight'), layout: 'out_in' as const },
        }
      : {}),
    ...(hasFinalNorm ? { finalNorm: norm('decoder.final_layer_norm') } : {}),
    ...tiedHead(read, hasTensor, name('decoder.embed_tokens.weight'), 'lm_head.weight', true),
    layers,
    ...ids(read),
  };
}

function llamaSpec(read: ConfigReader, modelType: string, hasTensor: (name: string) => boolean, file: string): ArchSpec {
  const dModel = read.int('hidden_size');
  const nLayers = read.int('num_hidden_layers');
  const nHeads = read.int('num_attention_heads');
  const nKvHeads = read.optionalInt('num_key_value_heads') ?? nHeads;
  const vocabSize = read.int('vocab_size');
  const maxPositions = read.int('max_position_embeddings');
  const dMlp = read.int('intermediate_size');
  const qwen3 = modelType === 'qwen3';
  // Qwen3Config's head_dim defaults to 128, not hidden_size / heads.
  const explicitHeadDim = read.optionalInt('head_dim') ?? (qwen3 ? 128 : undefined);
  const headDim = explicitHeadDim ?? dModel / nHeads;
  checkHeads(read, dModel, nHeads, nKvHeads, headDim, explicitHeadDim !== undefined);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  const name = prefixResolver(hasTensor, ['embed_tokens.weight', 'layers.0.input_layernorm.weight', 'norm.weight'], ['model.', ''], file);
  const qkvBias = modelType === 'qwen2' || read.bool('attention_bias', false);
  const mlpBias = read.bool('mlp_bias', false);
  const linear = (base: string, withBias: boolean): LinearRef => ({
    weight: name(`${base}.weight`),
    ...(withBias ? { bias: name(`${base}.bias`) } : {}),
    layout: 'out_in',
  });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `layers.${l}`;
    layers.push({
      ln1: { weight: name(`${p}.input_layernorm.weight`) },
      q: linear(`${p}.self_attn.q_proj`, qkvBias),
      k: linear(`${p}.self_attn.k_proj`, qkvBias),
      v: linear(`${p}.self_attn.v_proj`, qkvBias),
      o: linear(`${p}.self_attn.o_proj`, read.bool('attention_bias', false)),
      ln2: { weight: name(`${p}.post_attention_layernorm.weight`) },
      up: linear(`${p}.mlp.up_proj`, mlpBias),
      gate: linear(`${p}.mlp.gate_proj`, mlpBias),
      down: linear(`${p}.mlp.down_proj`, mlpBias),
      // Qwen3: RMSNorm over head_dim on each q and k head, before RoPE.
      ...(qwen3 ? { qNorm: { weight: name(`${p}.self_attn.q_norm.weight`) }, kNorm: { weight: name(`${p}.self_attn.k_norm.weight`) } } : {}),
    });
  }
  // Mistral slides on every layer when sliding_window is set; Qwen2/Qwen3 only with
  // use_sliding_window, on the layers from max_window_layers on (off in the released models).
  const windows =
    modelType === 'mistral'
      ? slidingWindows(read, nLayers, () => true, null)
      : modelType === 'qwen2' || qwen3
        ? slidingWindows(read, nLayers, (l) => read.bool('use_sliding_window', false) && l >= (read.optionalInt('max_window_layers') ?? 28), 4096)
        : undefined;
  return {
    family: qwen3 ? 'qwen3' : 'llama',
    modelType,
    nLayers, nHeads, nKvHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'rmsnorm', eps: read.number('rms_norm_eps', 1e-6, { min: 0 }) },
    activation: activationFrom(read.string('hidden_act', 'silu'), read),
    preNorm: true,
    attnScale: 1 / Math.sqrt(headDim),
    positional: { kind: 'rope', theta: read.aliasNumber(['rope_theta'], 10000, { above: 0 }), ...ropeScaling(read) },
    ...(windows ? { windows } : {}),
    finalNorm: { weight: name('norm.weight') },
    ...tiedHead(read, hasTensor, name('embed_tokens.weight'), 'lm_head.weight', false),
    layers,
    ...ids(read),
  };
}

/**
 * GPTNeoXForCausalLM (Pythia). Honours vocab_size, hidden_size, num_hidden_layers,
 * num_attention_heads, intermediate_size, hidden_act, rotary_pct | partial_rotary_factor,
 * rotary_emb_base | rope_theta (also inside transformers v5 `rope_parameters`), rope_scaling,
 * layer_norm_eps, use_parallel_residual, attention_bias (query_key_value and dense; the MLP
 * always has biases), tie_word_embeddings (default false; the head is `embed_out.weight`).
 */
function neoxSpec(read: ConfigReader, hasTensor: (name: string) => boolean, file: string): ArchSpec {
  const dModel = read.int('hidden_size');
  const nLayers = read.int('num_hidden_layers');
  const nHeads = read.int('num_attention_heads');
  const vocabSize = read.int('vocab_size');
  const maxPositions = read.int('max_position_embeddings');
  const dMlp = read.int('intermediate_size');
  checkHeads(read, dModel, nHeads, nHeads, dModel / nHeads, false);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  const headDim = dModel / nHeads;
  const pct = read.aliasNumber(['rotary_pct', 'partial_rotary_factor'], 0.25, { min: 0, max: 1 });
  // HF: rotary_ndims = int(head_size * rotary_pct); rotate_half needs an even count.
  const rotaryDims = Math.floor(headDim * pct);
  if (rotaryDims % 2 !== 0) read.fail(`"rotary_pct" ${pct} gives ${rotaryDims} rotary dims of the ${headDim} per head; rotary embeddings need an even number`);
  const name = prefixResolver(hasTensor, ['embed_in.weight', 'layers.0.input_layernorm.weight', 'final_layer_norm.weight'], ['gpt_neox.', ''], file);
  const attnBias = read.bool('attention_bias', true);
  const linear = (base: string, withBias: boolean, rows?: number[]): LinearRef => ({
    weight: name(`${base}.weight`),
    ...(withBias ? { bias: name(`${base}.bias`) } : {}),
    layout: 'out_in',
    ...(rows ? { outRows: rows } : {}),
  });
  const norm = (base: string): NormRef => ({ weight: name(`${base}.weight`), bias: name(`${base}.bias`) });
  // query_key_value's output is viewed as [B, T, heads, 3·head_dim]: rows are (head, q|k|v, dim).
  const part = (j: number) => Array.from({ length: nHeads * headDim }, (_, i) => Math.floor(i / headDim) * 3 * headDim + j * headDim + (i % headDim));
  const [qRows, kRows, vRows] = [part(0), part(1), part(2)];
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `layers.${l}`;
    layers.push({
      ln1: norm(`${p}.input_layernorm`),
      q: linear(`${p}.attention.query_key_value`, attnBias, qRows),
      k: linear(`${p}.attention.query_key_value`, attnBias, kRows),
      v: linear(`${p}.attention.query_key_value`, attnBias, vRows),
      o: linear(`${p}.attention.dense`, attnBias),
      ln2: norm(`${p}.post_attention_layernorm`),
      up: linear(`${p}.mlp.dense_h_to_4h`, true),
      down: linear(`${p}.mlp.dense_4h_to_h`, true),
    });
  }
  const theta = read.aliasNumber(['rotary_emb_base', 'rope_theta'], 10000, { above: 0 });
  return {
    family: 'gpt_neox',
    modelType: 'gpt_neox',
    nLayers, nHeads, nKvHeads: nHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'layernorm', eps: read.number('layer_norm_eps', 1e-5, { min: 0 }) },
    activation: activationFrom(read.string('hidden_act', 'gelu'), read),
    preNorm: true,
    attnScale: 1 / Math.sqrt(headDim),
    positional: { kind: 'rope', theta, ...ropeScaling(read), dims: rotaryDims },
    parallelResidual: read.bool('use_parallel_residual', true),
    finalNorm: norm('final_layer_norm'),
    ...tiedHead(read, hasTensor, name('embed_in.weight'), 'embed_out.weight', false),
    layers,
    ...ids(read),
  };
}

/**
 * Gemma2ForCausalLM. Honours vocab_size, hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, head_dim, hidden_activation (hidden_act is not
 * read, as in HF Gemma 2), rms_norm_eps, rope_theta, rope_scaling, attention_bias,
 * query_pre_attn_scalar, attn_logit_softcapping, final_logit_softcapping (null: no cap),
 * sliding_window, layer_types, tie_word_embeddings. Absent fields take Gemma2Config's defaults.
 *
 * Gemma3ForCausalLM (`gemma3_text`, the text-only checkpoints) adds q_norm/k_norm ((1 + w)
 * RMSNorm over head_dim before RoPE) and a second RoPE on sliding layers: rope_local_base_freq,
 * unscaled (HF `rotary_emb_local`), while rope_theta and rope_scaling serve full-attention
 * layers. Sliding layers: layer_types, else every layer but each sliding_window_pattern-th
 * (default 6). Soft-caps default off. transformers v5's per-layer-type `rope_parameters`
 * ({full_attention: …, sliding_attention: …}) is read too; use_bidirectional_attention is refused.
 */
function gemmaSpec(read: ConfigReader, hasTensor: (name: string) => boolean, file: string, version: 2 | 3): ArchSpec {
  const v3 = version === 3;
  const dModel = read.int('hidden_size');
  const nLayers = read.int('num_hidden_layers');
  const nHeads = read.int('num_attention_heads');
  const nKvHeads = read.optionalInt('num_key_value_heads') ?? 4;
  const vocabSize = read.int('vocab_size');
  const maxPositions = read.optionalInt('max_position_embeddings') ?? (v3 ? 131072 : 8192);
  if (v3 && read.bool('use_bidirectional_attention', false)) read.fail('"use_bidirectional_attention" (Gemma 3 as an encoder) is not supported: this is a causal LM tool');
  const dMlp = read.int('intermediate_size');
  const headDim = read.optionalInt('head_dim') ?? 256;
  checkHeads(read, dModel, nHeads, nKvHeads, headDim, true);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  const name = prefixResolver(hasTensor, ['embed_tokens.weight', 'layers.0.input_layernorm.weight', 'norm.weight'], ['model.', ''], file);
  const attnBias = read.bool('attention_bias', false);
  const linear = (base: string, withBias: boolean): LinearRef => ({
    weight: name(`${base}.weight`),
    ...(withBias ? { bias: name(`${base}.bias`) } : {}),
    layout: 'out_in',
  });
  const norm = (base: string): NormRef => ({ weight: name(`${base}.weight`) });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `layers.${l}`;
    layers.push({
      ln1: norm(`${p}.input_layernorm`),
      q: linear(`${p}.self_attn.q_proj`, attnBias),
      k: linear(`${p}.self_attn.k_proj`, attnBias),
      v: linear(`${p}.self_attn.v_proj`, attnBias),
      o: linear(`${p}.self_attn.o_proj`, attnBias),
      postAttnNorm: norm(`${p}.post_attention_layernorm`),
      ln2: norm(`${p}.pre_feedforward_layernorm`),
      up: linear(`${p}.mlp.up_proj`, false),
      gate: linear(`${p}.mlp.gate_proj`, false),
      down: linear(`${p}.mlp.down_proj`, false),
      postMlpNorm: norm(`${p}.post_feedforward_layernorm`),
      ...(v3 ? { qNorm: norm(`${p}.self_attn.q_norm`), kNorm: norm(`${p}.self_attn.k_norm`) } : {}),
    });
  }
  const cap = (field: string, fallback: number | undefined): { value?: number } => {
    // null turns a cap off; absent takes the config class's default (Gemma 3: off).
    if (read.raw(field) === null || (read.raw(field) === undefined && fallback === undefined)) return {};
    return { value: read.number(field, fallback ?? 0, { above: 0 }) };
  };
  const attnCap = cap('attn_logit_softcapping', v3 ? undefined : 50).value;
  const finalCap = cap('final_logit_softcapping', v3 ? undefined : 30).value;
  const pattern = v3 ? (read.optionalInt('sliding_window_pattern') ?? 6) : 2;
  const windows = slidingWindows(read, nLayers, v3 ? (l) => (l + 1) % pattern !== 0 : (l) => l % 2 === 0, 4096);
  return {
    family: v3 ? 'gemma3' : 'gemma2',
    modelType: v3 ? 'gemma3_text' : 'gemma2',
    nLayers, nHeads, nKvHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'rmsnorm', eps: read.number('rms_norm_eps', 1e-6, { min: 0 }), unitOffset: true },
    activation: activationFrom(read.string('hidden_activation', 'gelu_pytorch_tanh'), read),
    preNorm: true,
    attnScale: 1 / Math.sqrt(read.number('query_pre_attn_scalar', 256, { above: 0 })),
    positional: v3 ? gemma3Rope(read) : { kind: 'rope', theta: read.aliasNumber(['rope_theta'], 10000, { above: 0 }), ...ropeScaling(read) },
    ...(attnCap !== undefined ? { attnSoftcap: attnCap } : {}),
    ...(finalCap !== undefined ? { finalSoftcap: finalCap } : {}),
    windows,
    embedScale: Math.sqrt(dModel),
    finalNorm: norm('norm'),
    ...tiedHead(read, hasTensor, name('embed_tokens.weight'), 'lm_head.weight', true),
    layers,
    ...ids(read),
  };
}

/** Gemma 3's two rotary embeddings: global (rope_theta, rope_scaling) and local (sliding layers). */
function gemma3Rope(read: ConfigReader): ArchSpec['positional'] {
  const params = read.raw('rope_parameters');
  if (params && typeof params === 'object' && !Array.isArray(params) && ('full_attention' in params || 'sliding_attention' in params)) {
    // transformers v5: one rope_parameters entry per layer type.
    const of = (key: string, fallbackTheta: number) => {
      const entry = (params as Record<string, unknown>)[key];
      const field = `rope_parameters.${key}`;
      if (entry === undefined || entry === null) return { theta: fallbackTheta };
      if (typeof entry !== 'object' || Array.isArray(entry)) return read.fail(`"${field}" must be an object`);
      const theta = (entry as Record<string, unknown>).rope_theta ?? fallbackTheta;
      if (typeof theta !== 'number' || !(theta > 0)) return read.fail(`"${field}.rope_theta" must be a positive number`);
      return { theta, ...ropeScalingFrom(read, entry, field) };
    };
    const global = of('full_attention', 1_000_000);
    return { kind: 'rope', ...global, local: of('sliding_attention', 10_000) };
  }
  const theta = read.aliasNumber(['rope_theta'], 1_000_000, { above: 0 });
  return { kind: 'rope', theta, ...ropeScaling(read), local: { theta: read.number('rope_local_base_freq', 10_000, { above: 0 }) } };
}

/**
 * Phi3ForCausalLM: Llama-shaped with fused projections. Honours vocab_size, hidden_size,
 * intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
 * hidden_act, rms_norm_eps, rope_theta, partial_rotary_factor (Phi-4-mini), rope_scaling
 * (linear/llama3; `longrope`/`su` are refused), sliding_window (every layer, as HF Phi-3),
 * tie_word_embeddings. `qkv_proj` rows are blocked [q | k | v]; `gate_up_proj` rows are
 * [gate | up] (HF: `gate, up = gate_up_proj(x).chunk(2)`).
 */
function phi3Spec(read: ConfigReader, hasTensor: (name: string) => boolean, file: string): ArchSpec {
  const dModel = read.int('hidden_size');
  const nLayers = read.int('num_hidden_layers');
  const nHeads = read.int('num_attention_heads');
  const nKvHeads = read.optionalInt('num_key_value_heads') ?? nHeads;
  const vocabSize = read.int('vocab_size');
  const maxPositions = read.int('max_position_embeddings');
  const dMlp = read.int('intermediate_size');
  const explicitHeadDim = read.optionalInt('head_dim');
  const headDim = explicitHeadDim ?? dModel / nHeads;
  checkHeads(read, dModel, nHeads, nKvHeads, headDim, explicitHeadDim !== undefined);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  const pct = read.aliasNumber(['partial_rotary_factor'], 1, { min: 0, max: 1 });
  const rotaryDims = Math.floor(headDim * pct);
  if (rotaryDims % 2 !== 0) read.fail(`"partial_rotary_factor" ${pct} gives ${rotaryDims} rotary dims of the ${headDim} per head; rotary embeddings need an even number`);
  const name = prefixResolver(hasTensor, ['embed_tokens.weight', 'layers.0.input_layernorm.weight', 'norm.weight'], ['model.', ''], file);
  const fused = (base: string, start: number, end: number): LinearRef => ({ weight: name(`${base}.weight`), layout: 'out_in', outSlice: [start, end] });
  const [qEnd, kEnd] = [nHeads * headDim, (nHeads + nKvHeads) * headDim];
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `layers.${l}`;
    layers.push({
      ln1: { weight: name(`${p}.input_layernorm.weight`) },
      q: fused(`${p}.self_attn.qkv_proj`, 0, qEnd),
      k: fused(`${p}.self_attn.qkv_proj`, qEnd, kEnd),
      v: fused(`${p}.self_attn.qkv_proj`, kEnd, kEnd + nKvHeads * headDim),
      o: { weight: name(`${p}.self_attn.o_proj.weight`), layout: 'out_in' },
      ln2: { weight: name(`${p}.post_attention_layernorm.weight`) },
      gate: fused(`${p}.mlp.gate_up_proj`, 0, dMlp),
      up: fused(`${p}.mlp.gate_up_proj`, dMlp, 2 * dMlp),
      down: { weight: name(`${p}.mlp.down_proj.weight`), layout: 'out_in' },
    });
  }
  const scaling = read.raw('rope_scaling');
  if (scaling && typeof scaling === 'object' && ['longrope', 'su', 'yarn'].includes(String((scaling as Record<string, unknown>).type ?? (scaling as Record<string, unknown>).rope_type))) {
    read.fail(`"rope_scaling" type "${String((scaling as Record<string, unknown>).type ?? (scaling as Record<string, unknown>).rope_type)}" (Phi-3 long context) is not supported (supported: default, linear, llama3)`);
  }
  return {
    family: 'phi3',
    modelType: 'phi3',
    nLayers, nHeads, nKvHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'rmsnorm', eps: read.number('rms_norm_eps', 1e-5, { min: 0 }) },
    activation: activationFrom(read.string('hidden_act', 'silu'), read),
    preNorm: true,
    attnScale: 1 / Math.sqrt(headDim),
    positional: { kind: 'rope', theta: read.aliasNumber(['rope_theta'], 10000, { above: 0 }), ...ropeScaling(read), ...(rotaryDims < headDim ? { dims: rotaryDims } : {}) },
    windows: slidingWindows(read, nLayers, () => true, null),
    finalNorm: { weight: name('norm.weight') },
    ...tiedHead(read, hasTensor, name('embed_tokens.weight'), 'lm_head.weight', false),
    layers,
    ...ids(read),
  };
}

/**
 * Per layer, the sliding-window size or null (full attention). HF `layer_types`
 * ("sliding_attention" / "full_attention") decides when present, else `isSliding(l)`;
 * `sliding_window` null means no window; absent, `fallback`.
 */
function slidingWindows(read: ConfigReader, nLayers: number, isSliding: (l: number) => boolean, fallback: number | null): (number | null)[] {
  const raw = read.raw('sliding_window');
  const window = raw === null ? null : raw === undefined ? fallback : read.int('sliding_window');
  const types = read.raw('layer_types');
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== nLayers) read.fail(`"layer_types" must list one entry per layer (${nLayers})`);
    types.forEach((t, l) => {
      if (t !== 'sliding_attention' && t !== 'full_attention') read.fail(`"layer_types[${l}]" is ${JSON.stringify(t)}; supported: "sliding_attention", "full_attention"`);
    });
  }
  return Array.from({ length: nLayers }, (_, l) => {
    const slides = Array.isArray(types) ? types[l] === 'sliding_attention' : isSliding(l);
    return slides ? window : null;
  });
}

/** `rope_scaling`, or (transformers v5) the type and factors inside `rope_parameters`. */
function ropeScaling(read: ConfigReader): { scaling?: RopeScaling } {
  let raw = read.raw('rope_scaling');
  let field = 'rope_scaling';
  if (raw === undefined || raw === null) {
    raw = read.raw('rope_parameters');
    field = 'rope_parameters';
  }
  return ropeScalingFrom(read, raw, field);
}

function ropeScalingFrom(read: ConfigReader, raw: unknown, field: string): { scaling?: RopeScaling } {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) return read.fail(`"${field}" must be an object or null`);
  const s = raw as Record<string, unknown>;
  const type = s.rope_type ?? s.type ?? 'default';
  if (type === 'default') return {};
  const factor = Number(s.factor);
  if (!(factor > 0)) return read.fail(`"${field}.factor" must be a positive number`);
  if (type === 'linear') return { scaling: { type: 'linear', factor } };
  if (type === 'llama3') {
    const num = (key: string, fallback: number) => {
      const v = s[key] ?? fallback;
      if (typeof v !== 'number' || !(v > 0)) return read.fail(`"${field}.${key}" must be a positive number`);
      return v;
    };
    const lowFreqFactor = num('low_freq_factor', 1);
    const highFreqFactor = num('high_freq_factor', 4);
    if (highFreqFactor === lowFreqFactor) read.fail(`"${field}.high_freq_factor" must differ from low_freq_factor`);
    return { scaling: { type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositions: num('original_max_position_embeddings', 8192) } };
  }
  return read.fail(`"${field}" type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`);
}

type SpecialIds = { bosTokenId?: number; eosTokenId?: number; eosTokenIds?: readonly number[] };

function ids(read: ConfigReader): SpecialIds {
  return specialIds((name) => read.raw(name), (m) => read.fail(m));
}

/**
 * bos/eos token ids from config.json or generation_config.json. `eos_token_id` may be a list
 * (Llama 3 ends a turn on several tokens): all are kept, the first is `eosTokenId`.
 */
export function specialIds(raw: (name: string) => unknown, fail: (message: string) => never): SpecialIds {
  const out: { bosTokenId?: number; eosTokenId?: number; eosTokenIds?: number[] } = {};
  const id = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const bos = raw('bos_token_id');
  const eos = raw('eos_token_id');
  if (id(bos)) out.bosTokenId = bos as number;
  if (id(eos)) out.eosTokenIds = [eos as number];
  else if (Array.isArray(eos)) {
    if (!eos.every(id)) fail(`"eos_token_id" must be a token id or a list of them, got ${JSON.stringify(eos)}`);
    if (eos.length > 0) out.eosTokenIds = eos as number[];
  }
  if (out.eosTokenIds) out.eosTokenId = out.eosTokenIds[0]!;
  return out;
}

/**
 * The shape every tensor the spec names must have, in the file's layout. Checked at load so
 * a config that disagrees with its weights is an error naming the tensor, not a broken graph.
 */
export function expectedShapes(spec: ArchSpec): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const { dModel, headDim, nHeads, nKvHeads, dMlp, vocabSize } = spec;
  const linear = (ref: LinearRef, inDim: number, outDim: number, fusedOut?: number) => {
    const out = fusedOut ?? outDim;
    shapes.set(ref.weight, ref.layout === 'in_out' ? [inDim, out] : [out, inDim]);
    if (ref.bias) shapes.set(ref.bias, [out]);
  };
  const norm = (ref: NormRef, dim: number) => {
    shapes.set(ref.weight, [dim]);
    if (ref.bias) shapes.set(ref.bias, [dim]);
  };
  const wordDim = spec.projectIn ? undefined : dModel;
  shapes.set(spec.embedTokens, [vocabSize, wordDim ?? -1]);
  if (spec.positional.kind === 'learned') shapes.set(spec.positional.weight, [spec.maxPositions + spec.positional.offset, dModel]);
  for (const layer of spec.layers) {
    norm(layer.ln1, dModel);
    const fused = layer.q.outSlice || layer.q.outRows ? (nHeads + 2 * nKvHeads) * headDim : undefined;
    linear(layer.q, dModel, nHeads * headDim, fused);
    linear(layer.k, dModel, nKvHeads * headDim, fused);
    linear(layer.v, dModel, nKvHeads * headDim, fused);
    linear(layer.o, nHeads * headDim, dModel);
    norm(layer.ln2, dModel);
    const fusedMlp = layer.up.outSlice && layer.gate?.weight === layer.up.weight ? 2 * dMlp : undefined;
    linear(layer.up, dModel, dMlp, fusedMlp);
    if (layer.gate) linear(layer.gate, dModel, dMlp, fusedMlp);
    linear(layer.down, dMlp, dModel);
    for (const ref of [layer.qNorm, layer.kNorm]) if (ref) norm(ref, headDim);
    for (const ref of [layer.postAttnNorm, layer.postMlpNorm]) if (ref) norm(ref, dModel);
  }
  if (spec.finalNorm) norm(spec.finalNorm, dModel);
  if (!spec.tiedEmbeddings) shapes.set(spec.lmHead.weight, [vocabSize, spec.projectOut ? -1 : dModel]);
  return shapes;
}
