/**
 * config.json → ArchSpec, for the GPT-2, OPT and Llama families (Mistral and Qwen2 configs
 * are Llama-shaped; Qwen2 adds q/k/v biases). Tensor names are resolved against the names
 * actually present in the weights, so files saved with or without the `transformer.` /
 * `model.` prefixes both load.
 */
import { InputError } from './errors';
import type { ArchSpec, Activation, LayerWeights, LinearRef, NormRef, RopeScaling } from './spec';

export const SUPPORTED_MODEL_TYPES = ['gpt2', 'opt', 'llama', 'mistral', 'qwen2'] as const;

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
      return llamaSpec(read, modelType, hasTensor, file);
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

  fail(message: string): never {
    throw new InputError(message, this.file);
  }
}

/** Finds which prefix the weight file uses (`transformer.h.0…` vs `h.0…`). */
function prefixResolver(hasTensor: (name: string) => boolean, probe: string, prefixes: string[], file: string): (name: string) => string {
  const prefix = prefixes.find((p) => hasTensor(p + probe));
  if (prefix === undefined) {
    throw new InputError(`tensor "${prefixes[0]}${probe}" is missing from the weights (is this the right model folder?)`, file);
  }
  return (name) => prefix + name;
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
  const name = prefixResolver(hasTensor, 'wte.weight', ['transformer.', ''], file);
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
  const tied = !hasTensor('lm_head.weight');
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    nLayers, nHeads, nKvHeads: nHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'layernorm', eps: read.number('layer_norm_epsilon', 1e-5, { min: 0 }) },
    activation: activationFrom(read.string('activation_function', 'gelu_new'), read),
    preNorm: true,
    attnScale: read.bool('scale_attn_weights', true) ? 1 / Math.sqrt(headDim) : 1,
    positional: { kind: 'learned', weight: name('wpe.weight'), offset: 0 },
    embedTokens: name('wte.weight'),
    finalNorm: norm('ln_f'),
    lmHead: { weight: tied ? name('wte.weight') : 'lm_head.weight', layout: 'out_in' },
    tiedEmbeddings: tied,
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
  const name = prefixResolver(hasTensor, 'decoder.embed_tokens.weight', ['model.', ''], file);
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
  const tied = !hasTensor('lm_head.weight');
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
    embedTokens: name('decoder.embed_tokens.weight'),
    ...(projected
      ? {
          projectIn: { weight: name('decoder.project_in.weight'), layout: 'out_in' as const },
          projectOut: { weight: name('decoder.project_out.weight'), layout: 'out_in' as const },
        }
      : {}),
    ...(hasFinalNorm ? { finalNorm: norm('decoder.final_layer_norm') } : {}),
    lmHead: { weight: tied ? name('decoder.embed_tokens.weight') : 'lm_head.weight', layout: 'out_in' },
    tiedEmbeddings: tied,
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
  const explicitHeadDim = read.optionalInt('head_dim');
  const headDim = explicitHeadDim ?? dModel / nHeads;
  checkHeads(read, dModel, nHeads, nKvHeads, headDim, explicitHeadDim !== undefined);
  checkLimits(read, { layers: nLayers, heads: nHeads, width: dModel, vocab: vocabSize, positions: maxPositions, mlp: dMlp });
  const name = prefixResolver(hasTensor, 'embed_tokens.weight', ['model.', ''], file);
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
    });
  }
  const tied = !hasTensor('lm_head.weight');
  return {
    family: 'llama',
    modelType,
    nLayers, nHeads, nKvHeads, dModel, headDim, dMlp, vocabSize, maxPositions,
    norm: { kind: 'rmsnorm', eps: read.number('rms_norm_eps', 1e-6, { min: 0 }) },
    activation: activationFrom(read.string('hidden_act', 'silu'), read),
    preNorm: true,
    attnScale: 1 / Math.sqrt(headDim),
    positional: { kind: 'rope', theta: read.number('rope_theta', 10000, { above: 0 }), ...ropeScaling(read) },
    embedTokens: name('embed_tokens.weight'),
    finalNorm: { weight: name('norm.weight') },
    lmHead: { weight: tied ? name('embed_tokens.weight') : 'lm_head.weight', layout: 'out_in' },
    tiedEmbeddings: tied,
    layers,
    ...ids(read),
  };
}

function ropeScaling(read: ConfigReader): { scaling?: RopeScaling } {
  const raw = read.raw('rope_scaling');
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object') return read.fail('"rope_scaling" must be an object or null');
  const s = raw as Record<string, unknown>;
  const type = (s.rope_type ?? s.type) as string;
  const factor = Number(s.factor);
  if (!(factor > 0)) return read.fail('"rope_scaling.factor" must be a positive number');
  if (type === 'linear') return { scaling: { type: 'linear', factor } };
  if (type === 'llama3') {
    return {
      scaling: {
        type: 'llama3',
        factor,
        lowFreqFactor: Number(s.low_freq_factor ?? 1),
        highFreqFactor: Number(s.high_freq_factor ?? 4),
        originalMaxPositions: Number(s.original_max_position_embeddings ?? 8192),
      },
    };
  }
  if (type === 'default') return {};
  return read.fail(`rope_scaling type "${type}" is not supported (supported: linear, llama3)`);
}

function ids(read: ConfigReader): { bosTokenId?: number; eosTokenId?: number } {
  const out: { bosTokenId?: number; eosTokenId?: number } = {};
  const bos = read.raw('bos_token_id');
  const eos = read.raw('eos_token_id');
  if (typeof bos === 'number') out.bosTokenId = bos;
  if (typeof eos === 'number') out.eosTokenId = eos;
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
    const fused = layer.q.outSlice ? 3 * nHeads * headDim : undefined;
    linear(layer.q, dModel, nHeads * headDim, fused);
    linear(layer.k, dModel, nKvHeads * headDim, fused);
    linear(layer.v, dModel, nKvHeads * headDim, fused);
    linear(layer.o, nHeads * headDim, dModel);
    norm(layer.ln2, dModel);
    linear(layer.up, dModel, dMlp);
    if (layer.gate) linear(layer.gate, dModel, dMlp);
    linear(layer.down, dMlp, dModel);
  }
  if (spec.finalNorm) norm(spec.finalNorm, dModel);
  if (!spec.tiedEmbeddings) shapes.set(spec.lmHead.weight, [vocabSize, spec.projectOut ? -1 : dModel]);
  return shapes;
}
