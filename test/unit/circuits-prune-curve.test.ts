import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { generateIoiTask } from '../../src/circuits/tasks/generators';
import { circuitRate, pruneCurves, rankStructured } from '../../src/circuits/pruning/pruneCurve';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import { main } from '../../src/cli/main';
import { EMBEDDED_MODEL } from '../helpers';

test('the circuit is the largest rate up to which every rate keeps the share of dense accuracy', () => {
  assert.equal(circuitRate([0, 0.5, 0.9, 0.95], [1, 0.95, 0.91, 0.5], 1, 0.9), 0.9);
  assert.equal(circuitRate([0, 0.5, 0.9], [1, 0.8, 0.95], 1, 0.9), 0); // a later recovery does not count
});

test('structured ranking is global over heads and neurons, least relevant first; no head scores (Wanda) leaves heads out', () => {
  const ranked = rankStructured([[0.5, 0.1]], [[0.3, 0.05, 0.7]]);
  assert.deepEqual(ranked.map((c) => c.id), ['m0.n1', 'a0.h1', 'm0.n0', 'a0.h0', 'm0.n2']);
  assert.deepEqual(rankStructured(null, [[2, 1]]).map((c) => c.id), ['m0.n1', 'm0.n0']);
});

let engine: Engine;
before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
after(() => engine.dispose());

test('on IOI, AttnLRP-guided structured pruning keeps accuracy where random pruning loses it (2 reference seeds, mean ± SEM)', async () => {
  const encode = (t: string) => engine.tokenizer!.encodeIds(t);
  const references = [1, 2].map((seed) => generateIoiTask({ count: 16, seed, encode }).examples);
  const evaluation = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl')).examples.slice(0, 60);
  const r = await pruneCurves(engine, { references, evaluation, methods: ['attnlrp', 'random'], modes: ['structured'], rates: [0, 0.6] });
  const [lrp, random] = r.series;
  assert.equal(lrp!.accuracy.length, 2);
  assert.equal(lrp!.mean[0], r.dense);
  assert.ok(lrp!.mean[1]! >= 0.9 * r.dense, `AttnLRP at 60 %: ${lrp!.mean[1]} of ${r.dense}`);
  assert.ok(random!.mean[1]! < lrp!.mean[1]! - 0.1, `random at 60 %: ${random!.mean[1]}`);
  assert.ok(random!.sem[1]! > 0, 'two reference seeds give a spread for random');
});

test('CLI prune-curve: bad input exits 2; a run prints the curve as JSON', async () => {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  (process.stdout as any).write = (s: string) => (out.push(String(s)), true);
  (process.stderr as any).write = (s: string) => (out.push(String(s)), true);
  try {
    assert.equal(await main(['prune-curve', '--eval', 'no-such-file.jsonl']), 2);
    assert.equal(await main(['prune-curve', '--eval', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--methods', 'magic']), 2);
    out.length = 0;
    const code = await main(['prune-curve', '--eval', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--seeds', '1', '--reference', '8', '--methods', 'attnlrp', '--modes', 'unstructured', '--rates', '0,0.5', '--json']);
    assert.equal(code, 0, out.join(''));
  } finally {
    (process.stdout as any).write = write;
    (process.stderr as any).write = errWrite;
  }
  const line = out.filter((s) => s.startsWith('{"dense"')).pop();
  assert.ok(line, 'a JSON result was printed');
  const json = JSON.parse(line);
  assert.equal(json.series.length, 1);
  assert.equal(json.series[0].scope, 'global');
  assert.deepEqual(json.series[0].rates, [0, 0.5]);
});
