/**
 * SparC³ Prune Curve… through the engine worker (what the extension's command runs): the real
 * worker bundle on the embedded model gives the CLI's numbers as a schema-checked PruneCurveRun,
 * reports progress, and turns bad input into `input` / `protocol` errors.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { pruneCurve } from '../../src/pipelines/pruneCurve';
import { EngineClient, EngineError } from '../../src/worker/client';
import { EMBEDDED_MODEL, buildTestWorker, testWorkerPath } from '../helpers';

const workerPath = testWorkerPath('test-worker-prune-curve');
const IOI = path.join(EMBEDDED_MODEL, 'ioi.jsonl');

before(() => buildTestWorker('test-worker-prune-curve'));
after(() => fs.rmSync(workerPath, { force: true }));

describe('prune curves in the engine worker', () => {
  const c = new EngineClient({ workerPath, cancelGraceMs: 2000 });
  after(() => c.dispose());

  it('returns the in-process pipeline numbers as a run, with progress', async () => {
    await c.load({ folder: EMBEDDED_MODEL });
    const params = { eval: IOI, seeds: 2, reference: 8, methods: ['attnlrp', 'random'] as ('attnlrp' | 'random')[], modes: ['structured'] as 'structured'[], rates: [0, 0.6] };
    const progress: number[] = [];
    const r = await c.pruneCurve(params, { onProgress: (p) => p.fraction !== undefined && progress.push(p.fraction) });
    assert.equal(r.kind, 'prune-curve');
    assert.deepEqual(r.series.map((s) => s.method), ['attnlrp', 'random']);
    assert.equal(r.settings.seeds, 2);
    assert.ok(progress.length >= 2 && progress.at(-1) === 1, `progress ${progress.join(', ')}`);
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const local = await pruneCurve(engine, params);
      assert.equal(r.dense, local.dense);
      assert.deepEqual(r.series.map((s) => s.mean), local.series.map((s) => s.mean));
      assert.deepEqual(r.series.map((s) => s.circuitRate), local.series.map((s) => s.circuitRate));
    } finally {
      await engine.dispose();
    }
  });

  it('rejects a missing eval file as input and an unknown method as a protocol error', async () => {
    await assert.rejects(c.pruneCurve({ eval: 'no-such-file.jsonl' }), (e: unknown) => e instanceof EngineError && e.code === 'input');
    await assert.rejects(c.pruneCurve({ eval: 'ioi', methods: ['magic' as never] }), (e: unknown) => e instanceof EngineError && (e.code === 'protocol' || e.code === 'input'));
  });
});
