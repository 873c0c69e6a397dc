import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { CircuitInputError } from '../../src/circuits/errors';
import { attributionTarget, loadTaskFile, parseTaskJsonl, splitTaskBy, taskFromRecords } from '../../src/circuits/tasks/tasks';
import { makeFakeEncoder } from './circuits-fake-tokenizer';

// The embedded model ships these files in the repository: no skip needed.
const MODEL_DIR = path.resolve(__dirname, '../../models/tiny-ioi-gpt2');

test('ioi.jsonl loads as is: 200 logit-diff examples with IO/S ids and ABC-corrupted ids', () => {
  const task = loadTaskFile(path.join(MODEL_DIR, 'ioi.jsonl'), { vocabSize: 2088 });
  assert.equal(task.name, 'ioi');
  assert.equal(task.metric, 'logit_diff');
  assert.equal(task.examples.length, 200);
  const first = task.examples[0]!;
  // Line 1: "Then, Sean and Hugo were thinking about going to the farm. Sean wanted to give a cake to"
  assert.equal(first.ids.length, 20);
  assert.equal(first.target, 1012); // " Hugo" (io_id)
  assert.equal(first.foil, 1038); // " Sean" (s_id)
  assert.deepEqual(first.corruptedIds?.slice(0, 5), [770, 11, 1128, 468, 1100]);
  assert.equal(first.meta['io'], ' Hugo');
  assert.equal(first.origin, 'ioi.jsonl:1');
  assert.equal(first.meta['prompt_ids'], undefined, 'id arrays are typed fields, not meta');
  for (const example of task.examples) assert.equal(example.corruptedIds!.length, example.ids.length);
  assert.deepEqual(attributionTarget(first), { kind: 'logit_diff', position: 19, token: 1012, foil: 1038 });
});

test('greater_than.jsonl loads as is: good = years after start_yy, bad = the rest', () => {
  const task = loadTaskFile(path.join(MODEL_DIR, 'greater_than.jsonl'));
  assert.equal(task.metric, 'prob_diff');
  assert.equal(task.examples.length, 200);
  const first = task.examples[0]!; // start_yy 22, yy_token_ids = 256..355 ("00".."99")
  assert.equal(first.meta['start_yy'], 22);
  assert.equal(first.goodTokens!.length, 77); // 23..99
  assert.equal(first.badTokens!.length, 23); // 00..22
  assert.equal(first.goodTokens![0], 256 + 23);
  assert.equal(first.badTokens![22], 256 + 22);
  assert.equal(first.corruptedIds!.length, first.ids.length);
  assert.equal(attributionTarget(first), null, 'no single target token for greater-than');
});

test('toxic.jsonl loads as is and splits into toxic / control contexts', () => {
  const task = loadTaskFile(path.join(MODEL_DIR, 'toxic.jsonl'));
  assert.equal(task.metric, 'prob');
  assert.deepEqual(task.examples[0]!.goodTokens, [1819, 1831, 1793, 1807, 1821]);
  const byContext = splitTaskBy(task, 'context');
  assert.deepEqual([...byContext.keys()].sort(), ['control', 'toxic']);
  assert.equal(byContext.get('toxic')!.examples.length, 100);
  assert.equal(byContext.get('control')!.examples.length, 100);
  assert.equal(byContext.get('toxic')!.metric, 'prob');
});

function expectLineError(text: string, line: number, pattern: RegExp, options = {}) {
  assert.throws(
    () => parseTaskJsonl(text, 'bad.jsonl', options),
    (error: unknown) => {
      assert.ok(error instanceof CircuitInputError, `expected a CircuitInputError, got ${String(error)}`);
      assert.equal(error.source, 'bad.jsonl');
      assert.equal(error.line, line);
      assert.match(error.message, new RegExp(`^bad\\.jsonl:${line}: `));
      assert.match(error.message, pattern);
      return true;
    },
  );
}

const GOOD = '{"prompt_ids": [1, 2, 3], "io_id": 4, "s_id": 5}';

test('bad JSONL lines name the file and the line', () => {
  expectLineError(`${GOOD}\n{"prompt_ids": [1, 2,\n`, 2, /not valid JSON/);
  expectLineError(`${GOOD}\n\n[1, 2, 3]\n`, 3, /expected a JSON object, got an array/); // blank lines still count
  expectLineError(`${GOOD}\n{"io_id": 4, "s_id": 5}`, 2, /missing the prompt/);
  expectLineError(`{"prompt_ids": [1, "two", 3], "io_id": 4, "s_id": 5}`, 1, /"prompt_ids\[1\]" must be a non-negative integer token id, got "two"/);
  expectLineError(`{"prompt_ids": "1 2 3", "io_id": 4}`, 1, /"prompt_ids" must be an array/);
  expectLineError(`{"prompt": 17, "io_id": 4}`, 1, /"prompt" must be a string, got number 17/);
  expectLineError(`{"prompt_ids": [1, 2, 3], "io_id": 4.5, "s_id": 5}`, 1, /"io_id" must be a non-negative integer/);
  expectLineError(`{"prompt_ids": [1, 2, 3], "io_id": 4, "s_id": 5, "corrupted_ids": [1, 2]}`, 1, /"corrupted_ids" has 2 tokens but the prompt has 3/);
  expectLineError(`{"prompt_ids": [], "io_id": 4}`, 1, /prompt is empty/);
  expectLineError(`{"prompt_ids": [1, 2, 3], "io_id": 4000, "s_id": 5}`, 1, /token id 4000, outside the vocabulary of 2088/, { vocabSize: 2088 });
  expectLineError(`{"prompt_ids": [1], "yy_token_ids": [1, 2, 3], "start_yy": 1}`, 1, /exactly 100 two-digit year tokens/);
  expectLineError(`{"prompt_ids": [1], "yy_token_ids": ${JSON.stringify(Array.from({ length: 100 }, (_, i) => i))}, "start_yy": 100}`, 1, /"start_yy" must be an integer 0\.\.99/);
});

test('text fields need a tokenizer, and target/foil text must be one token', () => {
  expectLineError('{"prompt": "Then, Ann and Bob went", "io": " Ann", "s": " Bob"}', 1, /no tokenizer is available/);
  const { encode } = makeFakeEncoder();
  const task = parseTaskJsonl('{"prompt": "Then, Ann and Bob went", "io": " Ann", "s": " Bob"}', 'text.jsonl', { encode });
  const example = task.examples[0]!;
  assert.deepEqual(example.ids, encode('Then, Ann and Bob went'));
  assert.equal(example.target, encode(' Ann')[0]);
  assert.equal(example.foil, encode(' Bob')[0]);
  // " Christopher" is two tokens for the fake tokenizer (more than 7 letters).
  expectLineError('{"prompt": "x", "io": " Christopher", "s": " Bob"}', 1, /target " Christopher" \(field "io"\) is 2 tokens/, { encode });
  // Tokenized corrupted prompts must match the prompt's length as well.
  expectLineError('{"prompt": "Ann met Bob", "io": " Bob", "s": " Ann", "corrupted_prompt": "Ann met Christopher"}', 1, /tokenized "corrupted_prompt" has 4 tokens but the prompt has 3/, { encode });
});

test('ids win over text, other fields are kept as meta', () => {
  const task = parseTaskJsonl('{"prompt": "ignored by the model", "prompt_ids": [7, 8], "target_id": 9, "foil_id": 3, "pair_id": 12}', 'f.jsonl');
  const example = task.examples[0]!;
  assert.deepEqual(example.ids, [7, 8]);
  assert.equal(example.prompt, 'ignored by the model');
  assert.equal(example.meta['pair_id'], 12);
  assert.deepEqual(attributionTarget(example), { kind: 'logit_diff', position: 1, token: 9, foil: 3 });
});

test('the task metric is inferred from the first line and every line must support it', () => {
  assert.equal(parseTaskJsonl('{"prompt_ids": [1], "target_id": 2}', 'a.jsonl').metric, 'top1');
  assert.equal(parseTaskJsonl('{"prompt_ids": [1], "good_ids": [2], "bad_ids": [3]}', 'a.jsonl').metric, 'prob_diff');
  assert.equal(parseTaskJsonl('{"prompt_ids": [1]}', 'a.jsonl').metric, 'kl');
  expectLineError(`${GOOD}\n{"prompt_ids": [1, 2], "io_id": 4}`, 2, /"logit_diff" needs a foil token/);
  expectLineError('{"prompt_ids": [1], "toxic_token_ids": [2]}', 1, /"accuracy" needs a target token/, { metric: 'accuracy' });
  assert.throws(() => parseTaskJsonl('\n\n', 'empty.jsonl'), /empty\.jsonl: contains no examples/);
  assert.throws(() => parseTaskJsonl(GOOD, 'a.jsonl', { metric: 'bleu' as never }), /unknown metric "bleu"/);
});

test('records (generator output) parse with their index as the line number', () => {
  const task = taskFromRecords([{ prompt_ids: [1, 2], target_id: 3 }, { prompt_ids: [1, 2] }], 'generated', { metric: 'kl' });
  assert.equal(task.examples[1]!.origin, 'generated:2');
  assert.throws(() => taskFromRecords([{ prompt_ids: [1] }, { prompt_ids: [1, -2] }], 'generated'), /^CircuitInputError: generated:2: /);
});

test('a missing task file is a clear error', () => {
  assert.throws(() => loadTaskFile('/nonexistent/tasks.jsonl'), /\/nonexistent\/tasks\.jsonl: cannot read the task file/);
});
