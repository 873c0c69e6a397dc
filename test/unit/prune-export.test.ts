/** Export of a pruned model: reload gives the same perplexity; source protected; a killed export leaves no destination. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine, embeddedModelPath } from '../../src/engine/engine';
import { EXPORT_PAUSE_ENV, exportModel } from '../../src/circuits/pruning/modelExport';
import { prune } from '../../src/circuits/pruning/prune';
import { readTextIds, textPerplexity } from '../../src/circuits/pruning/pruneEval';

const root = path.resolve(__dirname, '../..');
let engine: Engine;
let tmp: string;

before(async () => {
  engine = await Engine.load(embeddedModelPath());
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cl-export-'));
});
after(async () => {
  await engine.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('exportModel', () => {
  it('writes a loadable HF folder whose perplexity equals the in-memory pruned model (1e-4)', async () => {
    const ids = readTextIds(engine, path.join(engine.folder, 'heldout.txt')).slice(0, 2048);
    const { weights, report } = await prune(engine, { method: 'magnitude', sparsity: 0.6, scope: 'global' });
    const pruned = engine.withWeights(weights);
    const expected = (await textPerplexity(pruned, ids)).perplexity;
    await pruned.dispose();
    const dest = path.join(tmp, 'pruned');
    const result = await exportModel(engine, weights, dest, { pruning: { ...report } });
    assert.deepEqual(fs.readdirSync(tmp), ['pruned']);
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'pruning.json']) assert.ok(fs.existsSync(path.join(dest, f)), f);
    assert.ok(!fs.existsSync(path.join(dest, 'model.onnx')));
    const info = JSON.parse(fs.readFileSync(path.join(dest, 'pruning.json'), 'utf8'));
    assert.equal(info.method, 'magnitude');
    assert.equal(info.zeroed_weights, report.prunedWeights);
    assert.equal(result.zeroedWeights, report.prunedWeights);
    const reloaded = await Engine.load(dest);
    const got = (await textPerplexity(reloaded, ids)).perplexity;
    await reloaded.dispose();
    assert.ok(Math.abs(got - expected) < 1e-4, `${got} vs ${expected}`);
    assert.ok(got > 5, 'the pruned model differs from nothing');
    // An existing destination is refused unless overwrite.
    await assert.rejects(exportModel(engine, weights, dest, { pruning: {} }), /already exists/);
    await exportModel(engine, new Map(), dest, { pruning: {}, overwrite: true });
    const dense = await Engine.load(dest);
    assert.ok(Math.abs((await textPerplexity(dense, ids)).perplexity - (await textPerplexity(engine, ids)).perplexity) < 1e-4);
    await dense.dispose();
  });

  it('refuses to write into the source folder', async () => {
    await assert.rejects(exportModel(engine, new Map(), engine.folder, { pruning: {}, overwrite: true }), /source model folder/);
    await assert.rejects(exportModel(engine, new Map(), path.join(engine.folder, 'sub'), { pruning: {} }), /source model folder/);
    await assert.rejects(exportModel(engine, new Map(), path.join(engine.folder, '..', path.basename(engine.folder), '.'), { pruning: {}, overwrite: true }), /source model folder/);
  });

  it('a process killed mid-export leaves no destination folder; the next export cleans its leftovers', async () => {
    const dest = path.join(tmp, 'killed');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/unit/fixtures/exportChild.ts'), dest], {
      cwd: root,
      env: { ...process.env, [EXPORT_PAUSE_ENV]: '20000' },
      stdio: 'ignore',
    });
    // Wait until the partial folder holds its first file, then kill.
    const deadline = Date.now() + 60_000;
    let partial: string | undefined;
    while (Date.now() < deadline) {
      partial = fs.readdirSync(tmp).find((n) => n.startsWith('.killed.partial-'));
      if (partial && fs.existsSync(path.join(tmp, partial, 'config.json'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(partial, 'the child started writing');
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.ok(!fs.existsSync(dest), 'no destination folder after the kill');
    assert.ok(!fs.existsSync(path.join(tmp, partial!, 'model.safetensors')), 'killed before the weights were written');
    await exportModel(engine, new Map(), dest, { pruning: {} });
    assert.ok(fs.existsSync(path.join(dest, 'model.safetensors')));
    assert.ok(!fs.readdirSync(tmp).some((n) => n.startsWith('.killed.partial-')), 'stale partial folder removed');
  });
});
