/**
 * Built-in task generators: IOI (ACDC's recipe), greater-than (Hanna et al.) and induction.
 *
 * Generators produce plain records in the JSONL task format (see tasks.ts), so generated and
 * file-based tasks go through the same parser and the same checks (single-token answers,
 * corrupted prompts of equal token length). `generateIoiTask` etc. do both steps.
 * All randomness comes from a seeded PRNG: same options + seed → same data set.
 */

import { Random } from '../prng';
import type { EncodeFn } from '../runner';
import { taskFromRecords, type MetricName, type Task } from './tasks';
import {
  GREATER_THAN_NOUNS,
  GREATER_THAN_TEMPLATES,
  IOI_BABA_TEMPLATES,
  IOI_NAMES,
  IOI_OBJECTS,
  IOI_PLACES,
} from './templates';
import type { BuiltInTask } from '../../vocabulary';

// ---------------------------------------------------------------------------------------------
// IOI

export type IoiOrder = 'ABBA' | 'BABA' | 'mixed';

export interface IoiOptions {
  readonly count: number;
  readonly seed?: number;
  /** `mixed` (default) draws ABBA or BABA with equal probability per prompt. */
  readonly order?: IoiOrder;
  /** BABA-form templates; default: ACDC's 15. */
  readonly templates?: readonly string[];
  /** Restrict to these template indices (ACDC's own experiments use `[0]` with order ABBA). */
  readonly templateIds?: readonly number[];
  readonly names?: readonly string[];
  readonly places?: readonly string[];
  readonly objects?: readonly string[];
  /**
   * Whether `" " + name` is one token for the model's tokenizer. Names failing it are dropped,
   * because the logit-diff metric compares single tokens and ABC corruption must keep length.
   */
  readonly isSingleToken?: (text: string) => boolean;
  /** Also emit each prompt with IO and S swapped (ACDC's `symmetric=True`), right after it. */
  readonly symmetric?: boolean;
}

/** One generated IOI prompt, in the JSONL task format (`io`/`s` carry the leading space). */
export interface IoiRecord {
  readonly prompt: string;
  readonly io: string;
  readonly s: string;
  readonly template_id: number;
  readonly order: 'ABBA' | 'BABA';
  readonly place: string;
  readonly object: string;
  /** ABC distribution: the IO, S1 and S2 slots hold three other, distinct names. */
  readonly corrupted_prompt: string;
  /** The corrupted prompt's names in order of appearance (with leading space). */
  readonly corrupted_names: readonly string[];
}

/**
 * The ABBA mirror of a BABA template: the first `[B]` and the first `[A]` swap places, so the
 * first clause names IO first ("Then, [A] and [B] went … [B] gave … to [A]").
 */
export function abbaFromBaba(template: string): string {
  const firstB = template.indexOf('[B]');
  const firstA = template.indexOf('[A]');
  if (firstB < 0 || firstA < 0) throw new Error(`IOI template has no [A] or no [B]: ${JSON.stringify(template)}`);
  const [first, second] = firstB < firstA ? [firstB, firstA] : [firstA, firstB];
  const firstLabel = template.slice(first, first + 3);
  const secondLabel = template.slice(second, second + 3);
  return template.slice(0, first) + secondLabel + template.slice(first + 3, second) + firstLabel + template.slice(second + 3);
}

/**
 * Splits a template into the prompt part and checks the slot structure every IOI template
 * must have: the sentence ends with ` [A]` (the answer), and the prompt holds IO once and S twice.
 */
function ioiPromptTemplate(template: string, index: number): string {
  const answer = ' [A]';
  if (!template.endsWith(answer)) {
    throw new Error(`IOI template ${index} must end with " [A]" (the answer): ${JSON.stringify(template)}`);
  }
  const prompt = template.slice(0, -answer.length);
  const countA = prompt.split('[A]').length - 1;
  const countB = prompt.split('[B]').length - 1;
  if (countA !== 1 || countB !== 2) {
    throw new Error(`IOI template ${index} must name [A] once and [B] twice before the answer, has ${countA} and ${countB}: ${JSON.stringify(template)}`);
  }
  return prompt;
}

/** Fills name slots in order of appearance: `[A]` → io, first `[B]` → s1, second `[B]` → s2. */
function fillNames(prompt: string, io: string, s1: string, s2: string): { text: string; order: string[] } {
  const order: string[] = [];
  let bSeen = 0;
  const text = prompt.replace(/\[(A|B)\]/g, (_match, slot: string) => {
    const name = slot === 'A' ? io : bSeen++ === 0 ? s1 : s2;
    order.push(name);
    return name;
  });
  return { text, order };
}

export function generateIoi(options: IoiOptions): IoiRecord[] {
  const random = new Random(options.seed ?? 0);
  const allTemplates = options.templates ?? IOI_BABA_TEMPLATES;
  const templateIds = options.templateIds ?? allTemplates.map((_, i) => i);
  for (const id of templateIds) {
    if (!Number.isInteger(id) || id < 0 || id >= allTemplates.length) {
      throw new Error(`IOI generator: template id ${id} is out of range (there are ${allTemplates.length} templates)`);
    }
  }
  const babaPrompts = allTemplates.map(ioiPromptTemplate);
  const isSingleToken = options.isSingleToken ?? (() => true);
  const names = (options.names ?? IOI_NAMES).filter((name) => isSingleToken(` ${name}`));
  // Five distinct names per prompt: IO, S and the three ABC replacements.
  if (names.length < 5) {
    throw new Error(`IOI generator: only ${names.length} names are single tokens for this tokenizer; at least 5 are needed`);
  }
  const places = options.places ?? IOI_PLACES;
  const objects = options.objects ?? IOI_OBJECTS;
  const order = options.order ?? 'mixed';
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw new Error(`IOI generator: count must be a positive integer, got ${options.count}`);
  }

  const records: IoiRecord[] = [];
  while (records.length < options.count) {
    const templateId = random.pick(templateIds);
    const promptOrder: 'ABBA' | 'BABA' = order === 'mixed' ? (random.int(2) === 0 ? 'ABBA' : 'BABA') : order;
    const babaPrompt = babaPrompts[templateId]!;
    const prompt = promptOrder === 'BABA' ? babaPrompt : abbaFromBaba(babaPrompt);
    const place = random.pick(places);
    const object = random.pick(objects);
    const [io, s, ...abc] = random.sample(names, 5).map((name) => ` ${name}`);
    const variants: [string, string][] = options.symmetric ? [[io!, s!], [s!, io!]] : [[io!, s!]];
    for (const [ioName, sName] of variants) {
      records.push(makeIoiRecord(prompt, templateId, promptOrder, place, object, ioName, sName, abc as [string, string, string]));
    }
  }
  return records.slice(0, options.count);
}

function makeIoiRecord(
  promptTemplate: string,
  templateId: number,
  order: 'ABBA' | 'BABA',
  place: string,
  object: string,
  io: string,
  s: string,
  [ioReplacement, s2Replacement, s1Replacement]: [string, string, string],
): IoiRecord {
  // Template slots are written without a leading space ("Then, [B] and"), names carry one.
  const withThings = promptTemplate.replaceAll('[PLACE]', place).replaceAll('[OBJECT]', object);
  const bare = (name: string) => name.slice(1);
  const clean = fillNames(withThings, bare(io), bare(s), bare(s));
  // ACDC's ABC corruption: IO → a random name, S (both) → another, then S1 alone → a third.
  const corrupted = fillNames(withThings, bare(ioReplacement), bare(s1Replacement), bare(s2Replacement));
  return {
    prompt: clean.text,
    io,
    s,
    template_id: templateId,
    order,
    place,
    object,
    corrupted_prompt: corrupted.text,
    corrupted_names: corrupted.order.map((name) => ` ${name}`),
  };
}

/** Generates IOI records and parses them into a task (logit diff of IO vs S). */
export function generateIoiTask(options: IoiOptions & { readonly encode: EncodeFn; readonly metric?: MetricName }): Task {
  const isSingleToken = options.isSingleToken ?? ((text: string) => options.encode(text).length === 1);
  const records = generateIoi({ ...options, isSingleToken });
  return taskFromRecords(records, `generated IOI (seed ${options.seed ?? 0})`, {
    encode: options.encode,
    metric: options.metric ?? 'logit_diff',
    name: 'ioi',
  });
}

// ---------------------------------------------------------------------------------------------
// Greater-than

export interface GreaterThanOptions {
  readonly count: number;
  readonly seed?: number;
  readonly templates?: readonly string[];
  readonly nouns?: readonly string[];
  /** Centuries to draw from (the `XX` of `XXYY`); default 11..17 as in Hanna et al. */
  readonly centuries?: readonly number[];
  /**
   * Whether the year `XXYY` tokenizes as ` XX` + `YY` for this tokenizer (see
   * `yearSplitsAsTwoTokens`); years failing it are skipped so the answer is one token.
   */
  readonly yearIsClean?: (century: number, yy: number) => boolean;
  /** Whether a noun is usable (e.g. one token); nouns failing it are dropped. */
  readonly nounFilter?: (noun: string) => boolean;
}

export interface GreaterThanRecord {
  readonly prompt: string;
  readonly noun: string;
  readonly century: number;
  readonly start_yy: number;
  readonly start_year: number;
  readonly template_id: number;
  /** The "01" corruption of Hanna et al.: start year XX01, so no year is ruled out. */
  readonly corrupted_prompt: string;
  /** The 100 two-digit continuations "00".."99" (the parser encodes them). */
  readonly yy_tokens: readonly string[];
}

export const TWO_DIGIT_YEARS: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

/** Predicate for `yearIsClean`: ` XXYY` must encode to exactly [enc(` XX`), enc(`YY`)]. */
export function yearSplitsAsTwoTokens(encode: EncodeFn): (century: number, yy: number) => boolean {
  return (century, yy) => {
    const whole = encode(` ${century}${TWO_DIGIT_YEARS[yy]}`);
    const head = encode(` ${century}`);
    const tail = encode(TWO_DIGIT_YEARS[yy]!);
    return whole.length === 2 && head.length === 1 && tail.length === 1 && whole[0] === head[0] && whole[1] === tail[0];
  };
}

export function generateGreaterThan(options: GreaterThanOptions): GreaterThanRecord[] {
  const random = new Random(options.seed ?? 0);
  const templates = options.templates ?? GREATER_THAN_TEMPLATES.slice(0, 1);
  templates.forEach((template, index) => {
    if (!template.endsWith('[XX]') || !template.includes('[XX][YY]') || !template.includes('[NOUN]')) {
      throw new Error(`greater-than template ${index} must contain [NOUN] and [XX][YY] and end with [XX]: ${JSON.stringify(template)}`);
    }
  });
  const nouns = (options.nouns ?? GREATER_THAN_NOUNS).filter(options.nounFilter ?? (() => true));
  if (nouns.length === 0) throw new Error('greater-than generator: no usable nouns left after filtering');
  const centuries = options.centuries ?? [11, 12, 13, 14, 15, 16, 17];
  const yearIsClean = options.yearIsClean ?? (() => true);
  // Start years 02..98 (Hanna et al.): both "later" and "earlier" continuations exist, and 01 is
  // reserved for the corruption.
  const candidates: [number, number][] = [];
  for (const century of centuries) {
    if (!Number.isInteger(century) || century < 10 || century > 99) {
      throw new Error(`greater-than generator: century must be a two-digit integer, got ${century}`);
    }
    for (let yy = 2; yy <= 98; yy++) {
      if (yearIsClean(century, yy) && yearIsClean(century, 1)) candidates.push([century, yy]);
    }
  }
  if (candidates.length === 0) throw new Error('greater-than generator: no start year tokenizes as two tokens (" XX" + "YY")');
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw new Error(`greater-than generator: count must be a positive integer, got ${options.count}`);
  }

  const records: GreaterThanRecord[] = [];
  for (let i = 0; i < options.count; i++) {
    const templateId = random.int(templates.length);
    const noun = random.pick(nouns);
    const [century, yy] = random.pick(candidates);
    const fill = (startYy: string) =>
      templates[templateId]!.replaceAll('[NOUN]', noun).replace('[XX][YY]', `${century}${startYy}`).replaceAll('[XX]', String(century));
    records.push({
      prompt: fill(TWO_DIGIT_YEARS[yy]!),
      noun,
      century,
      start_yy: yy,
      start_year: century * 100 + yy,
      template_id: templateId,
      corrupted_prompt: fill('01'),
      yy_tokens: TWO_DIGIT_YEARS,
    });
  }
  return records;
}

/** Generates greater-than records and parses them into a task (probability difference). */
export function generateGreaterThanTask(options: GreaterThanOptions & { readonly encode: EncodeFn }): Task {
  const records = generateGreaterThan({ yearIsClean: yearSplitsAsTwoTokens(options.encode), ...options });
  return taskFromRecords(records, `generated greater-than (seed ${options.seed ?? 0})`, {
    encode: options.encode,
    metric: 'prob_diff',
    name: 'greater-than',
  });
}

// ---------------------------------------------------------------------------------------------
// Induction

export interface InductionOptions {
  readonly count: number;
  readonly seed?: number;
  /** Length of the random run that is repeated (default 10). */
  readonly runLength?: number;
  /** Token ids to draw from; or give `vocabSize` (+ optional `isUsable`) to draw from 0..V−1. */
  readonly vocabulary?: readonly number[];
  readonly vocabSize?: number;
  /** Excludes special or odd tokens (e.g. `<|endoftext|>`, bytes). */
  readonly isUsable?: (id: number) => boolean;
  /** Prepended to every prompt, e.g. `[bosTokenId]` for models trained with BOS. */
  readonly prefix?: readonly number[];
}

export interface InductionRecord {
  /** prefix + run + run without its last token: the model should predict the run's last token. */
  readonly prompt_ids: readonly number[];
  readonly target_id: number;
  /** A token not in the run, so logit diff measures copying rather than general frequency. */
  readonly foil_id: number;
  /** prefix + run + a different run (no repetition), same length. */
  readonly corrupted_ids: readonly number[];
  readonly run_length: number;
}

export function generateInduction(options: InductionOptions): InductionRecord[] {
  const random = new Random(options.seed ?? 0);
  const runLength = options.runLength ?? 10;
  if (!Number.isInteger(runLength) || runLength < 2) throw new Error(`induction generator: runLength must be an integer ≥ 2, got ${runLength}`);
  let vocabulary: readonly number[];
  if (options.vocabulary !== undefined) {
    vocabulary = options.vocabulary.filter(options.isUsable ?? (() => true));
  } else if (options.vocabSize !== undefined) {
    const isUsable = options.isUsable ?? (() => true);
    vocabulary = Array.from({ length: options.vocabSize }, (_, id) => id).filter(isUsable);
  } else {
    throw new Error('induction generator: give a vocabulary (token ids) or a vocabSize');
  }
  // Two disjoint runs plus a foil, all distinct, so the copy target is unambiguous.
  if (vocabulary.length < 2 * runLength + 1) {
    throw new Error(`induction generator: needs at least ${2 * runLength + 1} usable tokens, has ${vocabulary.length}`);
  }
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw new Error(`induction generator: count must be a positive integer, got ${options.count}`);
  }
  const prefix = options.prefix ?? [];
  const records: InductionRecord[] = [];
  for (let i = 0; i < options.count; i++) {
    const drawn = random.sample(vocabulary, 2 * runLength + 1);
    const run = drawn.slice(0, runLength);
    const other = drawn.slice(runLength, 2 * runLength);
    records.push({
      prompt_ids: [...prefix, ...run, ...run.slice(0, -1)],
      target_id: run[runLength - 1]!,
      foil_id: drawn[2 * runLength]!,
      corrupted_ids: [...prefix, ...run, ...other.slice(0, -1)],
      run_length: runLength,
    });
  }
  return records;
}

export function generateInductionTask(options: InductionOptions & { readonly metric?: MetricName }): Task {
  return taskFromRecords(generateInduction(options), `generated induction (seed ${options.seed ?? 0})`, {
    metric: options.metric ?? 'logit_diff',
    ...(options.vocabSize !== undefined && { vocabSize: options.vocabSize }),
    name: 'induction',
  });
}

/**
 * The held-out IOI split for choosing defaults honestly: defaults are chosen on a calibration set
 * (for the embedded model its `ioi.jsonl`, written from the training corpus's 20 templates and
 * its places/objects) and reported on this one, which uses ACDC's 15 templates (both orders),
 * ACDC's places and objects and a seed used nowhere else. Names are ACDC's that are one token for
 * the tokenizer; they cannot be disjoint from the calibration names on the embedded model, which
 * learned IOI for about 100 names only (on 14 single-token names outside its IOI training data its
 * accuracy is 54 %, chance). Prompts whose text occurs in `exclude` are dropped.
 */
export const HELD_OUT_IOI_SEED = 20_251;

export function heldOutIoiTask(tokenizer: { encodeIds(text: string): number[] }, count: number, exclude: readonly string[] = []): Task {
  const encode = (text: string) => tokenizer.encodeIds(text);
  const excluded = new Set(exclude);
  const records = generateIoi({ count: count * 2, seed: HELD_OUT_IOI_SEED, isSingleToken: (text) => encode(text).length === 1 }).filter((r) => !excluded.has(r.prompt));
  const seen = new Set<string>();
  const unique = records.filter((r) => !seen.has(r.prompt) && seen.add(r.prompt)).slice(0, count);
  if (unique.length < count) throw new Error(`held-out IOI: only ${unique.length} distinct prompts outside the calibration set, ${count} asked for`);
  return taskFromRecords(unique, `held-out IOI (ACDC templates, seed ${HELD_OUT_IOI_SEED})`, { encode, metric: 'logit_diff', name: 'ioi' });
}

/**
 * The built-in tasks as the CLI's `--task ioi|greater-than` and the extension make them: IOI
 * restricted to names that are one token for this tokenizer, greater-than to years that split
 * into century and two digits.
 */
export function builtInTask(name: BuiltInTask, tokenizer: { encodeIds(text: string): number[] }, count: number, seed: number): Task {
  const encode = (text: string) => tokenizer.encodeIds(text);
  return name === 'ioi'
    ? generateIoiTask({ count, seed, encode, isSingleToken: (text) => encode(text).length === 1 })
    : generateGreaterThanTask({ count, seed, encode, yearIsClean: yearSplitsAsTwoTokens(encode) });
}
