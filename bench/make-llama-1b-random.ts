/**
 * Writes a random-weight Llama-3.2-1B-shaped model (1.236 B parameters, float32, ~4.6 GiB) in
 * the Hugging Face Llama layout, for the 1 B point of bench/scale.ts (issue 16):
 *
 *     node --import tsx bench/make-llama-1b-random.ts [--out DIR] [--force]
 *         default DIR: bench/models/llama-1b-random (git-ignored; never commit it)
 *
 * The shape of meta-llama/Llama-3.2-1B's config.json: 16 layers, d_model 2048, 32 query and
 * 8 key/value heads of 64 (GQA), SwiGLU MLP 8192, vocab 128,256, tied embeddings, RMSNorm
 * ε 1e-5, RoPE θ 500,000 with the llama3 frequency scaling. Weights are Normal(0, 0.02) from
 * the seeded PRNG of make-gpt2-small-random.ts; norm gains 1. Float32 rather than the release's
 * BF16, so the weights are what the "≈ 5 GB in float32" counts and ORT can map them.
 *
 * The file is streamed tensor by tensor in 16 MiB chunks: the writer never holds the weights.
 * Skipped when the folder already holds a model.safetensors (use --force to rewrite).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fillNormal, makeUniform } from './make-gpt2-small-random';
import { safetensorsHeader } from '../src/models/safetensors';

export const DEFAULT_OUT = path.join(__dirname, 'models', 'llama-1b-random');
const SEED = 1236;
const D = 2048;
const L = 16;
const H = 32;
const KV = 8;
const DH = 64;
const F = 8192;
const V = 128256;

export const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: D,
  intermediate_size: F,
  num_hidden_layers: L,
  num_attention_heads: H,
  num_key_value_heads: KV,
  head_dim: DH,
  hidden_act: 'silu',
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  attention_bias: false,
  attention_dropout: 0.0,
  mlp_bias: false,
  tie_word_embeddings: true,
  vocab_size: V,
  bos_token_id: 128000,
  eos_token_id: 128001,
  torch_dtype: 'float32',
};

/** The tensors in file order: name, shape, and whether it is a norm gain (all ones). */
export function llamaTensors(): { name: string; shape: number[]; ones: boolean }[] {
  const t: { name: string; shape: number[]; ones: boolean }[] = [{ name: 'model.embed_tokens.weight', shape: [V, D], ones: false }];
  for (let i = 0; i < L; i++) {
    const n = `model.layers.${i}.`;
    t.push({ name: n + 'input_layernorm.weight', shape: [D], ones: true });
    t.push({ name: n + 'self_attn.q_proj.weight', shape: [H * DH, D], ones: false });
    t.push({ name: n + 'self_attn.k_proj.weight', shape: [KV * DH, D], ones: false });
    t.push({ name: n + 'self_attn.v_proj.weight', shape: [KV * DH, D], ones: false });
    t.push({ name: n + 'self_attn.o_proj.weight', shape: [D, H * DH], ones: false });
    t.push({ name: n + 'post_attention_layernorm.weight', shape: [D], ones: true });
    t.push({ name: n + 'mlp.gate_proj.weight', shape: [F, D], ones: false });
    t.push({ name: n + 'mlp.up_proj.weight', shape: [F, D], ones: false });
    t.push({ name: n + 'mlp.down_proj.weight', shape: [D, F], ones: false });
  }
  t.push({ name: 'model.norm.weight', shape: [D], ones: true });
  return t;
}

export function makeLlama1bRandom(out: string = DEFAULT_OUT, options: { force?: boolean; log?: (m: string) => void } = {}): string {
  const log = options.log ?? ((m: string) => console.error(m));
  const file = path.join(out, 'model.safetensors');
  if (!options.force && fs.existsSync(file) && fs.existsSync(path.join(out, 'config.json'))) {
    log(`${out}: already there, not regenerated`);
    return out;
  }
  const t0 = performance.now();
  const tensors = llamaTensors();
  const sizes = tensors.map((t) => t.shape.reduce((a, b) => a * b, 1) * 4);
  const offset = sizes.reduce((a, b) => a + b, 0);
  const header = safetensorsHeader(
    tensors.map((t, i) => ({ name: t.name, shape: t.shape, dtype: 'F32' as const, byteLength: sizes[i]! })),
    { format: 'pt', generator: 'bench/make-llama-1b-random.ts', seed: String(SEED) },
  );
  fs.mkdirSync(out, { recursive: true });
  // Atomic: a half-written file must not look like a finished model to the skip check.
  const fd = fs.openSync(file + '.tmp', 'w');
  try {
    fs.writeSync(fd, header);
    const uniform = makeUniform(SEED);
    const chunk = new Float32Array(4 * 1024 * 1024);
    for (const t of tensors) {
      let left = t.shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const part = chunk.subarray(0, Math.min(left, chunk.length));
        if (t.ones) part.fill(1);
        else fillNormal(part, 0.02, uniform);
        fs.writeSync(fd, new Uint8Array(part.buffer, 0, part.byteLength));
        left -= part.length;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(file + '.tmp', file);
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(CONFIG, null, 2) + '\n');
  const params = offset / 4;
  log(`wrote ${out} (${(params / 1e9).toFixed(3)} B parameters, ${(offset / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  makeLlama1bRandom(at >= 0 ? path.resolve(args[at + 1]!) : DEFAULT_OUT, { force: args.includes('--force') });
}
