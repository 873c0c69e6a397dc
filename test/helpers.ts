/** Paths to the shared fixtures and the skip rule for tests that need them. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..');

// Tests compile their graphs: the CLI's on-disk graph cache would otherwise fill the user's
// cache folder and let one run's graphs stand in for the next (graph-cache.test.ts sets its own).
process.env.CIRCUIT_LENS_CACHE_DIR ??= 'off';
export const SHARED = path.resolve(REPO, '..', 'shared');
export const EMBEDDED_MODEL = path.join(REPO, 'models', 'tiny-ioi-gpt2');

export const MODELS = [
  'random-tiny-gpt2',
  'random-tiny-llama',
  'random-tiny-opt',
  'random-tiny-neox',
  'random-tiny-gemma2',
  'random-tiny-qwen3',
  'tiny-ioi-gpt2',
  'stories260k',
] as const;

/** The reason a test that needs `../shared/<rel>` must skip, or false when it is there. */
export function missingShared(rel: string): string | false {
  return fs.existsSync(path.join(SHARED, rel)) ? false : `../shared/${rel} is not present next to the repository (third-party and fixture data live there)`;
}

export function sharedModel(name: string): string {
  return path.join(SHARED, 'models', name);
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** max |a − b| / max |b|, the references' relative measure. */
export function relativeError(ours: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (ours.length !== reference.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

export function maxAbsDiff(ours: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (ours.length !== reference.length) return Infinity;
  let diff = 0;
  for (let i = 0; i < reference.length; i++) diff = Math.max(diff, Math.abs(ours[i]! - reference[i]!));
  return diff;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `circuit-lens-${prefix}-`));
}

/**
 * Bundles the real engine worker (src/worker/worker.ts) for a test, inside the repository so
 * `require('onnxruntime-node')` resolves from node_modules. Returns its path.
 */
export function testWorkerPath(name: string): string {
  return path.join(REPO, '.cache', `${name}.js`);
}

export async function buildTestWorker(name: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = testWorkerPath(name);
  await esbuild.build({
    entryPoints: [path.join(REPO, 'src/worker/worker.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    external: ['onnxruntime-node'],
    logLevel: 'silent',
  });
  return outfile;
}

/**
 * Runs the CLI in this process with its stdout and stderr captured (restored afterwards, also
 * on a throw): `calls` get the CLI's `main`; returns their result and everything printed.
 */
export async function captureCli<T>(calls: (main: (argv: string[]) => Promise<number>) => Promise<T>): Promise<{ result: T; printed: string[] }> {
  const { main } = await import('../src/cli/main');
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  const capture = (s: string | Uint8Array) => (printed.push(String(s)), true);
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  try {
    return { result: await calls(main), printed };
  } finally {
    process.stdout.write = write;
    process.stderr.write = errWrite;
  }
}
