/**
 * The prune-curve use case shared by `circuit-lens prune-curve` and the editor (src/pipelines/pruneCurve.ts):
 * the same numbers as calling src/circuits directly, progress once per curve, cancellation between
 * engine calls, and the worker request / run shapes that carry it (field-by-field validation).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { generateIoiTask } from '../../src/circuits/tasks/generators';
import { pruneCurves } from '../../src/circuits/pruning/pruneCurve';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import { CancelledError } from '../../src/pipelines/context';
import { pruneCurve, seriesCount } from '../../src/pipelines/pruneCurve';
import { parseWith } from '../../src/protocol/schema';
import { runSchema, type PruneCurveRun } from '../../src/protocol/shapes';
import { Engine as Req, validateWorkerRequest } from '../../src/protocol/worker';
import { EMBEDDED_MODEL } from '../helpers';

let engine: Engine;
before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
after(() => engine.dispose());

const IOI = path.join(EMBEDDED_MODEL, 'ioi.jsonl');

test('the pipeline gives the numbers of src/circuits, with one progress step per curve', async () => {
  const progress: number[] = [];
  const logs: string[] = [];
  const r = await pruneCurve(engine, { eval: IOI, seeds: 1, reference: 8, methods: ['attnlrp', 'random'], modes: ['structured'], rates: [0, 0.5] }, { progress: (p) => progress.push(p.fraction ?? -1), log: (m) => logs.push(m) });
  const encode = (t: string) => engine.tokenizer!.encodeIds(t);
  const direct = await pruneCurves(engine, {
    references: [generateIoiTask({ count: 8, seed: 1, encode }).examples],
    evaluation: loadTaskFile(IOI).examples,
    methods: ['attnlrp', 'random'],
    modes: ['structured'],
    rates: [0, 0.5],
  });
  assert.deepEqual(r.series.map((s) => s.mean), direct.series.map((s) => s.mean));
  assert.equal(r.dense, direct.dense);
  assert.equal(logs.length, 2, 'one log line per curve');
  assert.equal(progress.at(-1), 1, 'progress ends at 1');
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i]! >= progress[i - 1]!, `progress never goes back: ${progress.join(', ')}`);
});

test('the activation baseline has no unstructured curve; empty lists and a missing file are input errors', async () => {
  assert.equal(seriesCount(['structured', 'unstructured'], ['attnlrp', 'activation']), 3);
  await assert.rejects(pruneCurve(engine, { eval: IOI, methods: [] }), /methods is empty/);
  await assert.rejects(pruneCurve(engine, { eval: 'no-such-file.jsonl' }), (e: Error) => e.name === 'InputError');
  // Rates out of order are bad input (exit 2), said before any work; they were a plain Error deep in src/circuits.
  await assert.rejects(pruneCurve(engine, { eval: IOI, rates: [0.5, 0.2] }), (e: Error) => e.name === 'InputError' && /rates must increase/.test(e.message));
  await assert.rejects(pruneCurve(engine, { eval: IOI, rates: [0.2, 1] }), (e: Error) => e.name === 'InputError' && /not in \[0, 1\)/.test(e.message));
});

test('a cancelled signal stops the run at the next engine call', async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(pruneCurve(engine, { eval: IOI, seeds: 1, reference: 8, methods: ['random'], modes: ['structured'], rates: [0, 0.5] }, { signal: controller.signal }), CancelledError);
});

test('engine/pruneCurve params are validated field by field; a PruneCurveRun round-trips as a run', () => {
  const ok = (params: unknown) => validateWorkerRequest({ type: 'request', id: 1, method: Req.pruneCurve.method, params });
  assert.equal(ok({ eval: 'ioi', seeds: 2, methods: ['attnlrp', 'wanda'], modes: ['structured'], rates: [0, 0.5] }).ok, true);
  for (const bad of [{}, { eval: '' }, { eval: 'ioi', methods: ['magic'] }, { eval: 'ioi', modes: ['diagonal'] }, { eval: 'ioi', seeds: 0 }, { eval: 'ioi', rates: [1] }, { eval: 'ioi', keep: 2 }, { eval: 'ioi', extra: 1 }]) {
    assert.equal(ok(bad).ok, false, `rejected: ${JSON.stringify(bad)}`);
  }
  const run: PruneCurveRun = {
    id: 'prune-curve-1',
    kind: 'prune-curve',
    title: 'SparC³ structured: attnlrp (1 seed)',
    created: '2026-01-01T00:00:00.000Z',
    model: 'tiny',
    settings: { eval: 'ioi', seeds: 1, reference: 8, evaluation: 200, keep: 0.9, rates: [0, 0.5] },
    dense: 0.95,
    series: [{ mode: 'structured', method: 'attnlrp', scope: 'global', rates: [0, 0.5], accuracy: [[0.95, 0.9]], mean: [0.95, 0.9], sem: [0, 0], circuitRate: 0.5, circuitSize: 10, total: 20 }],
  };
  assert.deepEqual(parseWith(runSchema, JSON.parse(JSON.stringify(run)), 1 << 20), run);
  assert.throws(() => parseWith(runSchema, { ...run, series: [{ ...run.series[0], method: 'magic' }] }, 1 << 20));
});
