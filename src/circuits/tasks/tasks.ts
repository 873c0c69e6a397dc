/**
 * Tasks: a set of prompts plus what "doing the task" means for each (target vs foil token, or a
 * set of good vs bad tokens), optionally with a corrupted prompt of the same token length for
 * resample ablation, and the metric that scores the behaviour.
 *
 * The JSONL format is one JSON object per line. Recognised fields (all others are kept as
 * `meta` so nothing the data set author wrote is lost):
 *
 * | field | meaning |
 * |---|---|
 * | `prompt` (string) and/or `prompt_ids` (int[]) | the model input; ids win, text is tokenized otherwise |
 * | `target_id` / `io_id` (int), or `target` / `io` (string, one token) | the token the behaviour predicts |
 * | `foil_id` / `s_id` (int), or `foil` / `s` (string, one token) | the competing token |
 * | `good_ids` / `toxic_token_ids` (int[]) | tokens whose probability the behaviour raises |
 * | `bad_ids` (int[]) | tokens whose probability it lowers |
 * | `yy_token_ids` (100 ints) or `yy_tokens` (100 strings) with `start_yy` (0..99) | greater-than: good = years > start_yy, bad = years ≤ start_yy |
 * | `corrupted_ids` (int[]) or `corrupted_prompt` (string) | counterfactual input, same token length |
 * | `metric` | not per line: the task's metric is chosen once (option or inferred, see `inferMetric`) |
 *
 * The shipped eval sets (shared/models/tiny-ioi-gpt2/{ioi,greater_than,toxic}.jsonl) load as is.
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Target } from '../../engine/api';
import { CircuitInputError, describeValue } from '../errors';
import type { EncodeFn } from '../runner';
import { METRIC_NAMES, type MetricName } from '../../vocabulary';

export { METRIC_NAMES, type MetricName };


export interface TaskExample {
  /** Model input token ids (no special tokens are added). */
  readonly ids: readonly number[];
  readonly prompt?: string;
  readonly target?: number;
  readonly foil?: number;
  readonly goodTokens?: readonly number[];
  readonly badTokens?: readonly number[];
  /** Counterfactual input of the same length as `ids` (resample ablation, ABC corruption). */
  readonly corruptedIds?: readonly number[];
  readonly corruptedPrompt?: string;
  /** Every field of the source record that is not one of the big id arrays above. */
  readonly meta: Readonly<Record<string, unknown>>;
  /** Where the example came from, e.g. `ioi.jsonl:17`, for error messages downstream. */
  readonly origin: string;
}

export interface Task {
  readonly name: string;
  readonly metric: MetricName;
  readonly examples: readonly TaskExample[];
}

export interface TaskLoadOptions {
  /** Tokenizes text fields when ids are absent; required only for such records. */
  readonly encode?: EncodeFn;
  /** When given, every token id is checked to be below it. */
  readonly vocabSize?: number;
  /** The task metric; inferred from the first example when omitted. */
  readonly metric?: MetricName;
  /** Task name; defaults to the file name without `.jsonl`. */
  readonly name?: string;
}

/** Fields whose content moves into typed `TaskExample` members instead of `meta`. */
const ID_ARRAY_FIELDS = new Set(['prompt_ids', 'corrupted_ids', 'yy_token_ids', 'yy_tokens', 'toxic_token_ids', 'good_ids', 'bad_ids']);

/** Parses one JSONL document. `source` names the file in error messages. */
export function parseTaskJsonl(text: string, source: string, options: TaskLoadOptions = {}): Task {
  const examples: TaskExample[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '') continue; // blank lines (including the trailing newline) are harmless
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new CircuitInputError(source, `not valid JSON (${(error as Error).message})`, index + 1);
    }
    examples.push(parseTaskRecord(record, source, index + 1, options));
  }
  return finishTask(examples, source, options, taskNameFromSource(source));
}

/** Reads and parses a JSONL task file. */
export function loadTaskFile(path: string, options: TaskLoadOptions = {}): Task {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CircuitInputError(path, `cannot read the task file (${(error as Error).message})`);
  }
  return parseTaskJsonl(text, basename(path), options);
}

/**
 * Builds a task from in-memory records (the generators' output): same rules as a JSONL file,
 * with the record's index standing in for the line number.
 */
export function taskFromRecords(records: readonly unknown[], source: string, options: TaskLoadOptions = {}): Task {
  const examples = records.map((record, index) => parseTaskRecord(record, source, index + 1, options));
  return finishTask(examples, source, options, source);
}

/** Parses one record. `line` is 1-based and only used for error messages. */
export function parseTaskRecord(record: unknown, source: string, line: number, options: TaskLoadOptions = {}): TaskExample {
  const fail = (problem: string): never => {
    throw new CircuitInputError(source, problem, line);
  };
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    fail(`expected a JSON object, got ${describeValue(record)}`);
  }
  const fields = record as Record<string, unknown>;

  const tokenIdsField = (name: string): number[] | undefined => {
    const value = fields[name];
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return fail(`field "${name}" must be an array of token ids, got ${describeValue(value)}`);
    value.forEach((id, position) => checkTokenId(id, `${name}[${position}]`));
    return value as number[];
  };
  const checkTokenId = (id: unknown, label: string): number => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      return fail(`field "${label}" must be a non-negative integer token id, got ${describeValue(id)}`);
    }
    if (options.vocabSize !== undefined && id >= options.vocabSize) {
      return fail(`field "${label}" is token id ${id}, outside the vocabulary of ${options.vocabSize}`);
    }
    return id;
  };
  const stringField = (name: string): string | undefined => {
    const value = fields[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') return fail(`field "${name}" must be a string, got ${describeValue(value)}`);
    return value;
  };
  const encodeOrFail = (text: string, why: string): number[] => {
    if (options.encode === undefined) {
      return fail(`${why} is given only as text and no tokenizer is available: add the token ids or load a model with a tokenizer`);
    }
    const ids = [...options.encode(text)];
    ids.forEach((id, position) => checkTokenId(id, `encode(${JSON.stringify(text)})[${position}]`));
    return ids;
  };
  const singleToken = (idNames: readonly string[], textNames: readonly string[], role: string): number | undefined => {
    for (const name of idNames) {
      if (fields[name] !== undefined) return checkTokenId(fields[name], name);
    }
    for (const name of textNames) {
      const text = stringField(name);
      if (text === undefined) continue;
      const ids = encodeOrFail(text, `the ${role} "${name}"`);
      if (ids.length !== 1) {
        return fail(`the ${role} ${JSON.stringify(text)} (field "${name}") is ${ids.length} tokens; the metric compares single tokens, so give "${idNames[0]}" or pick a single-token ${role}`);
      }
      return ids[0];
    }
    return undefined;
  };

  // The prompt: ids win over text because the ids are what the data set author evaluated.
  const prompt = stringField('prompt');
  let ids = tokenIdsField('prompt_ids');
  if (ids === undefined) {
    if (prompt === undefined) fail('missing the prompt: give "prompt" (text) or "prompt_ids" (token ids)');
    ids = encodeOrFail(prompt!, 'the prompt');
  }
  if (ids.length === 0) fail('the prompt is empty (zero tokens)');

  const target = singleToken(['target_id', 'io_id'], ['target', 'io'], 'target');
  const foil = singleToken(['foil_id', 's_id'], ['foil', 's'], 'foil');

  let goodTokens = tokenIdsField('good_ids') ?? tokenIdsField('toxic_token_ids');
  let badTokens = tokenIdsField('bad_ids');
  const yearTokens = greaterThanYearTokens();
  if (yearTokens !== undefined) {
    const startYy = fields['start_yy'];
    if (typeof startYy !== 'number' || !Number.isInteger(startYy) || startYy < 0 || startYy > 99) {
      fail(`field "start_yy" must be an integer 0..99 when two-digit year tokens are given, got ${describeValue(startYy)}`);
    }
    // Years after the start year are the "correct" continuations (Hanna et al.'s prob diff).
    goodTokens ??= yearTokens.slice((startYy as number) + 1);
    badTokens ??= yearTokens.slice(0, (startYy as number) + 1);
  }
  if (goodTokens !== undefined && goodTokens.length === 0 && badTokens === undefined) {
    fail('the good-token list is empty');
  }

  const corruptedPrompt = stringField('corrupted_prompt');
  let corruptedIds = tokenIdsField('corrupted_ids');
  if (corruptedIds === undefined && corruptedPrompt !== undefined) {
    corruptedIds = encodeOrFail(corruptedPrompt, 'the corrupted prompt');
  }
  if (corruptedIds !== undefined && corruptedIds.length !== ids.length) {
    const which = fields['corrupted_ids'] !== undefined ? '"corrupted_ids"' : 'the tokenized "corrupted_prompt"';
    fail(`${which} has ${corruptedIds.length} tokens but the prompt has ${ids.length}; resample ablation patches position by position, so both must have the same length`);
  }

  const meta: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (!ID_ARRAY_FIELDS.has(key)) meta[key] = value;
  }
  return {
    ids,
    ...(prompt !== undefined && { prompt }),
    ...(target !== undefined && { target }),
    ...(foil !== undefined && { foil }),
    ...(goodTokens !== undefined && { goodTokens }),
    ...(badTokens !== undefined && { badTokens }),
    ...(corruptedIds !== undefined && { corruptedIds }),
    ...(corruptedPrompt !== undefined && { corruptedPrompt }),
    meta,
    origin: `${source}:${line}`,
  };

  /** The 100 two-digit year tokens "00".."99" of a greater-than record, by id or by text. */
  function greaterThanYearTokens(): number[] | undefined {
    const byId = tokenIdsField('yy_token_ids');
    const byText = fields['yy_tokens'];
    if (byId === undefined && byText === undefined) return undefined;
    let tokens: number[];
    if (byId !== undefined) {
      tokens = byId;
    } else {
      if (!Array.isArray(byText) || byText.some((t) => typeof t !== 'string')) {
        return fail(`field "yy_tokens" must be an array of strings, got ${describeValue(byText)}`);
      }
      tokens = (byText as string[]).map((text) => {
        const encoded = encodeOrFail(text, `the year token ${JSON.stringify(text)}`);
        if (encoded.length !== 1) fail(`the year token ${JSON.stringify(text)} is ${encoded.length} tokens; greater-than needs single-token years`);
        return encoded[0]!;
      });
    }
    if (tokens.length !== 100) {
      fail(`greater-than needs exactly 100 two-digit year tokens ("00".."99"), got ${tokens.length}`);
    }
    return tokens;
  }
}

/** The metric a task uses when none is given: the richest one its first example supports. */
export function inferMetric(example: TaskExample): MetricName {
  if (example.target !== undefined && example.foil !== undefined) return 'logit_diff';
  if (example.goodTokens !== undefined && example.badTokens !== undefined) return 'prob_diff';
  if (example.goodTokens !== undefined) return 'prob';
  if (example.target !== undefined) return 'top1';
  return 'kl';
}

/** Which example fields a metric reads; used to reject tasks that cannot be scored. */
export function missingForMetric(metric: MetricName, example: TaskExample): string | null {
  switch (metric) {
    case 'logit_diff':
    case 'accuracy':
      if (example.target === undefined) return 'a target token (target/target_id or io/io_id)';
      if (example.foil === undefined) return 'a foil token (foil/foil_id or s/s_id)';
      return null;
    case 'top1':
      return example.target === undefined ? 'a target token (target/target_id or io/io_id)' : null;
    case 'prob_diff':
      if (example.goodTokens === undefined) return 'good tokens (good_ids, or yy_token_ids with start_yy)';
      if (example.badTokens === undefined) return 'bad tokens (bad_ids, or yy_token_ids with start_yy)';
      return null;
    case 'prob':
      return example.goodTokens === undefined ? 'good tokens (good_ids or toxic_token_ids)' : null;
    case 'kl':
      return null;
  }
}

/**
 * The attribution target for one example at its last position: `logit_diff` when a foil exists,
 * else the target's `logit`. Null when the example has no single target token (greater-than,
 * toxic): the caller then has to choose what to explain.
 */
export function attributionTarget(example: TaskExample): Target | null {
  if (example.target === undefined) return null;
  const position = example.ids.length - 1;
  if (example.foil !== undefined) {
    return { kind: 'logit_diff', position, token: example.target, foil: example.foil };
  }
  return { kind: 'logit', position, token: example.target };
}

/** Sub-tasks by the value of a meta field, e.g. toxic.jsonl's `context` (toxic / control). */
export function splitTaskBy(task: Task, metaField: string): Map<string, Task> {
  const groups = new Map<string, TaskExample[]>();
  for (const example of task.examples) {
    const key = String(example.meta[metaField]);
    const group = groups.get(key) ?? [];
    group.push(example);
    groups.set(key, group);
  }
  const tasks = new Map<string, Task>();
  for (const [key, examples] of groups) {
    tasks.set(key, { name: `${task.name}[${metaField}=${key}]`, metric: task.metric, examples });
  }
  return tasks;
}

function finishTask(examples: TaskExample[], source: string, options: TaskLoadOptions, defaultName: string): Task {
  if (examples.length === 0) throw new CircuitInputError(source, 'contains no examples');
  const metric = options.metric ?? inferMetric(examples[0]!);
  if (!METRIC_NAMES.includes(metric)) {
    throw new CircuitInputError(source, `unknown metric "${String(metric)}" (known: ${METRIC_NAMES.join(', ')})`);
  }
  for (const example of examples) {
    const missing = missingForMetric(metric, example);
    if (missing !== null) {
      const line = Number(example.origin.slice(example.origin.lastIndexOf(':') + 1));
      throw new CircuitInputError(source, `the metric "${metric}" needs ${missing}, which this line does not have`, line);
    }
  }
  return { name: options.name ?? defaultName, metric, examples };
}

function taskNameFromSource(source: string): string {
  return basename(source).replace(/\.jsonl$/i, '');
}
