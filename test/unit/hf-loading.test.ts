/**
 * Hugging Face folders as people download them: tied heads stored either way, with or without
 * the `model.`/`gpt_neox.` prefixes, GPT-2's attention-mask buffers, BF16 shards, tokenizer.json
 * alone, added/special tokens, generation_config.json, and the config aliases GPT-NeoX and
 * transformers v5 use. Each variant is built from a shared fixture and must give the logits
 * (or the error) Hugging Face's loading semantics imply.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { loadModelFolder } from '../../src/models/load';
import { SafetensorsFile } from '../../src/models/safetensors';
import { maxAbsDiff, missingShared, readJson, relativeError, sharedModel, tempDir } from '../helpers';

const IDS = [5, 17, 300, 42, 9, 77, 128, 3, 400, 2, 19, 250];

type Tensor = { dtype: 'F32' | 'BF16'; shape: readonly number[]; data: Float32Array };

function readTensors(model: string): Map<string, Tensor> {
  const file = SafetensorsFile.open(path.join(sharedModel(model), 'model.safetensors'));
  return new Map([...file.tensors.keys()].map((name) => [name, { dtype: 'F32' as const, shape: file.get(name).shape, data: file.readFloat32(name) }]));
}

function bytesOf(t: Tensor): Buffer {
  if (t.dtype === 'F32') return Buffer.from(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
  const out = Buffer.alloc(t.data.length * 2);
  const u32 = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
  for (let i = 0; i < t.data.length; i++) out.writeUInt16LE((u32[i]! >>> 16) & 0xffff, i * 2); // truncation to bfloat16
  return out;
}

function writeSafetensors(file: string, tensors: Map<string, Tensor>): void {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = bytesOf(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, ...parts]));
}

/** Every folder this file writes, removed when it ends. */
const created: string[] = [];
after(() => created.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
const scratch = (tag: string) => {
  const dir = tempDir(tag);
  created.push(dir);
  return dir;
};

/** A model folder: the fixture's config with `changes` (undefined deletes a field), and `tensors`. */
function folder(model: string, tag: string, changes: Record<string, unknown>, tensors: Map<string, Tensor>, shards = 1): string {
  const dir = scratch(tag);
  const config: Record<string, unknown> = { ...readJson(path.join(sharedModel(model), 'config.json')) };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete config[k];
    else config[k] = v;
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  if (shards === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    return dir;
  }
  const weightMap: Record<string, string> = {};
  const names = [...tensors.keys()];
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part = new Map(names.filter((_, i) => i % shards === s).map((n) => [n, tensors.get(n)!]));
    for (const n of part.keys()) weightMap[n] = file;
    writeSafetensors(path.join(dir, file), part);
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

const without = (tensors: Map<string, Tensor>, ...names: string[]) => new Map([...tensors].filter(([n]) => !names.includes(n)));
const renamed = (tensors: Map<string, Tensor>, rename: (n: string) => string) => new Map([...tensors].map(([n, t]) => [rename(n), t]));

async function logits(dir: string, allPositions = false): Promise<Float32Array> {
  const engine = await Engine.load(dir);
  try {
    const [row] = await engine.forward({ ids: [IDS], allLogits: allPositions });
    return allPositions ? row!.logits! : row!.logitsLast;
  } finally {
    await engine.dispose();
  }
}

const same = (a: Float32Array, b: Float32Array, what: string) => assert.ok(maxAbsDiff(a, b) < 1e-5, `${what}: max |Δ| ${maxAbsDiff(a, b)}`);

describe('tied embeddings, as HF ties them on load', { skip: missingShared('models/random-tiny-llama/model.safetensors') || missingShared('models/random-tiny-neox/model.safetensors') }, () => {
  const llama = readTensors('random-tiny-llama');
  const embed = 'model.embed_tokens.weight';

  it('a tied Llama that stores only lm_head.weight loads, and equals the same matrix stored as the embedding', async () => {
    const headOnly = folder('random-tiny-llama', 'tied-head-only', { tie_word_embeddings: true }, without(llama, embed));
    const embedOnly = folder('random-tiny-llama', 'tied-embed-only', { tie_word_embeddings: true }, new Map([...without(llama, 'lm_head.weight', embed), [embed, llama.get('lm_head.weight')!]]));
    same(await logits(headOnly), await logits(embedOnly), 'head-only vs embedding-only');
    // And it attributes, with the head's relevance under its HF name.
    const engine = await Engine.load(headOnly);
    try {
      const [a] = await engine.attribute({ ids: [IDS], targets: [{ kind: 'logit', position: IDS.length - 1, token: 10 }], mode: 'cp-lrp', weights: ['lm_head.weight'] });
      assert.ok(Math.abs(a!.tokenRelevance.reduce((x, y) => x + y, 0) - a!.targetValue) < 1e-5 * Math.max(1, Math.abs(a!.targetValue)));
      const head = a!.weightRelevance['lm_head.weight']!;
      assert.equal(head.length, 512 * 64);
      assert.ok(Math.abs(head.reduce((x, y) => x + y, 0) - a!.targetValue) < 1e-4, 'R(lm_head) sums to the logit (no bias)');
    } finally {
      await engine.dispose();
    }
  });

  it('with both stored and tie_word_embeddings true, the embedding is used for both (HF re-ties the head to it)', async () => {
    const both = folder('random-tiny-llama', 'tied-both', { tie_word_embeddings: true }, llama);
    const embedOnly = folder('random-tiny-llama', 'tied-embed', { tie_word_embeddings: true }, without(llama, 'lm_head.weight'));
    const untied = await logits(sharedModel('random-tiny-llama'));
    const tied = await logits(both);
    same(tied, await logits(embedOnly), 'both stored vs embedding only');
    assert.ok(maxAbsDiff(tied, untied) > 1e-2, 'the untied head (a different matrix) is not used');
  });

  it('an untied model without its head is refused, naming the tensor and tie_word_embeddings', () => {
    const dir = folder('random-tiny-llama', 'untied-no-head', { tie_word_embeddings: false }, without(llama, 'lm_head.weight'));
    assert.throws(() => loadModelFolder(dir), /"lm_head\.weight" is missing from the weights and "tie_word_embeddings" is false/);
    const neither = folder('random-tiny-llama', 'tied-neither', { tie_word_embeddings: true }, without(llama, 'lm_head.weight', embed));
    assert.throws(() => loadModelFolder(neither), /"model\.embed_tokens\.weight" is missing .*"lm_head\.weight"/);
  });

  it('a tied GPT-NeoX that stores only embed_out.weight loads like the embedding-only file', async () => {
    const neox = readTensors('random-tiny-neox');
    const headOnly = folder('random-tiny-neox', 'neox-head-only', { tie_word_embeddings: true }, without(neox, 'gpt_neox.embed_in.weight'));
    const embedOnly = folder('random-tiny-neox', 'neox-embed-only', { tie_word_embeddings: true }, new Map([...without(neox, 'embed_out.weight', 'gpt_neox.embed_in.weight'), ['gpt_neox.embed_in.weight', neox.get('embed_out.weight')!]]));
    same(await logits(headOnly), await logits(embedOnly), 'NeoX head-only vs embedding-only');
  });
});

describe('tensor names, buffers and formats', { skip: missingShared('models/random-tiny-qwen3/model.safetensors') || missingShared('models/random-tiny-gpt2/model.safetensors') || missingShared('models/random-tiny-gemma2/model.safetensors') }, () => {
  it('files saved without the model. / gpt_neox. / transformer. prefixes give the same logits', async () => {
    for (const [model, prefix] of [['random-tiny-qwen3', 'model.'], ['random-tiny-neox', 'gpt_neox.'], ['random-tiny-gpt2', 'transformer.']] as const) {
      const bare = folder(model, `${model}-bare`, {}, renamed(readTensors(model), (n) => (n.startsWith(prefix) ? n.slice(prefix.length) : n)));
      same(await logits(bare), await logits(sharedModel(model)), `${model} without "${prefix}"`);
    }
  });

  it("GPT-2's attn.bias / attn.masked_bias buffers are ignored: same logits, same parameter count", async () => {
    const gpt2 = readTensors('random-tiny-gpt2');
    const withBuffers = new Map(gpt2);
    const n = 128;
    const mask = new Float32Array(n * n).map((_, i) => (i % n <= Math.floor(i / n) ? 1 : 0));
    for (const l of [0, 1]) {
      withBuffers.set(`transformer.h.${l}.attn.bias`, { dtype: 'F32', shape: [1, 1, n, n], data: mask });
      withBuffers.set(`transformer.h.${l}.attn.masked_bias`, { dtype: 'F32', shape: [], data: new Float32Array([-1e4]) });
    }
    const dir = folder('random-tiny-gpt2', 'gpt2-buffers', {}, withBuffers);
    same(await logits(dir), await logits(sharedModel('random-tiny-gpt2')), 'with buffers');
    const [a, b] = [await Engine.load(dir), await Engine.load(sharedModel('random-tiny-gpt2'))];
    try {
      assert.equal(a.info().parameters, b.info().parameters);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it("Pythia's attention.bias / masked_bias / rotary_emb.inv_freq buffers are ignored: same logits, same parameter count", async () => {
    const withBuffers = new Map(readTensors('random-tiny-neox'));
    const n = 128;
    for (const l of [0, 1]) {
      withBuffers.set(`gpt_neox.layers.${l}.attention.bias`, { dtype: 'F32', shape: [1, 1, n, n], data: new Float32Array(n * n).map((_, i) => (i % n <= Math.floor(i / n) ? 1 : 0)) });
      withBuffers.set(`gpt_neox.layers.${l}.attention.masked_bias`, { dtype: 'F32', shape: [], data: new Float32Array([-1e9]) });
      withBuffers.set(`gpt_neox.layers.${l}.attention.rotary_emb.inv_freq`, { dtype: 'F32', shape: [2], data: new Float32Array([1, 0.01]) });
    }
    const dir = folder('random-tiny-neox', 'neox-buffers', {}, withBuffers);
    same(await logits(dir), await logits(sharedModel('random-tiny-neox')), 'with buffers');
    const [a, b] = [await Engine.load(dir), await Engine.load(sharedModel('random-tiny-neox'))];
    try {
      assert.equal(a.info().parameters, b.info().parameters);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it('a Gemma 2 in BF16, sharded in 3 files with an index, loads and keeps the logits close', async () => {
    const bf16 = new Map([...readTensors('random-tiny-gemma2')].map(([n, t]) => [n, { ...t, dtype: 'BF16' as const }]));
    const dir = folder('random-tiny-gemma2', 'gemma2-bf16-shards', {}, bf16, 3);
    const ours = await logits(dir);
    const reference = await logits(sharedModel('random-tiny-gemma2'));
    assert.ok(maxAbsDiff(ours, reference) < 0.1, `max |Δ| ${maxAbsDiff(ours, reference)}`); // 7 mantissa bits; logits capped at ±5
  });
});

describe('config aliases and what the config must not contradict', { skip: missingShared('models/random-tiny-neox/model.safetensors') || missingShared('models/random-tiny-gemma2/model.safetensors') }, () => {
  const neox = () => readTensors('random-tiny-neox');

  it('GPT-NeoX: partial_rotary_factor, rope_theta and transformers v5 rope_parameters mean rotary_pct and rotary_emb_base', async () => {
    const reference = await logits(sharedModel('random-tiny-neox'));
    const variants: Record<string, unknown>[] = [
      { rotary_pct: undefined, partial_rotary_factor: 0.25 },
      { rotary_emb_base: undefined, rope_theta: 10000 },
      { rotary_pct: undefined, rotary_emb_base: undefined, rope_scaling: undefined, rope_parameters: { rope_type: 'default', rope_theta: 10000, partial_rotary_factor: 0.25 } },
      { rotary_pct: 0.25, partial_rotary_factor: 0.25 },
    ];
    for (const [i, changes] of variants.entries()) same(await logits(folder('random-tiny-neox', `neox-alias-${i}`, changes, neox())), reference, JSON.stringify(changes));
    // The rotary share matters: a different value gives different logits (the aliases are read).
    assert.ok(maxAbsDiff(await logits(folder('random-tiny-neox', 'neox-rot-half', { rotary_pct: undefined, partial_rotary_factor: 0.5 }, neox())), reference) > 1e-3);
  });

  it('disagreeing aliases, unsupported values and malformed per-layer settings name the field', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['random-tiny-neox', { partial_rotary_factor: 0.5 }, /"rotary_pct" = 0\.25 and "partial_rotary_factor" = 0\.5 disagree/],
      ['random-tiny-neox', { rope_parameters: { rope_theta: 500 } }, /"rotary_emb_base" = 10000 and "rope_parameters\.rope_theta" = 500 disagree/],
      ['random-tiny-neox', { rotary_pct: 0.1875 }, /"rotary_pct" 0\.1875 gives 3 rotary dims/],
      ['random-tiny-neox', { rotary_pct: 1.5 }, /"rotary_pct" must be at most 1/],
      ['random-tiny-neox', { rope_scaling: { type: 'dynamic', factor: 2 } }, /"rope_scaling" type "dynamic" is not supported/],
      ['random-tiny-gemma2', { layer_types: ['sliding_attention'] }, /"layer_types" must list one entry per layer \(2\)/],
      ['random-tiny-gemma2', { layer_types: ['sliding_attention', 'chunked_attention'] }, /"layer_types\[1\]" is "chunked_attention"/],
      ['random-tiny-gemma2', { sliding_window: 0 }, /"sliding_window" must be a positive integer/],
      ['random-tiny-gemma2', { attn_logit_softcapping: -1 }, /"attn_logit_softcapping" must be greater than 0/],
      ['random-tiny-gemma2', { hidden_activation: 'gelu_cubic' }, /unsupported activation "gelu_cubic"/],
      ['random-tiny-qwen3', { rope_theta: 1e6, rope_parameters: { rope_theta: 1e4 } }, /"rope_theta" = 1000000 and "rope_parameters\.rope_theta" = 10000 disagree/],
    ];
    for (const [model, changes, expected] of cases) {
      const dir = scratch('bad-config');
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...readJson(path.join(sharedModel(model), 'config.json')), ...changes }));
      fs.copyFileSync(path.join(sharedModel(model), 'model.safetensors'), path.join(dir, 'model.safetensors'));
      assert.throws(() => loadModelFolder(dir), (err: Error) => expected.test(err.message) && err.message.includes('config.json'), `${JSON.stringify(changes)} → ${expected}`);
    }
  });

  it('Gemma 2: the window of 8 changes logits only at positions ≥ 8, and layer_types decides which layers slide', async () => {
    const gemma = readTensors('random-tiny-gemma2');
    const windowed = await logits(sharedModel('random-tiny-gemma2'), true);
    const full = await logits(folder('random-tiny-gemma2', 'gemma2-nowindow', { sliding_window: null }, gemma), true);
    const V = 512;
    for (let t = 0; t < IDS.length; t++) {
      const diff = maxAbsDiff(windowed.subarray(t * V, (t + 1) * V), full.subarray(t * V, (t + 1) * V));
      if (t < 8) assert.ok(diff < 1e-5, `position ${t}: ${diff}`);
      else assert.ok(diff > 1e-4, `position ${t} sees past the window: ${diff}`);
    }
    same(await logits(folder('random-tiny-gemma2', 'gemma2-fulltypes', { layer_types: ['full_attention', 'full_attention'] }, gemma), true), full, 'layer_types all full');
    same(await logits(folder('random-tiny-gemma2', 'gemma2-types', { layer_types: ['sliding_attention', 'full_attention'] }, gemma), true), windowed, 'layer_types = the even-layer default');
  });
});

describe('tokenizer and generation files', { skip: missingShared('models/tiny-ioi-gpt2/tokenizer.json') || missingShared('models/stories260k/tokenizer.json') }, () => {
  const copyWithout = (model: string, tag: string, drop: string[]) => {
    const dir = scratch(tag);
    for (const f of fs.readdirSync(sharedModel(model))) {
      if (!drop.includes(f) && !f.endsWith('.onnx') && !f.endsWith('.jsonl') && fs.statSync(path.join(sharedModel(model), f)).isFile()) fs.copyFileSync(path.join(sharedModel(model), f), path.join(dir, f));
    }
    return dir;
  };

  it('tokenizer.json without tokenizer_config.json tokenizes the reference prompts to the reference ids (GPT-2 and Llama/SentencePiece)', async () => {
    for (const model of ['tiny-ioi-gpt2', 'stories260k']) {
      const loaded = loadModelFolder(copyWithout(model, `${model}-notokconfig`, ['tokenizer_config.json', 'special_tokens_map.json']));
      const reference = readJson(path.join(sharedModel('..'), 'reference', model, 'lrp_reference.json'));
      for (const p of reference.prompts) assert.deepEqual(loaded.tokenizer!.encode(p.text).ids, p.tokens, `${model}: ${p.text}`);
    }
  });

  it('special and added tokens: <|endoftext|> is one token, Llama prompts start with BOS from the post-processor', () => {
    const gpt2 = loadModelFolder(sharedModel('tiny-ioi-gpt2')).tokenizer!;
    const ids = gpt2.encodeIds('When Mary<|endoftext|>');
    assert.equal(ids[ids.length - 1], 2087);
    assert.equal(gpt2.singleTokenId('<|endoftext|>'), 2087);
    const llama = loadModelFolder(sharedModel('stories260k')).tokenizer!;
    assert.equal(llama.encodeIds('Once upon a time')[0], 1);
    assert.notEqual(llama.encodeIds('Once upon a time', false)[0], 1);
  });

  it('generation_config.json gives the bos/eos ids (a list of eos ids kept whole); a broken one is an error naming it', () => {
    const dir = copyWithout('tiny-ioi-gpt2', 'genconfig', []);
    assert.equal(loadModelFolder(dir).spec.eosTokenId, 2087);
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 2087, eos_token_id: [13, 2087] }));
    const spec = loadModelFolder(dir).spec;
    assert.equal(spec.eosTokenId, 13);
    assert.deepEqual(spec.eosTokenIds, [13, 2087]);
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: ['</s>'] }));
    assert.throws(() => loadModelFolder(dir), /generation_config\.json: "eos_token_id" must be a token id or a list of them/);
    fs.writeFileSync(path.join(dir, 'generation_config.json'), '{"eos_token_id": ');
    assert.throws(() => loadModelFolder(dir), /generation_config\.json: not valid JSON/);
  });
});

describe('the three folders of the issue, from the CLI', { skip: missingShared('models/random-tiny-llama/model.safetensors') || missingShared('models/random-tiny-neox/model.safetensors') || missingShared('models/random-tiny-gemma2/model.safetensors') }, () => {
  const REPO_ROOT = path.resolve(__dirname, '..', '..');
  const cli = (...args: string[]) => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', "require('./src/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })", ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    return { code: run.status, json: run.status === 0 ? JSON.parse(run.stdout) : null, stderr: run.stderr };
  };
  const ids = IDS.join(',');

  it('a tied Llama storing only lm_head.weight, a sequential GPT-NeoX and a Gemma 2 with a window shorter than the prompt: info and attribute', () => {
    const llama = readTensors('random-tiny-llama');
    const folders: [string, string][] = [
      [folder('random-tiny-llama', 'cli-tied-head', { tie_word_embeddings: true }, without(llama, 'model.embed_tokens.weight')), 'llama'],
      [folder('random-tiny-neox', 'cli-neox-seq', { use_parallel_residual: false }, readTensors('random-tiny-neox')), 'gpt_neox'],
      [sharedModel('random-tiny-gemma2'), 'gemma2'], // sliding_window 8 on layer 0; the prompt has 12 tokens
    ];
    for (const [dir, family] of folders) {
      const info = cli('info', '--model', dir, '--json');
      assert.equal(info.code, 0, info.stderr);
      assert.equal(info.json.architecture, family);
      for (const mode of ['attnlrp', 'cp-lrp']) {
        const run = cli('attribute', '--model', dir, '--ids', ids, '--target-id', '10', '--mode', mode, '--json');
        assert.equal(run.code, 0, `${family} ${mode}: ${run.stderr}`);
        const tokens = run.json.token_relevance as number[];
        assert.equal(tokens.length, IDS.length);
        assert.ok(tokens.every(Number.isFinite));
        if (mode === 'cp-lrp') {
          // The whole budget arrives: tokens + linear biases + LayerNorm β = the (capped) logit.
          const { token, bias_linear, bias_layernorm } = run.json.sums;
          const total = token + bias_linear + bias_layernorm;
          assert.ok(Math.abs(total - run.json.target_value) < 1e-4 * Math.max(1, Math.abs(run.json.target_value)), `${family}: ${total} vs ${run.json.target_value}`);
        }
      }
    }
  });
});

describe('Phi-3 (fused qkv_proj and gate_up_proj) rewritten from the random Llama', { skip: missingShared('models/random-tiny-llama/model.safetensors') }, () => {
  /** The same weights, fused as Phi-3 stores them: qkv_proj = [q; k; v] rows, gate_up_proj = [gate; up]. */
  const phi3Folder = (changes: Record<string, unknown> = {}) => {
    const llama = readTensors('random-tiny-llama');
    const out = new Map<string, Tensor>();
    const rows = (...parts: Tensor[]): Tensor => {
      const data = new Float32Array(parts.reduce((n, t) => n + t.data.length, 0));
      let at = 0;
      for (const t of parts) {
        data.set(t.data, at);
        at += t.data.length;
      }
      return { dtype: 'F32', shape: [parts.reduce((n, t) => n + t.shape[0]!, 0), parts[0]!.shape[1]!], data };
    };
    for (const [n, t] of llama) {
      const m = /^model\.layers\.(\d+)\.(self_attn\.[qkv]_proj|mlp\.(?:gate|up)_proj)\.weight$/.exec(n);
      if (!m) out.set(n, t);
    }
    for (const l of [0, 1]) {
      const p = `model.layers.${l}`;
      out.set(`${p}.self_attn.qkv_proj.weight`, rows(...['q', 'k', 'v'].map((x) => llama.get(`${p}.self_attn.${x}_proj.weight`)!)));
      out.set(`${p}.mlp.gate_up_proj.weight`, rows(llama.get(`${p}.mlp.gate_proj.weight`)!, llama.get(`${p}.mlp.up_proj.weight`)!));
    }
    return folder('random-tiny-llama', 'phi3', { model_type: 'phi3', architectures: ['Phi3ForCausalLM'], sliding_window: null, ...changes }, out);
  };

  it('gives the Llama logits and, in both modes, the Llama relevance; fused weight relevance is the parts joined', async () => {
    const [phi3, llama] = [await Engine.load(phi3Folder()), await Engine.load(sharedModel('random-tiny-llama'))];
    try {
      assert.equal(phi3.info().architecture, 'phi3');
      same((await phi3.forward({ ids: [IDS] }))[0]!.logitsLast, (await llama.forward({ ids: [IDS] }))[0]!.logitsLast, 'phi3 vs llama logits');
      const target = { kind: 'logit_diff' as const, position: IDS.length - 1, token: 10, foil: 20 };
      for (const mode of ['attnlrp', 'cp-lrp'] as const) {
        const [a] = await phi3.attribute({ ids: [IDS], targets: [target], mode, weights: ['model.layers.1.self_attn.qkv_proj.weight', 'model.layers.0.mlp.gate_up_proj.weight'] });
        const [b] = await llama.attribute({ ids: [IDS], targets: [target], mode, weights: ['model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.k_proj.weight', 'model.layers.1.self_attn.v_proj.weight', 'model.layers.0.mlp.gate_proj.weight', 'model.layers.0.mlp.up_proj.weight'] });
        same(a!.tokenRelevance, b!.tokenRelevance, `${mode} tokens`);
        same(Float32Array.from(a!.headRelevance.flat()), Float32Array.from(b!.headRelevance.flat()), `${mode} heads`);
        const joined = (...names: string[]) => Float32Array.from(names.flatMap((n) => Array.from(b!.weightRelevance[n]!)));
        same(a!.weightRelevance['model.layers.1.self_attn.qkv_proj.weight']!, joined(...['q', 'k', 'v'].map((x) => `model.layers.1.self_attn.${x}_proj.weight`)), `${mode} qkv_proj relevance`);
        same(a!.weightRelevance['model.layers.0.mlp.gate_up_proj.weight']!, joined('model.layers.0.mlp.gate_proj.weight', 'model.layers.0.mlp.up_proj.weight'), `${mode} gate_up_proj relevance`);
      }
    } finally {
      await phi3.dispose();
      await llama.dispose();
    }
  });

  it('partial_rotary_factor changes the model; long-context rope scaling and odd rotary dims are refused naming the field', async () => {
    assert.ok(maxAbsDiff(await logits(phi3Folder({ partial_rotary_factor: 0.5 })), await logits(phi3Folder())) > 1e-3);
    assert.throws(() => loadModelFolder(phi3Folder({ rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1] } })), /"rope_scaling" type "longrope" \(Phi-3 long context\) is not supported/);
    assert.throws(() => loadModelFolder(phi3Folder({ partial_rotary_factor: 0.3125 })), /"partial_rotary_factor" 0\.3125 gives 5 rotary dims of the 16 per head/);
  });
});

describe('Gemma 3 (text) against the oracle\'s explicit numpy LRP', { skip: missingShared('models/random-tiny-gemma2/model.safetensors') }, () => {
  /** random-tiny-gemma2's weights as a Gemma 3: the q/k norm gains of fixtures/gemma3_explicit.py. */
  const gemma3Folder = (changes: Record<string, unknown> = {}) => {
    const tensors = readTensors('random-tiny-gemma2');
    for (const l of [0, 1]) {
      tensors.set(`model.layers.${l}.self_attn.q_norm.weight`, { dtype: 'F32', shape: [24], data: Float32Array.from({ length: 24 }, (_, i) => 0.3 * Math.sin(i + 7 * l)) });
      tensors.set(`model.layers.${l}.self_attn.k_norm.weight`, { dtype: 'F32', shape: [24], data: Float32Array.from({ length: 24 }, (_, i) => 0.3 * Math.cos(i + 7 * l)) });
    }
    return folder('random-tiny-gemma2', 'gemma3', {
      model_type: 'gemma3_text',
      architectures: ['Gemma3ForCausalLM'],
      attn_logit_softcapping: undefined,
      final_logit_softcapping: undefined,
      sliding_window: 4,
      sliding_window_pattern: 2,
      rope_theta: 1e6,
      rope_local_base_freq: 1e4,
      ...changes,
    }, tensors);
  };
  const expected = readJson(path.join(__dirname, 'fixtures', 'gemma3_explicit.json'));

  it('q/k norms, the local RoPE base on the sliding layer and no caps: logits and AttnLRP token relevance match', async () => {
    const engine = await Engine.load(gemma3Folder());
    try {
      assert.equal(engine.info().architecture, 'gemma3');
      for (const c of expected.cases) {
        const [a] = await engine.attribute({ ids: [c.ids], targets: [{ kind: 'logit', position: c.ids.length - 1, token: c.token }], mode: 'attnlrp' });
        assert.ok(Math.abs(a!.targetValue - c.logit) < 1e-4, `logit ${a!.targetValue} vs ${c.logit}`);
        const err = relativeError(a!.tokenRelevance, c.token_relevance);
        assert.ok(err < 1e-4, `token relevance: relative error ${err.toExponential(2)}`);
        const [cp] = await engine.attribute({ ids: [c.ids], targets: [{ kind: 'logit', position: c.ids.length - 1, token: c.token }], mode: 'cp-lrp' });
        const total = cp!.tokenRelevance.reduce((x, y) => x + y, 0);
        assert.ok(Math.abs(total - cp!.targetValue) < 1e-5 * Math.max(1, Math.abs(cp!.targetValue)), `CP-LRP conserves: ${total} vs ${cp!.targetValue}`);
      }
    } finally {
      await engine.dispose();
    }
  });

  it('the local base matters only on sliding layers; v5 per-layer-type rope_parameters mean the same; encoders are refused', async () => {
    const base = await logits(gemma3Folder());
    assert.ok(maxAbsDiff(await logits(gemma3Folder({ rope_local_base_freq: 1e6 })), base) > 1e-4, 'the sliding layer uses rope_local_base_freq');
    same(await logits(gemma3Folder({ rope_theta: undefined, rope_local_base_freq: undefined, rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } } })), base, 'v5 rope_parameters');
    same(await logits(gemma3Folder({ sliding_window_pattern: undefined, layer_types: ['sliding_attention', 'full_attention'] })), base, 'layer_types');
    assert.throws(() => loadModelFolder(gemma3Folder({ use_bidirectional_attention: true })), /"use_bidirectional_attention"/);
  });
});
