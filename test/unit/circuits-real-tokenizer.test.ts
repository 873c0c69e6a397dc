/**
 * Task loading and generators against the real tiny-ioi-gpt2 tokenizer (read from ../shared with
 * the project's own @huggingface/tokenizers dependency). Skipped when ../shared is absent.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { generateGreaterThanTask, generateIoiTask } from '../../src/circuits/tasks/generators';
import { perplexityWindows } from '../../src/circuits/metrics';
import { loadTaskFile, parseTaskJsonl } from '../../src/circuits/tasks/tasks';

// The embedded model ships these files in the repository: no skip needed.
const MODEL_DIR = path.resolve(__dirname, '../../models/tiny-ioi-gpt2');

function loadEncoder(): (text: string) => number[] {
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(path.join(MODEL_DIR, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(path.join(MODEL_DIR, 'tokenizer_config.json'), 'utf8')),
  );
  return (text) => [...tokenizer.encode(text, { add_special_tokens: false }).ids];
}

test('ioi.jsonl text fields re-tokenize to the stored ids', () => {
  const encode = loadEncoder();
  const fromIds = loadTaskFile(path.join(MODEL_DIR, 'ioi.jsonl'));
  const lines = readFileSync(path.join(MODEL_DIR, 'ioi.jsonl'), 'utf8').trim().split('\n');
  // Drop the id fields so the loader has to tokenize prompt, corrupted_prompt, io and s itself.
  const textOnly = lines.map((line) => {
    const { prompt_ids: _p, corrupted_ids: _c, io_id: _i, s_id: _s, ...rest } = JSON.parse(line);
    return JSON.stringify(rest);
  });
  const fromText = parseTaskJsonl(textOnly.join('\n'), 'ioi-text.jsonl', { encode });
  fromIds.examples.forEach((example, i) => {
    const other = fromText.examples[i]!;
    assert.deepEqual(other.ids, example.ids);
    assert.deepEqual(other.corruptedIds, example.corruptedIds);
    assert.equal(other.target, example.target);
    assert.equal(other.foil, example.foil);
  });
});

test('generated IOI and greater-than tasks tokenize with equal-length corruptions', () => {
  const encode = loadEncoder();
  const ioi = generateIoiTask({ count: 200, seed: 0, encode });
  assert.equal(ioi.examples.length, 200);
  for (const example of ioi.examples) assert.equal(example.corruptedIds!.length, example.ids.length);
  const greaterThan = generateGreaterThanTask({ count: 100, seed: 0, encode });
  for (const example of greaterThan.examples) {
    assert.equal(example.goodTokens!.length + example.badTokens!.length, 100);
    assert.equal(example.corruptedIds!.length, example.ids.length);
  }
});

test('heldout.txt in 128-token windows scores 11,552 tokens, as reference.json reports', () => {
  const ids = loadEncoder()(readFileSync(path.join(MODEL_DIR, 'heldout.txt'), 'utf8'));
  const windows = perplexityWindows(ids, 128);
  const scored = windows.reduce((sum, window) => sum + window.length - 1, 0);
  const reference = JSON.parse(readFileSync(path.join(MODEL_DIR, 'reference.json'), 'utf8'));
  assert.equal(scored, reference.metrics.heldout_tokens_scored);
});
