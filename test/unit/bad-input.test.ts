/**
 * Bad input gets a clear error naming the file and the problem, and no crash: one test per
 * case from the foundation and relevance issues. Broken model folders are made in a temp dir
 * from the embedded model.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { InputError } from '../../src/models/errors';
import { loadModelFolder } from '../../src/models/load';
import { EMBEDDED_MODEL, tempDir } from '../helpers';
import { COMPOSITES } from '../../src/vocabulary';

function copyModel(tag: string): string {
  const dir = tempDir(tag);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(EMBEDDED_MODEL, f), path.join(dir, f));
  return dir;
}

function rewriteHeader(dir: string, edit: (header: Record<string, any>) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
  edit(header);
  const json = Buffer.from(JSON.stringify(header).padEnd(n, ' '));
  assert.ok(json.length <= n, 'edited header must fit in place');
  json.copy(bytes, 8);
  fs.writeFileSync(file, bytes);
}

function expectError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InputError, `expected an InputError, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

const config = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
const writeConfig = (dir: string, c: object) => fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));

describe('bad model folders', () => {
  it('a folder that does not exist', () => expectError(() => loadModelFolder('/nonexistent/model'), /model folder does not exist/));

  it('config.json missing', () => {
    const dir = copyModel('noconfig');
    fs.rmSync(path.join(dir, 'config.json'));
    expectError(() => loadModelFolder(dir), /config\.json is missing/);
  });

  it('weights missing', () => {
    const dir = copyModel('noweights');
    fs.rmSync(path.join(dir, 'model.safetensors'));
    expectError(() => loadModelFolder(dir), /no model\.safetensors/);
  });

  it('truncated safetensors names the file and the tensor past the end', () => {
    const dir = copyModel('truncated');
    const file = path.join(dir, 'model.safetensors');
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    expectError(() => loadModelFolder(dir), /model\.safetensors: tensor ".*": data_offsets end \d+ is past the end/);
  });

  it('truncated inside the header', () => {
    const dir = copyModel('truncheader');
    fs.truncateSync(path.join(dir, 'model.safetensors'), 100);
    expectError(() => loadModelFolder(dir), /truncated: header says/);
  });

  it('a header length beyond the limit', () => {
    const dir = copyModel('hugeheader');
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    bytes.writeBigUInt64LE(1n << 40n, 0);
    fs.writeFileSync(file, bytes);
    expectError(() => loadModelFolder(dir), /header length \d+ exceeds/);
  });

  it('a header whose size disagrees with shape × dtype', () => {
    const dir = copyModel('liesize');
    rewriteHeader(dir, (h) => (h['transformer.h.0.ln_1.weight'].shape = [64]));
    expectError(() => loadModelFolder(dir), /tensor "transformer\.h\.0\.ln_1\.weight": shape \[64\] × F32 needs 256 bytes but data_offsets span 512/);
  });

  it('overlapping tensors', () => {
    const dir = copyModel('overlap');
    rewriteHeader(dir, (h) => (h['transformer.h.0.ln_1.bias'].data_offsets = [...h['transformer.h.0.ln_1.weight'].data_offsets]));
    expectError(() => loadModelFolder(dir), /overlap in the data section/);
  });

  it('an unsupported dtype', () => {
    const dir = copyModel('dtype');
    rewriteHeader(dir, (h) => (h['transformer.h.0.ln_1.weight'].dtype = 'F8_E4M3'));
    expectError(() => loadModelFolder(dir), /unsupported dtype "F8_E4M3"/);
  });

  it('an integer tensor where a weight belongs', () => {
    const dir = copyModel('intweight');
    rewriteHeader(dir, (h) => (h['transformer.h.0.ln_1.weight'].dtype = 'I32'));
    expectError(() => loadModelFolder(dir), /tensor "transformer\.h\.0\.ln_1\.weight" has dtype I32/);
  });

  it('an unknown model_type lists the supported ones', () => {
    const dir = copyModel('modeltype');
    writeConfig(dir, { ...config(dir), model_type: 'mamba' });
    expectError(() => loadModelFolder(dir), /unsupported model_type "mamba" \(supported: gpt2, opt, llama, mistral, qwen2, qwen3, gpt_neox, gemma2, gemma3_text, phi3\)/);
  });

  it('a config that disagrees with the tensor shapes', () => {
    const dir = copyModel('shape');
    writeConfig(dir, { ...config(dir), n_embd: 256 });
    expectError(() => loadModelFolder(dir), /tensor "transformer\.wte\.weight" has shape \[2088, 128\] but config\.json implies \[2088, 256\]/);
  });

  it('a missing tensor', () => {
    const dir = copyModel('missing');
    rewriteHeader(dir, (h) => {
      h['transformer.h.1.mlp.c_fc.weightX'] = h['transformer.h.1.mlp.c_fc.weight'];
      delete h['transformer.h.1.mlp.c_fc.weight'];
    });
    expectError(() => loadModelFolder(dir), /tensor "transformer\.h\.1\.mlp\.c_fc\.weight" is missing/);
  });

  it('heads that do not divide the width', () => {
    const dir = copyModel('heads');
    writeConfig(dir, { ...config(dir), n_head: 3 });
    expectError(() => loadModelFolder(dir), /not divisible by the 3 attention heads/);
  });

  it('an absurd number of layers is refused before anything is built', () => {
    const dir = copyModel('layers');
    writeConfig(dir, { ...config(dir), n_layer: 1_000_000_000 });
    expectError(() => loadModelFolder(dir), /number of layers 1000000000 is beyond the supported maximum/);
  });

  it('config.json that is not JSON', () => {
    const dir = copyModel('badjson');
    fs.writeFileSync(path.join(dir, 'config.json'), '{ "model_type": ');
    expectError(() => loadModelFolder(dir), /config\.json: not valid JSON/);
  });
});

describe('bad prompts and targets', () => {
  let engine: Engine;
  before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
  after(() => engine.dispose());

  it('an empty prompt', () => expectError(() => engine.encode(''), /the prompt is empty/));
  it('a prompt longer than the context', () => expectError(() => engine.encode('the war '.repeat(200)), /longer than the model's context of 128/));
  it('token ids outside the vocabulary', async () => {
    await assert.rejects(engine.forward({ ids: [[1, 2, 99999]] }), /token id 99999 at position 2 is outside the vocabulary/);
  });
  it('a target that is not one token', () => expectError(() => engine.tokenizer!.singleTokenId(' Maryland and'), /is not a single token: it encodes as/));
  it('a position out of range', async () => {
    await assert.rejects(engine.attribute({ ids: [[5, 6, 7]], targets: [{ kind: 'logit', position: 3, token: 1 }], mode: 'attnlrp' }), /position 3 is out of range for a prompt of 3 tokens/);
  });
  it('a foil equal to the target', async () => {
    await assert.rejects(engine.attribute({ ids: [[5, 6, 7]], targets: [{ kind: 'logit_diff', position: 2, token: 1, foil: 1 }], mode: 'attnlrp' }), /foil is the same token as the target/);
  });
  it('an unknown mode', async () => {
    await assert.rejects(engine.attribute({ ids: [[5, 6, 7]], targets: [{ kind: 'logit', position: 2, token: 1 }], mode: 'lime' as 'attnlrp' }), new RegExp(`unknown mode "lime" \\(use ${COMPOSITES.join(', ')}\\)`));
  });
  it('an unknown component to ablate', async () => {
    await assert.rejects(engine.forward({ ids: [[5, 6, 7]], interventions: { ablate: ['a9.h0'] } }), /layer 9 does not exist/);
  });
  it('the engine still works after all of the above', async () => {
    const [row] = await engine.forward({ ids: [[5, 6, 7]] });
    assert.equal(row!.logitsLast.length, 2088);
  });
});

describe('resource limits', () => {
  it('a model whose estimated need exceeds the limit is refused before its weights are read', async () => {
    await assert.rejects(Engine.load(EMBEDDED_MODEL, { memory: { share: 0.8, limitBytes: 1024 * 1024 } }), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match((err as Error).message, /loading this model needs an estimated \d+ MiB, more than the configured limit of 1 MiB; use a machine with more memory or a GPU/);
      return true;
    });
  });

  it('a batch whose activations would not fit is refused with a suggestion, and a smaller one runs', async () => {
    const engine = await Engine.load(EMBEDDED_MODEL, { memory: { share: 0.8, limitBytes: 512 * 1024 * 1024 } });
    try {
      const ids = Array.from({ length: 4000 }, () => Array.from({ length: 128 }, (_, t) => (t * 13) % 2000));
      const targets = ids.map(() => ({ kind: 'logit' as const, position: 127, token: 5 }));
      await assert.rejects(engine.attribute({ ids, targets, mode: 'attnlrp' }), /attributing 4000 prompts of up to 128 tokens needs an estimated .* use a smaller batch or shorter prompts/);
      const rows = await engine.attribute({ ids: ids.slice(0, 2), targets: targets.slice(0, 2), mode: 'attnlrp' });
      assert.equal(rows.length, 2);
    } finally {
      await engine.dispose();
    }
  });
});

describe('config and weights that disagree on depth', () => {
  it('a config with fewer layers than the weights is refused, not silently truncated', () => {
    const dir = copyModel('fewer-layers');
    writeConfig(dir, { ...config(dir), n_layer: 3 });
    expectError(() => loadModelFolder(dir), /config\.json: the config says 3 layers but the weights hold 4/);
  });
});
