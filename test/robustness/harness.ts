/**
 * The machinery of the generated bad-input suite: a tally of outcomes, a case runner that
 * classifies what an operation did (clear error, accepted, crash) and checks that it wrote
 * nothing, and builders for broken copies of the embedded model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CircuitInputError } from '../../src/circuits/errors';
import { InputError } from '../../src/models/errors';
import { EMBEDDED_MODEL } from '../helpers';

export const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'] as const;

/** What a case expects. */
export type Expectation =
  /** A clear error: InputError/CircuitInputError whose message names `names` and matches `problem`. */
  | { kind: 'error'; names: readonly string[]; problem?: RegExp; line?: number }
  /** Valid but odd input: the operation must succeed; `verify` checks its result. */
  | { kind: 'accept'; verify?: (result: unknown) => void };

export interface Case {
  readonly family: string;
  readonly name: string;
  readonly expect: Expectation;
  /** Longer than this is a hang, counted as a crash. */
  readonly budgetMs?: number;
  /** Folders that must hold exactly the same files (names, sizes, mtimes) before and after. */
  readonly watch: readonly string[];
  run(): unknown;
}

export type Outcome = 'clear' | 'accepted' | 'crash' | 'unclear';

export class Tally {
  cases = 0;
  clearErrors = 0;
  accepted = 0;
  crashes = 0;
  unclear = 0;
  partialFiles = 0;
  readonly perFamily = new Map<string, number>();
  slowest = { name: '', ms: 0 };
  readonly problems: string[] = [];

  summary(): string {
    return `${this.cases} cases, ${this.clearErrors} clear errors, ${this.crashes} crashes, ${this.partialFiles} partial files`;
  }
}

/** Every file under `root`, with size and mtime, as one comparable listing. */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      const st = fs.lstatSync(full);
      out.set(full, `${e.isDirectory() ? 'dir' : 'file'}:${st.size}:${st.mtimeMs}`);
      if (e.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out;
}

function diff(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [file, sig] of after) if (before.get(file) !== sig) changed.push(before.has(file) ? `modified ${file}` : `created ${file}`);
  for (const file of before.keys()) if (!after.has(file)) changed.push(`deleted ${file}`);
  return changed;
}

class ExitAttempt extends Error {}

/**
 * Runs one case and records its outcome in the tally; throws (failing the test) unless the
 * outcome is what the case expects and nothing was written.
 */
export async function runCase(tally: Tally, c: Case): Promise<void> {
  tally.cases++;
  tally.perFamily.set(c.family, (tally.perFamily.get(c.family) ?? 0) + 1);
  const before = c.watch.map(snapshot);
  const realExit = process.exit;
  // A library calling process.exit would end the whole suite: make it a crash of this case instead.
  process.exit = ((code?: number) => {
    throw new ExitAttempt(`process.exit(${code ?? ''}) called`);
  }) as typeof process.exit;
  const started = performance.now();
  let result: unknown;
  let error: unknown;
  let threw = false;
  try {
    result = await c.run();
  } catch (err) {
    threw = true;
    error = err;
  } finally {
    process.exit = realExit;
  }
  const elapsed = performance.now() - started;
  if (elapsed > tally.slowest.ms) tally.slowest = { name: `[${c.family}] ${c.name}`, ms: elapsed };
  const written = c.watch.flatMap((dir, i) => diff(before[i]!, snapshot(dir)));
  if (written.length > 0) tally.partialFiles++;

  let outcome: Outcome;
  let detail = '';
  // Generous: a real hang takes minutes; a loaded 2-core CI machine can slow a case several-fold.
  const budget = c.budgetMs ?? 15000;
  if (elapsed > budget) {
    outcome = 'crash';
    detail = `took ${elapsed.toFixed(0)} ms (budget ${budget} ms): a hang`;
  } else if (threw && !(error instanceof InputError || error instanceof CircuitInputError)) {
    outcome = 'crash';
    detail = `threw ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`;
  } else if (c.expect.kind === 'error') {
    if (!threw) {
      outcome = 'unclear';
      detail = `no error: the bad input was accepted (${describe(result)})`;
    } else {
      const message = (error as Error).message;
      const missing = c.expect.names.length > 0 && !c.expect.names.some((n) => message.includes(n));
      const wrongLine = c.expect.line !== undefined && (error as CircuitInputError).line !== c.expect.line;
      const wrongProblem = c.expect.problem !== undefined && !c.expect.problem.test(message);
      if (missing || wrongLine || wrongProblem) {
        outcome = 'unclear';
        detail = `${missing ? `does not name ${c.expect.names.join(' or ')}; ` : ''}${wrongLine ? `line ${(error as CircuitInputError).line} instead of ${c.expect.line}; ` : ''}${wrongProblem ? `does not match ${c.expect.problem}; ` : ''}message: ${message}`;
      } else {
        outcome = 'clear';
      }
    }
  } else if (threw) {
    outcome = 'unclear';
    detail = `valid input refused: ${(error as Error).message}`;
  } else {
    try {
      c.expect.verify?.(result);
      outcome = 'accepted';
    } catch (err) {
      outcome = 'crash';
      detail = `accepted but wrong: ${(err as Error).message}`;
    }
  }
  if (outcome === 'clear') tally.clearErrors++;
  else if (outcome === 'accepted') tally.accepted++;
  else if (outcome === 'crash') tally.crashes++;
  else tally.unclear++;
  const problems = [...(outcome === 'crash' || outcome === 'unclear' ? [`${outcome}: ${detail}`] : []), ...(written.length ? [`wrote files: ${written.join(', ')}`] : [])];
  if (problems.length > 0) {
    const line = `[${c.family}] ${c.name}: ${problems.join('; ')}`;
    tally.problems.push(line);
    throw new Error(line);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'returned nothing';
  if (typeof value === 'object' && value !== null) return `returned ${Object.keys(value).slice(0, 5).join(', ')}`;
  return `returned ${String(value).slice(0, 80)}`;
}

// ---------------------------------------------------------------------------------------------
// Broken model folders

/** A scratch root under the OS temp folder; every case folder lives (briefly) inside it. */
export function scratchRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'circuit-lens-robustness-'));
}

/** The embedded model's files, read once. */
export const BASE = Object.fromEntries(MODEL_FILES.map((f) => [f, fs.readFileSync(path.join(EMBEDDED_MODEL, f))])) as Record<(typeof MODEL_FILES)[number], Buffer>;

export interface HeaderEntry {
  dtype: unknown;
  shape: unknown;
  data_offsets: unknown;
}

/** The embedded safetensors file split into its header and data section. */
export const ST = (() => {
  const bytes = BASE['model.safetensors'];
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  return { bytes, headerLength, header, data: bytes.subarray(8 + headerLength), names: Object.keys(header).filter((n) => n !== '__metadata__') };
})();

/** A safetensors file from a header object and a data section (header padded to 8 bytes, as the reference writer does). */
export function safetensorsBytes(header: unknown, data: Buffer, misalign = 0): Buffer {
  let json = JSON.stringify(header);
  json += ' '.repeat(((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8) + misalign);
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + data.length);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  data.copy(out, 8 + head.length);
  return out;
}

/** The embedded file with its header edited (a deep copy is handed to `edit`; data unchanged). */
export function editedHeader(edit: (header: Record<string, any>) => void): Buffer {
  const header = structuredClone(ST.header) as Record<string, any>;
  edit(header);
  return safetensorsBytes(header, ST.data);
}

/**
 * The embedded file with one tensor re-encoded in another float dtype (F16, BF16, F64), the
 * data section rebuilt so offsets stay contiguous. `poke` may then change its raw bytes;
 * `misalign` extra header bytes leave the data unaligned (legal, if unusual).
 */
export function withTensorAs(name: string, dtype: 'F16' | 'BF16' | 'F64' | 'F32', poke?: (raw: Buffer, width: number) => void, misalign = 0): Buffer {
  const header: Record<string, any> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const n of ST.names) {
    const entry = ST.header[n]!;
    let raw = ST.data.subarray(entry.data_offsets[0], entry.data_offsets[1]);
    let d = entry.dtype;
    if (n === name) {
      const values = new Float32Array(raw.byteLength / 4);
      for (let i = 0; i < values.length; i++) values[i] = raw.readFloatLE(i * 4);
      raw = encodeFloats(values, dtype);
      d = dtype;
      poke?.(raw, dtype === 'F64' ? 8 : dtype === 'F32' ? 4 : 2);
    }
    header[n] = { dtype: d, shape: entry.shape, data_offsets: [offset, offset + raw.length] };
    chunks.push(raw);
    offset += raw.length;
  }
  return safetensorsBytes(header, Buffer.concat(chunks), misalign);
}

function encodeFloats(values: Float32Array, dtype: 'F16' | 'BF16' | 'F64' | 'F32'): Buffer {
  const width = dtype === 'F64' ? 8 : dtype === 'F32' ? 4 : 2;
  const out = Buffer.alloc(values.length * width);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'F64') out.writeDoubleLE(values[i]!, i * 8);
    else if (dtype === 'F32') out.writeFloatLE(values[i]!, i * 4);
    else if (dtype === 'BF16') out.writeUInt16LE(u32[i]! >>> 16, i * 2);
    else out.writeUInt16LE(floatToHalf(values[i]!), i * 2);
  }
  return out;
}

/** float32 → IEEE half (round toward zero; enough for test data). */
export function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) return sign; // flush tiny values to zero
  return sign | (exp << 10) | (mant >>> 13);
}

/**
 * A fresh copy of the embedded model in `root`, with `files` replacing (Buffer/string) or
 * removing (null) some of its files. Returns the folder.
 */
export function modelFolder(root: string, tag: string, files: Partial<Record<string, Buffer | string | null>> = {}): string {
  const dir = fs.mkdtempSync(path.join(root, `${tag.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-`));
  for (const f of MODEL_FILES) if (!(f in files)) fs.writeFileSync(path.join(dir, f), BASE[f]);
  for (const [f, content] of Object.entries(files)) if (content !== null && content !== undefined) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

/** Seeded pseudo-random numbers (mulberry32), so every generated case is reproducible. */
export function rng(seed: number): { float(): number; int(n: number): number; pick<T>(items: readonly T[]): T } {
  let state = seed >>> 0;
  const float = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(float() * n);
  return { float, int, pick: <T>(items: readonly T[]) => items[int(items.length)]! };
}

/** Token offsets must tile the prompt: start at 0, end at its length, contiguous and monotone. */
export function checkOffsets(text: string, encoded: { ids: number[]; offsets: [number, number][] }, vocabSize: number): void {
  const { ids, offsets } = encoded;
  if (ids.length === 0) throw new Error('no tokens');
  if (offsets.length !== ids.length) throw new Error(`${ids.length} ids but ${offsets.length} offsets`);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`id ${i} is ${id}, outside the vocabulary`);
  });
  let previous = 0;
  offsets.forEach(([start, end], i) => {
    if (!Number.isInteger(start) || !Number.isInteger(end)) throw new Error(`offset ${i} is not integral: [${start}, ${end}]`);
    if (start !== previous) throw new Error(`offset ${i} starts at ${start}, the previous ended at ${previous}`);
    if (end < start) throw new Error(`offset ${i} runs backwards: [${start}, ${end}]`);
    if (end > text.length) throw new Error(`offset ${i} ends at ${end}, past the prompt's ${text.length} characters`);
    previous = end;
  });
  if (previous !== text.length) throw new Error(`offsets end at ${previous}, the prompt has ${text.length} characters`);
}
