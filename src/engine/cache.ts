/**
 * On-disk cache of compiled, ONNX-Runtime-optimised graphs, so that a fresh process (the CLI,
 * the editor's first click) skips graph compilation, the safetensors read and ORT's graph
 * optimisation.
 *
 * An entry is ORT's own optimised model (`optimizedModelFilePath`) with its initializers in an
 * external file next to it (the weights once: constant folding is off, session.ts), so a hit
 * is opened with optimisation disabled, and ORT maps that file (README "Speed and memory").
 *
 * Key: the model's content hash (every weight file and config.json, SHA-256), the graph options,
 * the engine's code (hash of the compiler sources, or of the bundle that holds them), the ONNX
 * Runtime version and the CPU model (ORT's level-"all" optimisations are hardware specific).
 * Content hashes are memoised per file by (path, size, mtime, inode), so a model is hashed once
 * per version of its files, not on every start.
 *
 * Entries are written to a temporary folder and renamed into place, so a crash never leaves a
 * half-written entry that looks complete. Least-recently-used entries are evicted past the
 * size cap.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../models/errors';

export const DEFAULT_CACHE_MAX_BYTES = 16 * 1024 ** 3;
const GRAPH_FILE = 'graph.onnx';
const DATA_FILE = 'graph.bin';
const META_FILE = 'meta.json';
const FINGERPRINTS = 'fingerprints.json';

/**
 * The cache folder for a CLI run: `--cache-dir`, else $CIRCUIT_LENS_CACHE_DIR, else
 * $XDG_CACHE_HOME/circuit-lens, else ~/.cache/circuit-lens. `off` (or `none`) disables it.
 */
export function resolveCacheDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const chosen = flag ?? env.CIRCUIT_LENS_CACHE_DIR;
  if (chosen !== undefined) {
    if (chosen === 'off' || chosen === 'none') return null;
    if (chosen.trim() === '') throw new InputError('the cache folder is empty (give a folder, or "off")');
    return path.resolve(chosen);
  }
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'circuit-lens');
}

/** The size cap from $CIRCUIT_LENS_CACHE_MAX_GB (decimal GB accepted), else 16 GiB. */
export function resolveCacheMaxBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CIRCUIT_LENS_CACHE_MAX_GB;
  if (raw === undefined || raw === '') return DEFAULT_CACHE_MAX_BYTES;
  const gb = Number(raw);
  if (!Number.isFinite(gb) || gb < 0) throw new InputError(`CIRCUIT_LENS_CACHE_MAX_GB must be a non-negative number, got "${raw}"`);
  return Math.round(gb * 1024 ** 3);
}

export interface CacheEntry {
  readonly key: string;
  readonly dir: string;
  readonly bytes: number;
  readonly lastUsed: number;
  readonly meta: Record<string, unknown>;
}

/** A pending write: ORT saves the optimised model at `modelPath`; then `commit` or `abort`. */
export interface CacheWrite {
  readonly modelPath: string;
  /** ORT session config entries that put the initializers in one external file. */
  readonly sessionConfig: Record<string, string>;
  commit(): void;
  abort(): void;
}

let codeHash: string | undefined;

/**
 * A hash of the graph compiler's code. From sources (src/engine, src/models) when they sit next
 * to this module; in a bundle (dist/*.js) the bundle file itself holds them.
 */
export function engineCodeHash(): string {
  if (codeHash) return codeHash;
  const hash = crypto.createHash('sha256');
  const here = __dirname;
  const sources = path.join(here, 'build.ts');
  const files = fs.existsSync(sources)
    ? ['engine', 'models'].flatMap((d) => {
        const dir = path.join(here, '..', d);
        return fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).sort().map((f) => path.join(dir, f));
      })
    : [__filename];
  for (const file of files) {
    hash.update(path.basename(file));
    hash.update(fs.readFileSync(file));
  }
  codeHash = hash.digest('hex').slice(0, 16);
  return codeHash;
}

export class GraphCache {
  constructor(
    readonly dir: string,
    readonly maxBytes: number = DEFAULT_CACHE_MAX_BYTES,
  ) {}

  /**
   * SHA-256 of the files' contents (read in 8 MiB chunks, never held whole), memoised in the
   * cache folder by path, size, mtime and inode.
   */
  contentHash(files: readonly string[]): string {
    const memo = this.readFingerprints();
    const hash = crypto.createHash('sha256');
    let changed = false;
    for (const file of files) {
      const real = fs.realpathSync(file);
      const st = fs.statSync(real);
      const id = `${real}|${st.size}|${st.mtimeMs}|${st.ino}`;
      let digest = memo[id];
      if (!digest) {
        digest = hashFile(real);
        memo[id] = digest;
        changed = true;
      }
      hash.update(`${path.basename(file)}:${digest}\n`);
    }
    if (changed) this.writeJsonAtomic(path.join(this.dir, FINGERPRINTS), memo);
    return hash.digest('hex');
  }

  key(parts: Record<string, unknown>): string {
    return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
  }

  /** The optimised model of `key`, if a complete entry exists (and marks it used). */
  lookup(key: string): string | null {
    const dir = path.join(this.dir, 'graphs', key);
    if (!fs.existsSync(path.join(dir, META_FILE))) return null;
    const now = new Date();
    try {
      fs.utimesSync(path.join(dir, META_FILE), now, now);
    } catch {
      // A read-only cache still serves hits; only its LRU order goes stale.
    }
    return path.join(dir, GRAPH_FILE);
  }

  /** Drops one entry (e.g. one ORT could not open). */
  remove(key: string): void {
    fs.rmSync(path.join(this.dir, 'graphs', key), { recursive: true, force: true });
  }

  begin(key: string, meta: Record<string, unknown>): CacheWrite {
    const graphs = path.join(this.dir, 'graphs');
    fs.mkdirSync(graphs, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(graphs, `.tmp-${key}-`));
    return {
      modelPath: path.join(tmp, GRAPH_FILE),
      sessionConfig: {
        'session.optimized_model_external_initializers_file_name': DATA_FILE,
        // Everything but scalars goes to the data file: the .onnx stays small and parses fast.
        'session.optimized_model_external_initializers_min_size_in_bytes': '1024',
      },
      commit: () => {
        const bytes = folderBytes(tmp);
        if (bytes > this.maxBytes) {
          fs.rmSync(tmp, { recursive: true, force: true });
          return;
        }
        fs.writeFileSync(path.join(tmp, META_FILE), JSON.stringify({ ...meta, bytes, created: new Date().toISOString() }, null, 2));
        const final = path.join(graphs, key);
        fs.rmSync(final, { recursive: true, force: true });
        try {
          fs.renameSync(tmp, final);
        } catch {
          // Another process committed the same key first: theirs is as good.
          fs.rmSync(tmp, { recursive: true, force: true });
        }
        this.evict(key);
      },
      abort: () => fs.rmSync(tmp, { recursive: true, force: true }),
    };
  }

  entries(): CacheEntry[] {
    const graphs = path.join(this.dir, 'graphs');
    if (!fs.existsSync(graphs)) return [];
    const out: CacheEntry[] = [];
    for (const name of fs.readdirSync(graphs)) {
      const dir = path.join(graphs, name);
      const metaPath = path.join(dir, META_FILE);
      if (name.startsWith('.') || !fs.existsSync(metaPath)) continue;
      let meta: Record<string, unknown> = {};
      try {
        meta = JSON.parse(fs.readFileSync(metaPath, 'utf8')) as Record<string, unknown>;
      } catch {
        // A damaged meta file still counts towards the size; it is evicted like any other.
      }
      out.push({ key: name, dir, bytes: folderBytes(dir), lastUsed: fs.statSync(metaPath).mtimeMs, meta });
    }
    return out;
  }

  /** Removes least-recently-used entries until the cache fits its cap (`keep` is spared). */
  evict(keep?: string): void {
    const entries = this.entries().sort((a, b) => a.lastUsed - b.lastUsed);
    let total = entries.reduce((s, e) => s + e.bytes, 0);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (e.key === keep) continue;
      fs.rmSync(e.dir, { recursive: true, force: true });
      total -= e.bytes;
    }
  }

  /** Deletes every entry, stale temporary folder and fingerprint; returns what was freed. */
  clear(): { entries: number; bytes: number } {
    const graphs = path.join(this.dir, 'graphs');
    const entries = this.entries().length;
    const bytes = fs.existsSync(this.dir) ? folderBytes(this.dir) : 0;
    fs.rmSync(graphs, { recursive: true, force: true });
    fs.rmSync(path.join(this.dir, FINGERPRINTS), { force: true });
    return { entries, bytes };
  }

  private readFingerprints(): Record<string, string> {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir, FINGERPRINTS), 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  private writeJsonAtomic(file: string, value: unknown): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(value));
    fs.renameSync(tmp, file);
  }
}

function hashFile(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(8 * 1024 * 1024);
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(p) : fs.statSync(p).size;
  }
  return total;
}
