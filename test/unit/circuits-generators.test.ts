import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  abbaFromBaba,
  generateGreaterThan,
  generateGreaterThanTask,
  generateInduction,
  generateInductionTask,
  generateIoi,
  generateIoiTask,
  yearSplitsAsTwoTokens,
} from '../../src/circuits/tasks/generators';
import { mulberry32, Random } from '../../src/circuits/prng';
import { IOI_BABA_TEMPLATES, IOI_NAMES } from '../../src/circuits/tasks/templates';
import { makeFakeEncoder } from './circuits-fake-tokenizer';

test('mulberry32 is deterministic per seed and uniform-looking', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const first = Array.from({ length: 5 }, () => a());
  assert.deepEqual(first, Array.from({ length: 5 }, () => b()));
  assert.notDeepEqual(first, Array.from({ length: 5 }, mulberry32(43)));
  const random = new Random(7);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[random.int(4)]!++;
  for (const count of counts) assert.ok(count > 850 && count < 1150, `bucket count ${count} far from 1000`);
  assert.deepEqual(new Random(1).sample([1, 2, 3], 3).sort(), [1, 2, 3]);
  assert.throws(() => new Random(1).sample([1, 2], 3), /3 distinct items from a list of 2/);
});

test('ACDC data: 99 names, 15 BABA templates each ending with the IO answer', () => {
  assert.equal(IOI_NAMES.length, 99);
  assert.equal(new Set(IOI_NAMES).size, 99);
  assert.equal(IOI_BABA_TEMPLATES.length, 15);
  for (const template of IOI_BABA_TEMPLATES) assert.ok(template.endsWith(' [A]'));
});

test('ABBA mirror swaps the first [B] and [A] only', () => {
  assert.equal(
    abbaFromBaba('Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]'),
    'Then, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to [A]',
  );
  assert.equal(
    abbaFromBaba('The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to [A]'),
    'The [PLACE] [A] and [B] went to had a [OBJECT]. [B] gave it to [A]',
  );
});

test('IOI generation is seeded, names IO once and S twice, and matches ACDC template 1 in ABBA form', () => {
  const records = generateIoi({ count: 20, seed: 0, order: 'ABBA', templateIds: [0] });
  assert.deepEqual(records, generateIoi({ count: 20, seed: 0, order: 'ABBA', templateIds: [0] }));
  assert.notDeepEqual(records, generateIoi({ count: 20, seed: 1, order: 'ABBA', templateIds: [0] }));
  for (const record of records) {
    const io = record.io.slice(1);
    const s = record.s.slice(1);
    assert.equal(record.prompt, `Then, ${io} and ${s} went to the ${record.place}. ${s} gave a ${record.object} to`);
    assert.equal(record.order, 'ABBA');
    assert.notEqual(io, s);
  }
});

test('ABC corruption: three other, distinct names in the IO, S1 and S2 slots, same token length', () => {
  const { encode } = makeFakeEncoder();
  const isSingleToken = (text: string) => encode(text).length === 1;
  const records = generateIoi({ count: 300, seed: 3, order: 'mixed', isSingleToken, symmetric: false });
  const orders = new Set(records.map((r) => r.order));
  assert.deepEqual([...orders].sort(), ['ABBA', 'BABA']);
  for (const record of records) {
    assert.ok(isSingleToken(record.io) && isSingleToken(record.s), 'only single-token names are used');
    assert.equal(record.corrupted_names.length, 3);
    const abc = new Set(record.corrupted_names);
    assert.equal(abc.size, 3, 'the three replacement names are distinct');
    assert.ok(!abc.has(record.io) && !abc.has(record.s), 'replacements differ from IO and S');
    assert.equal(encode(record.corrupted_prompt).length, encode(record.prompt).length);
    // Everything but the names is unchanged.
    const mask = (text: string, names: readonly string[]) => names.reduce((out, name) => out.replace(new RegExp(`\\b${name.slice(1)}\\b`, 'g'), '#'), text);
    assert.equal(mask(record.corrupted_prompt, record.corrupted_names), mask(record.prompt, [record.io, record.s]));
  }
  // Names with more than 7 letters are two tokens for the fake tokenizer and must never appear.
  assert.ok(records.every((r) => r.io.length <= 8 && r.s.length <= 8));
});

test('symmetric IOI pairs swap IO and S within one template', () => {
  const [a, b] = generateIoi({ count: 2, seed: 5, symmetric: true });
  assert.equal(a!.io, b!.s);
  assert.equal(a!.s, b!.io);
  assert.equal(a!.template_id, b!.template_id);
});

test('IOI task: parsed through the task loader, targets are the IO tokens', () => {
  const { encode } = makeFakeEncoder();
  const task = generateIoiTask({ count: 50, seed: 11, encode });
  assert.equal(task.metric, 'logit_diff');
  assert.equal(task.examples.length, 50);
  for (const example of task.examples) {
    assert.equal(example.target, encode(example.meta['io'] as string)[0]);
    assert.equal(example.foil, encode(example.meta['s'] as string)[0]);
    assert.equal(example.corruptedIds!.length, example.ids.length);
  }
});

test('IOI generator errors are explicit', () => {
  assert.throws(() => generateIoi({ count: 1, isSingleToken: (t) => t === ' Mary' }), /only 1 names are single tokens/);
  assert.throws(() => generateIoi({ count: 1, templateIds: [15] }), /template id 15 is out of range/);
  assert.throws(() => generateIoi({ count: 1, templates: ['[B] and [A] met'] }), /must end with " \[A\]"/);
  assert.throws(() => generateIoi({ count: 1, templates: ['[B] met [A] and gave to [A]'] }), /must name \[A\] once and \[B\] twice/);
  assert.throws(() => generateIoi({ count: 0 }), /count must be a positive integer/);
});

test('greater-than: years split as " XX" + "YY", start years 02..98, "01" corruption keeps length', () => {
  const { encode } = makeFakeEncoder();
  assert.equal(yearSplitsAsTwoTokens(encode)(17, 32), true);
  const records = generateGreaterThan({ count: 100, seed: 2, yearIsClean: yearSplitsAsTwoTokens(encode) });
  for (const record of records) {
    assert.ok(record.start_yy >= 2 && record.start_yy <= 98);
    assert.equal(record.prompt, `The ${record.noun} lasted from the year ${record.start_year} to the year ${record.century}`);
    assert.equal(record.corrupted_prompt, `The ${record.noun} lasted from the year ${record.century}01 to the year ${record.century}`);
  }
  const task = generateGreaterThanTask({ count: 30, seed: 2, encode });
  assert.equal(task.metric, 'prob_diff');
  for (const example of task.examples) {
    const startYy = example.meta['start_yy'] as number;
    assert.equal(example.goodTokens!.length, 99 - startYy);
    assert.equal(example.badTokens!.length, startYy + 1);
    assert.equal(example.goodTokens![0], encode(String(startYy + 1).padStart(2, '0'))[0]);
    assert.equal(example.corruptedIds!.length, example.ids.length);
  }
  assert.throws(() => generateGreaterThan({ count: 1, yearIsClean: () => false }), /no start year tokenizes as two tokens/);
});

test('induction: run, then the run again up to its last token, which is the target', () => {
  const records = generateInduction({ count: 25, seed: 9, runLength: 6, vocabSize: 50, isUsable: (id) => id !== 0, prefix: [0] });
  for (const record of records) {
    const run = record.prompt_ids.slice(1, 7);
    assert.equal(record.prompt_ids[0], 0);
    assert.equal(new Set(run).size, 6);
    assert.deepEqual(record.prompt_ids.slice(7), run.slice(0, 5));
    assert.equal(record.target_id, run[5]);
    assert.ok(!run.includes(record.foil_id));
    assert.equal(record.corrupted_ids.length, record.prompt_ids.length);
    assert.deepEqual(record.corrupted_ids.slice(0, 7), record.prompt_ids.slice(0, 7));
    assert.ok(record.corrupted_ids.slice(7).every((id) => !run.includes(id)), 'the corrupted second half does not repeat the run');
  }
  const task = generateInductionTask({ count: 3, seed: 9, vocabSize: 50 });
  assert.equal(task.metric, 'logit_diff');
  assert.throws(() => generateInduction({ count: 1, runLength: 10, vocabulary: [1, 2, 3] }), /needs at least 21 usable tokens, has 3/);
});
