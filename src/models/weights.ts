/**
 * The weights of one model: a single `model.safetensors` or a sharded set described by
 * `model.safetensors.index.json`. Shapes are checked against the architecture spec.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from './errors';
import { SafetensorsFile, FLOAT_DTYPES, type TensorInfo } from './safetensors';

export class ModelWeights {
  private constructor(
    readonly files: readonly SafetensorsFile[],
    private readonly index: ReadonlyMap<string, SafetensorsFile>,
    /** Replaced tensors (pruned or corrected weights), same shapes as in the files. */
    private readonly overrides: ReadonlyMap<string, Float32Array> = new Map(),
  ) {}

  /** The same weights with some tensors replaced; the files are never touched. */
  withOverrides(replacements: ReadonlyMap<string, Float32Array>): ModelWeights {
    for (const [name, data] of replacements) {
      const size = this.info(name).shape.reduce((a, b) => a * b, 1);
      if (data.length !== size) throw new Error(`override of "${name}" has ${data.length} values, the tensor has ${size}`);
    }
    return new ModelWeights(this.files, this.index, new Map([...this.overrides, ...replacements]));
  }

  isOverridden(name: string): boolean {
    return this.overrides.has(name);
  }

  static open(folder: string): ModelWeights {
    const single = path.join(folder, 'model.safetensors');
    const indexPath = path.join(folder, 'model.safetensors.index.json');
    if (fs.existsSync(single)) {
      const file = SafetensorsFile.open(single);
      return new ModelWeights([file], new Map([...file.tensors.keys()].map((n) => [n, file])));
    }
    if (fs.existsSync(indexPath)) return ModelWeights.openSharded(folder, indexPath);
    if (fs.existsSync(path.join(folder, 'pytorch_model.bin'))) {
      throw new InputError('only pytorch_model.bin found; Circuit Lens reads safetensors (pickle files can execute code, so they are never opened)', folder);
    }
    throw new InputError('no model.safetensors or model.safetensors.index.json in the folder', folder);
  }

  private static openSharded(folder: string, indexPath: string): ModelWeights {
    let weightMap: Record<string, unknown>;
    try {
      weightMap = (JSON.parse(fs.readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, unknown> }).weight_map;
    } catch (err) {
      throw new InputError(`not a valid index (${(err as Error).message})`, indexPath);
    }
    if (typeof weightMap !== 'object' || weightMap === null) throw new InputError('"weight_map" is missing', indexPath);
    const shards = new Map<string, SafetensorsFile>();
    const index = new Map<string, SafetensorsFile>();
    for (const [tensor, shard] of Object.entries(weightMap)) {
      // Shard names come from a downloaded file: never let them point outside the folder.
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
        throw new InputError(`shard name ${JSON.stringify(shard)} for "${tensor}" is not a plain file name`, indexPath);
      }
      let file = shards.get(shard);
      if (!file) {
        file = SafetensorsFile.open(path.join(folder, shard));
        shards.set(shard, file);
      }
      if (!file.tensors.has(tensor)) throw new InputError(`tensor "${tensor}" is listed in the index but missing`, file.path);
      index.set(tensor, file);
    }
    return new ModelWeights([...shards.values()], index);
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  info(name: string): TensorInfo {
    const file = this.index.get(name);
    if (!file) throw new InputError(`tensor "${name}" is missing from the weights`, this.files[0]?.path);
    return file.get(name);
  }

  file(name: string): SafetensorsFile {
    const file = this.index.get(name);
    if (!file) throw new InputError(`tensor "${name}" is missing from the weights`, this.files[0]?.path);
    return file;
  }

  readFloat32(name: string): Float32Array {
    const replaced = this.overrides.get(name);
    if (replaced) return replaced;
    return this.file(name).readFloat32(name);
  }

  names(): string[] {
    return [...this.index.keys()];
  }

  /** Checks every tensor the spec needs exists, is a float, and has the expected shape (−1 = any). */
  checkShapes(expected: ReadonlyMap<string, readonly number[]>): void {
    for (const [name, shape] of expected) {
      const info = this.info(name);
      if (!FLOAT_DTYPES.includes(info.dtype)) {
        throw new InputError(`tensor "${name}" has dtype ${info.dtype}; weights must be F32, F16 or BF16`, info.file);
      }
      const ok = info.shape.length === shape.length && shape.every((d, i) => d === -1 || d === info.shape[i]);
      if (!ok) {
        throw new InputError(`tensor "${name}" has shape [${info.shape.join(', ')}] but config.json implies [${shape.map((d) => (d === -1 ? '?' : d)).join(', ')}]`, info.file);
      }
    }
  }

  /**
   * The named tensors must hold only finite values; checked when their file's data is first
   * read (graph compile, conversion), so opening a model still reads headers only.
   */
  requireFinite(names: Iterable<string>): void {
    for (const name of names) this.file(name).requireFinite(name);
  }

  /** The dominant dtype, for `info`. */
  dtype(): string {
    const counts = new Map<string, number>();
    for (const name of this.index.keys()) {
      const d = this.info(name).dtype;
      counts.set(d, (counts.get(d) ?? 0) + 1);
    }
    return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'F32';
  }
}
