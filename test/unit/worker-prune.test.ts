/**
 * Prune / Correct / Export Model through the engine worker (what the extension's commands run):
 * the real worker bundle and the real engine on the embedded model, checked against the
 * in-process circuits modules and the README's numbers.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prune } from '../../src/circuits/pruning/prune';
import { readTextIds, textPerplexity } from '../../src/circuits/pruning/pruneEval';
import { EngineClient, EngineError } from '../../src/worker/client';
import { Engine } from '../../src/engine/engine';
import { EMBEDDED_MODEL, tempDir, buildTestWorker, testWorkerPath } from '../helpers';

const workerPath = testWorkerPath('test-worker-prune');
const HELDOUT = path.join(EMBEDDED_MODEL, 'heldout.txt');

before(() => buildTestWorker('test-worker-prune'));
after(() => fs.rmSync(workerPath, { force: true }));

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EngineError, String(err));
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('pruning, correction and model export in the engine worker', () => {
  const c = new EngineClient({ workerPath, cancelGraceMs: 2000 });
  after(() => c.dispose());

  it('refuses to export before anything was pruned', async () => {
    await c.load({ folder: EMBEDDED_MODEL });
    await rejectsWith(c.exportModel({ folder: path.join(tempDir('none'), 'out') }), 'input', /Nothing to export/);
  });

  it('prunes by magnitude at 50 % with the README perplexities and a sparsity curve', async () => {
    const progress: number[] = [];
    const r = await c.prune({ method: 'magnitude', sparsity: 0.5, curve: [0.3] }, { onProgress: (p) => p.fraction !== undefined && progress.push(p.fraction) });
    assert.equal(r.settings.evalText, HELDOUT);
    assert.equal(r.settings.calibText, null);
    assert.equal(r.evalTokens, 8192);
    assert.equal(r.achievedSparsity, 0.5);
    // README "Pruning" table: dense 5.150, magnitude row-wise 50 % 5.082 (first 8,192 tokens of heldout.txt).
    assert.equal(r.perplexityBefore?.toFixed(3), '5.150');
    assert.equal(r.perplexityAfter?.toFixed(3), '5.082');
    assert.deepEqual(r.curve.map((p) => p.sparsity), [0, 0.3, 0.5]);
    assert.equal(r.curve[0]!.perplexity, r.perplexityBefore);
    assert.equal(r.curve[2]!.perplexity, r.perplexityAfter);
    assert.ok(progress.length > 2 && progress[progress.length - 1]! > 0.9, `progress ${progress.join(', ')}`);

    // The same numbers in-process, with the worker's session settings (no prepacking).
    const engine = await Engine.load(EMBEDDED_MODEL, { prepack: false });
    try {
      const evalIds = readTextIds(engine, HELDOUT).slice(0, 8192);
      const direct = await prune(engine, { method: 'magnitude', sparsity: 0.5 });
      const pruned = engine.withWeights(direct.weights);
      assert.ok(Math.abs((await textPerplexity(pruned, evalIds)).perplexity - r.perplexityAfter) < 1e-9);
      await pruned.dispose();
    } finally {
      await engine.dispose();
    }
  });

  it('exports the pruned model atomically, never into the source folder, and not over a folder unless asked', async () => {
    await rejectsWith(c.exportModel({ folder: EMBEDDED_MODEL }), 'input', /source model folder/);
    await rejectsWith(c.exportModel({ folder: path.join(EMBEDDED_MODEL, 'pruned') }), 'input', /source model folder/);
    const parent = tempDir('export');
    const dest = path.join(parent, 'pruned-50');
    const r = await c.exportModel({ folder: dest });
    assert.equal(r.kind, 'prune');
    assert.equal(r.folder, fs.realpathSync(dest));
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'pruning.json']) assert.ok(r.files.includes(f), f);
    assert.deepEqual(fs.readdirSync(parent), ['pruned-50'], 'no partial folder is left behind');
    const info = JSON.parse(fs.readFileSync(path.join(dest, 'pruning.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(info['purpose'], 'compression');
    assert.equal(info['method'], 'magnitude');
    assert.ok(r.zeroedWeights > 390_000, `zeroed ${r.zeroedWeights}`);
    await rejectsWith(c.exportModel({ folder: dest }), 'input', /already exists/);
    const again = await c.exportModel({ folder: dest, overwrite: true });
    assert.equal(again.folder, r.folder);

    // The exported folder loads and has the pruned perplexity.
    const engine = await Engine.load(dest);
    try {
      const ids = readTextIds(engine, HELDOUT).slice(0, 8192);
      assert.equal((await textPerplexity(engine, ids)).perplexity.toFixed(3), '5.082');
    } finally {
      await engine.dispose();
    }
  });

  it('reports a text too short for its calibration windows as an input error', async () => {
    const dir = tempDir('short');
    const file = path.join(dir, 'short.txt');
    fs.writeFileSync(file, 'When Mary and John went to the store, John gave a drink to Mary.\n');
    await rejectsWith(c.prune({ method: 'attnlrp', sparsity: 0.5, text: file }), 'input', /too few/);
    await rejectsWith(c.prune({ method: 'wanda', sparsity: 0.5, text: path.join(dir, 'missing.txt') }), 'input', /text not found/);
  });

  it('cancels an attribution-scored prune between engine calls', async () => {
    const controller = new AbortController();
    const job = c.prune({ method: 'attnlrp', sparsity: 0.5 }, { signal: controller.signal, onProgress: (p) => p.message?.startsWith('Scoring weights:') && controller.abort() });
    const t0 = Date.now();
    await rejectsWith(job, 'cancelled');
    assert.ok(Date.now() - t0 < 60_000);
    // The worker still answers (or was respawned with the model reloaded).
    const info = await c.info();
    assert.ok(info === null || info.info.layers === 4);
  });

  it('corrects the model: removing neurons lowers the insult probability; the result is what Export writes', async () => {
    await c.load({ folder: EMBEDDED_MODEL });
    const r = await c.correct({ undesired: path.join(EMBEDDED_MODEL, 'toxic.jsonl'), general: HELDOUT, neurons: 48, mode: 'attnlrp' });
    assert.equal(r.settings.count, 48);
    assert.equal(r.totalComponents, 4 * 512);
    assert.equal(r.removed.length, 48);
    assert.ok(r.removed.every((id) => /^m\d\.n\d+$/.test(id)));
    const before = r.before['undesired_probability']!;
    const after = r.after['undesired_probability']!;
    assert.ok(before > 0.9 && after < before / 2, `insult probability ${before} → ${after}`);
    assert.ok(Number.isFinite(r.after['general_perplexity']));
    const dest = path.join(tempDir('corrected'), 'corrected');
    const exported = await c.exportModel({ folder: dest });
    assert.equal(exported.kind, 'correct');
    const info = JSON.parse(fs.readFileSync(path.join(dest, 'pruning.json'), 'utf8')) as { purpose: string; removed: { id: string }[] };
    assert.equal(info.purpose, 'correction');
    assert.deepEqual(info.removed.map((x) => x.id), r.removed);
  });
});
