import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { heldOutIoiTask } from '../../src/circuits/tasks/generators';
import { perPromptIoi } from '../../src/circuits/pruning/pruneEval';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import { EMBEDDED_MODEL } from '../helpers';

let engine: Engine;
before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
after(() => engine.dispose());

test('the held-out IOI split is seeded, distinct, disjoint from the calibration prompts, and the model solves it', async () => {
  const calibration = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl'));
  const exclude = calibration.examples.map((e) => e.prompt ?? '');
  const a = heldOutIoiTask(engine.tokenizer!, 100, exclude);
  const b = heldOutIoiTask(engine.tokenizer!, 100, exclude);
  assert.equal(a.examples.length, 100);
  assert.deepEqual(a.examples.map((e) => e.prompt), b.examples.map((e) => e.prompt));
  assert.equal(new Set(a.examples.map((e) => e.prompt)).size, 100);
  const calibrationPrompts = new Set(exclude);
  assert.ok(a.examples.every((e) => !calibrationPrompts.has(e.prompt!)));
  // Other templates than the calibration set: ACDC's "Then, X and Y went to the store" family.
  const calibrationStarts = new Set(calibration.examples.map((e) => e.prompt!.split(' ').slice(0, 1).join(' ')));
  assert.ok(a.examples.some((e) => e.prompt!.includes('went to the') && /store|garden|restaurant|school|hospital|office|house|station/.test(e.prompt!)));
  assert.ok(calibrationStarts.size > 1);
  const { correct } = await perPromptIoi(engine, a.examples);
  const accuracy = correct.reduce((s, v) => s + v, 0) / correct.length;
  assert.ok(accuracy > 0.9, `IOI accuracy on the held-out split ${accuracy}`);
});
