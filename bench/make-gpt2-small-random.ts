/**
 * Writes a random-weight GPT-2-small-sized model (124M parameters, float32, ~475 MiB) in the
 * Hugging Face GPT-2 layout, for the benchmarks:
 *
 *     node --import tsx bench/make-gpt2-small-random.ts [--out DIR] [--force] [--positions N]
 *         default DIR: bench/models/gpt2-small-random (git-ignored); with --positions 2048,
 *         bench/models/gpt2-small-random-2k (the long-prompt point of bench/scale.ts: the same
 *         model with more learned positions, all Normal(0, 0.02))
 *
 * 12 layers, d_model 768, 12 heads, MLP 3072, vocab 50257, 1024 positions, gelu_new, tied
 * lm_head (no `lm_head.weight` in the file). Weights are Normal(0, 0.02) from a seeded PRNG
 * (sfc32 + Box-Muller, seed 124 as in shared/reference/oracle/make_gpt2_small_random.py, but
 * NOT numpy/torch's stream: the values differ from the oracle's model, the shapes and names do
 * not); LayerNorm weights 1, all biases 0. The file is the same on every run. Skipped when the
 * folder already holds a model.safetensors (use --force to rewrite).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeSafetensors } from '../src/models/safetensors';

export const SEED = 124;
export const DEFAULT_OUT = path.join(__dirname, 'models', 'gpt2-small-random');

const D = 768;
const L = 12;
const H = 12;
const F = 4 * D;
const V = 50257;
const DEFAULT_POSITIONS = 1024;

export const CONFIG = {
  model_type: 'gpt2',
  architectures: ['GPT2LMHeadModel'],
  vocab_size: V,
  n_positions: DEFAULT_POSITIONS,
  n_ctx: DEFAULT_POSITIONS,
  n_embd: D,
  n_layer: L,
  n_head: H,
  n_inner: null,
  activation_function: 'gelu_new',
  resid_pdrop: 0.0,
  embd_pdrop: 0.0,
  attn_pdrop: 0.0,
  layer_norm_epsilon: 1e-5,
  initializer_range: 0.02,
  scale_attn_weights: true,
  scale_attn_by_inverse_layer_idx: false,
  reorder_and_upcast_attn: false,
  use_cache: true,
  bos_token_id: 50256,
  eos_token_id: 50256,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
};

/** sfc32 seeded through splitmix32: small, fast, and identical on every platform. */
export function makeUniform(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296; // [0, 1)
  };
}

/** Fills `out` with Normal(0, std) draws (Box-Muller, both outputs used). */
export function fillNormal(out: Float32Array, std: number, uniform: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]: log is finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}

export function makeGpt2SmallRandom(out: string = DEFAULT_OUT, options: { force?: boolean; log?: (m: string) => void; positions?: number } = {}): string {
  const P = options.positions ?? DEFAULT_POSITIONS;
  const log = options.log ?? ((m: string) => console.error(m));
  const file = path.join(out, 'model.safetensors');
  if (!options.force && fs.existsSync(file) && fs.existsSync(path.join(out, 'config.json'))) {
    log(`${out}: already there, not regenerated`);
    return out;
  }
  const t0 = performance.now();
  const uniform = makeUniform(SEED);
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  const normal = (name: string, shape: number[]) => {
    const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
    fillNormal(data, 0.02, uniform);
    tensors.push({ name, shape, data });
  };
  const constant = (name: string, n: number, value: number) => tensors.push({ name, shape: [n], data: new Float32Array(n).fill(value) });
  normal('wte.weight', [V, D]);
  normal('wpe.weight', [P, D]);
  for (let i = 0; i < L; i++) {
    const n = `h.${i}.`;
    constant(n + 'ln_1.weight', D, 1);
    constant(n + 'ln_1.bias', D, 0);
    normal(n + 'attn.c_attn.weight', [D, 3 * D]); // Conv1D layout [in, out]
    constant(n + 'attn.c_attn.bias', 3 * D, 0);
    normal(n + 'attn.c_proj.weight', [D, D]);
    constant(n + 'attn.c_proj.bias', D, 0);
    constant(n + 'ln_2.weight', D, 1);
    constant(n + 'ln_2.bias', D, 0);
    normal(n + 'mlp.c_fc.weight', [D, F]);
    constant(n + 'mlp.c_fc.bias', F, 0);
    normal(n + 'mlp.c_proj.weight', [F, D]);
    constant(n + 'mlp.c_proj.bias', D, 0);
  }
  constant('ln_f.weight', D, 1);
  constant('ln_f.bias', D, 0);
  const bytes = encodeSafetensors(tensors, { format: 'pt', generator: 'bench/make-gpt2-small-random.ts', seed: String(SEED) });
  fs.mkdirSync(out, { recursive: true });
  // Atomic: a half-written file must not look like a finished model to the skip check.
  fs.writeFileSync(file + '.tmp', bytes);
  fs.renameSync(file + '.tmp', file);
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...CONFIG, n_positions: P, n_ctx: P }, null, 2) + '\n');
  const params = tensors.reduce((s, t) => s + t.data.length, 0);
  log(`wrote ${out} (${(params / 1e6).toFixed(1)}M parameters, ${(bytes.length / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const p = args.indexOf('--positions');
  const positions = p >= 0 ? Number(args[p + 1]) : DEFAULT_POSITIONS;
  if (!Number.isInteger(positions) || positions < 1) throw new Error('--positions needs a positive integer');
  const out = at >= 0 ? path.resolve(args[at + 1]!) : positions === DEFAULT_POSITIONS ? DEFAULT_OUT : `${DEFAULT_OUT}-${positions % 1024 === 0 ? `${positions / 1024}k` : positions}`;
  makeGpt2SmallRandom(out, { force: args.includes('--force'), positions });
}
