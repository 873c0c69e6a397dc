/**
 * Writes a pruned or corrected model as a Hugging Face folder: config.json and the tokenizer
 * files copied from the source, `model.safetensors` with every tensor of the source (replaced
 * ones zeroed as pruned), and `pruning.json` saying what was removed and why.
 *
 * Safety:
 * - the source folder is never written: a destination that resolves to the source, or lies
 *   inside it, is refused;
 * - atomic: everything is written into a hidden temporary folder next to the destination, each
 *   file fsynced, then the folder is renamed into place. A process killed during export leaves
 *   no destination folder (at most a `.<name>.partial-<pid>-…` folder, removed by the next export
 *   to the same destination once its process is gone);
 * - an existing destination is refused unless `overwrite` (then it is swapped out only after the
 *   new folder is complete).
 * `model.onnx` is not copied: it would hold the dense weights.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../../engine/engine';
import { InputError } from '../../models/errors';
import { encodeSafetensors } from '../../models/safetensors';
import { writeSynced } from '../files';

/** Files copied as they are when present in the source folder. */
export const COPIED_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'added_tokens.json',
] as const;

/** Test hook: pause this many ms after the first file is written (only read when set). */
export const EXPORT_PAUSE_ENV = 'CIRCUIT_LENS_TEST_EXPORT_PAUSE_MS';

export interface ExportOptions {
  readonly overwrite?: boolean;
  /** Free-form description written to pruning.json (method, counts, metrics, …). */
  readonly pruning: Record<string, unknown>;
}

export interface ExportResult {
  readonly folder: string;
  readonly files: string[];
  readonly replacedTensors: string[];
  readonly zeroedWeights: number;
}

function realOrResolved(p: string): string {
  const resolved = path.resolve(p);
  try {
    return fs.realpathSync(resolved);
  } catch {
    // The destination usually does not exist yet: resolve its parent instead.
    const parent = path.dirname(resolved);
    try {
      return path.join(fs.realpathSync(parent), path.basename(resolved));
    } catch {
      return resolved;
    }
  }
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Directory fsync is not supported everywhere (Windows); the rename is still atomic.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes leftovers of earlier exports to `dest` whose process is gone. */
function cleanStalePartials(dest: string): void {
  const parent = path.dirname(dest);
  const prefix = `.${path.basename(dest)}.partial-`;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of entries) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function partialFolderName(dest: string): string {
  return `.${path.basename(dest)}.partial-${process.pid}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * Checks a destination before any work is done (the CLI calls it before pruning): not the
 * source folder or inside it, not a folder containing the source, parent exists, and not
 * existing unless `overwrite`. Returns the resolved paths.
 */
export function checkExportDestination(engine: Engine, destination: string, overwrite: boolean): { source: string; dest: string } {
  const source = realOrResolved(engine.folder);
  const dest = realOrResolved(destination);
  if (isInside(dest, source)) throw new InputError(`refusing to export into the source model folder (${source})`, destination);
  if (isInside(source, dest)) throw new InputError('refusing to export to a folder that contains the source model folder', destination);
  const parent = path.dirname(dest);
  if (!fs.existsSync(parent)) throw new InputError('the parent folder of the destination does not exist', parent);
  if (fs.existsSync(dest) && !overwrite) throw new InputError('the destination already exists (pass --overwrite to replace it)', dest);
  return { source, dest };
}

/**
 * Exports `engine`'s model with `replacements` (tensor name → new values, e.g. from `prune`)
 * applied on top of its weights.
 */
export async function exportModel(engine: Engine, replacements: ReadonlyMap<string, Float32Array>, destination: string, options: ExportOptions): Promise<ExportResult> {
  const { source, dest } = checkExportDestination(engine, destination, !!options.overwrite);
  const parent = path.dirname(dest);
  cleanStalePartials(dest);

  const weights = engine.loaded.weights;
  const names = weights.names();
  for (const name of replacements.keys()) if (!weights.has(name)) throw new InputError(`replacement for unknown tensor "${name}"`);
  const tensors: { name: string; shape: readonly number[]; data: Float32Array }[] = [];
  let zeroed = 0;
  for (const name of names) {
    const info = weights.info(name);
    const data = replacements.get(name) ?? weights.readFloat32(name);
    const size = info.shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new InputError(`replacement for "${name}" has ${data.length} values, the tensor has ${size}`);
    if (replacements.has(name)) {
      const original = weights.readFloat32(name);
      for (let i = 0; i < data.length; i++) if (data[i] === 0 && original[i] !== 0) zeroed++;
    }
    tensors.push({ name, shape: info.shape, data });
  }

  const tmp = path.join(parent, partialFolderName(dest));
  fs.mkdirSync(tmp);
  const pause = Number(process.env[EXPORT_PAUSE_ENV] ?? 0);
  const files: string[] = [];
  try {
    for (const file of COPIED_FILES) {
      const from = path.join(source, file);
      if (!fs.existsSync(from)) continue;
      writeSynced(path.join(tmp, file), fs.readFileSync(from));
      files.push(file);
      if (pause > 0 && files.length === 1) sleepSync(pause);
    }
    writeSynced(path.join(tmp, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
    files.push('model.safetensors');
    const pruningJson = {
      tool: 'circuit-lens',
      created: new Date().toISOString(),
      source_model: source,
      replaced_tensors: [...replacements.keys()],
      zeroed_weights: zeroed,
      note: 'Pruned weights are stored as zeros; shapes are unchanged. model.onnx of the source (dense weights) is not copied.',
      ...options.pruning,
    };
    writeSynced(path.join(tmp, 'pruning.json'), JSON.stringify(pruningJson, null, 2) + '\n');
    files.push('pruning.json');
    fsyncDir(tmp);
    if (fs.existsSync(dest)) {
      const old = path.join(parent, `.${path.basename(dest)}.partial-${process.pid}-old${Date.now().toString(36)}`);
      fs.renameSync(dest, old);
      fs.renameSync(tmp, dest);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, dest);
    }
    fsyncDir(parent);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { folder: dest, files, replacedTensors: [...replacements.keys()], zeroedWeights: zeroed };
}
