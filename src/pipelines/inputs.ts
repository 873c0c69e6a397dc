/**
 * Resolving what a user names (a task, a token, a text file, an eval set of the model folder)
 * into what the circuits code takes. One implementation for the CLI and the editor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import { builtInTask } from '../circuits/tasks/generators';
import { loadTaskFile, type Task, type TaskExample } from '../circuits/tasks/tasks';
import { BUILT_IN_TASKS, type BuiltInTask } from '../vocabulary';

export function isBuiltInTask(spec: string): spec is BuiltInTask {
  return (BUILT_IN_TASKS as readonly string[]).includes(spec);
}

/**
 * `ioi` and `greater-than` are generated for the model's tokenizer (deterministic in `seed`);
 * anything else is a JSONL task file. `n` keeps the first n examples.
 */
export function resolveTask(engine: Engine, spec: string, options: { readonly n?: number; readonly seed?: number } = {}): Task {
  const tokenizer = engine.tokenizer;
  let task: Task;
  if (isBuiltInTask(spec)) {
    if (!tokenizer) throw new InputError(`the built-in ${spec} task needs a model with a tokenizer; pass a JSONL file of token ids instead`);
    task = builtInTask(spec, tokenizer, options.n ?? 100, options.seed ?? 0);
  } else {
    requireFile(spec, 'task file');
    task = loadTaskFile(spec, { vocabSize: engine.spec.vocabSize, ...(tokenizer && { encode: (text: string) => tokenizer.encodeIds(text) }) });
  }
  if (options.n !== undefined && task.examples.length > options.n) task = { ...task, examples: task.examples.slice(0, options.n) };
  if (task.examples.length === 0) throw new InputError(`the task "${spec}" has no examples`);
  return task;
}

/**
 * An eval set by name: `ioi`, `toxic`, `greater_than` name the model folder's own
 * `<name>.jsonl`; anything else is a JSONL path.
 */
export function evalSetPath(engine: Engine, name: string): string {
  if (/^[a-z_]+$/.test(name)) {
    const file = path.join(engine.folder, `${name}.jsonl`);
    if (!fs.existsSync(file)) throw new InputError(`the model folder has no ${name}.jsonl; pass a JSONL file instead`, engine.folder);
    return file;
  }
  return requireFile(name, 'task file');
}

/** A regular, readable file (not a directory, FIFO or device), or a clear error. */
export function requireFile(file: string, what: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new InputError(`${what} not found`, path.resolve(file));
  }
  if (!stat.isFile()) throw new InputError(`${what} is not a regular file`, path.resolve(file));
  return file;
}

/** A file of the loaded model's folder (e.g. its heldout.txt) used when the user named none. */
export function modelFile(engine: Engine, name: string, what: string): string {
  const file = path.join(engine.folder, name);
  if (!fs.existsSync(file)) throw new InputError(`no ${what} was given and the model folder has no ${name}; choose a file`);
  return file;
}

/**
 * The rows of a correction task that show the undesired behaviour: toxic.jsonl holds matched
 * controls too, so when rows carry a `context` field only `"context": "toxic"` rows count.
 */
export function undesiredRows(task: Task, source: string): TaskExample[] {
  const rows = task.examples.some((e) => e.meta.context !== undefined) ? task.examples.filter((e) => e.meta.context === 'toxic') : [...task.examples];
  if (rows.length === 0) throw new InputError('no undesired rows (rows with "context": "toxic", or any row without a context field)', source);
  return rows;
}

/**
 * A target written as text, which must be one token. As typed in the editor, "Mary" means the
 * word after a space, so the text is tried as written and then with a leading space.
 */
export function singleToken(engine: Engine, text: string, what: string): number {
  const tokenizer = engine.tokenizer;
  if (!tokenizer) throw new InputError(`this model has no tokenizer: give the ${what} as a token id`);
  try {
    return tokenizer.singleTokenId(text);
  } catch (err) {
    if (!text.startsWith(' ')) {
      try {
        return tokenizer.singleTokenId(` ${text}`);
      } catch {
        /* report the text as written */
      }
    }
    throw new InputError(`the ${what}: ${(err as Error).message}`);
  }
}
