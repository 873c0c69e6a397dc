/**
 * ONNX Runtime sessions and execution-provider choice. `auto` tries CUDA, then WebGPU, then
 * the CPU, and every fallback is logged with its reason: a user who asked for a GPU must be
 * able to see why they did not get one.
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ExecutionProviderSetting } from './api';
import type { CompiledGraph } from './build';

export interface SessionOptions {
  readonly executionProvider: ExecutionProviderSetting;
  /** Intra-op threads; 0 lets ONNX Runtime decide. */
  readonly threads: number;
  readonly log: (message: string) => void;
  /** Prepack weights at session creation (default true; see `sessionConfig`). */
  readonly prepack?: boolean;
}

export interface OpenedSession {
  readonly session: ort.InferenceSession;
  readonly provider: string;
}

/**
 * ORT session config. With `prepack` off, MLAS packs each weight per call instead of keeping a
 * packed copy made at session creation. Measured on the GPT-2-small-sized model's cached
 * attribution graph, idle machine (README "Speed and memory at scale"): session creation 0.5 s
 * instead of 5.8 s, warm attribution 435–492 ms instead of 340–360 ms, the same peak RSS. So a
 * one-shot process (the CLI) turns it off and a long-lived one (the extension's worker) keeps it.
 */
function sessionConfig(options: SessionOptions): Record<string, string> {
  return options.prepack === false ? { disable_prepacking: '1' } : {};
}

/**
 * ORT's memory pattern is off. With it on, ORT plans each input shape's allocations on the first
 * run and serves later runs from one block of that plan's size, while the arena keeps what the
 * first run allocated: two copies of the activations' peak. Measured on the GPT-2-small-sized
 * model's attribution (README "Speed and memory at scale"): peak RSS 5,903 → 3,740 MiB at 2,048
 * tokens, 1,741 → 1,187 at 512, 978 → 810 at 128; no slower (292 vs 282 ms at 128 tokens and
 * 1,046 vs 1,149 at 512, within noise; 17.3 → 10.5 s at 2,048). The arena stays on: without it
 * a 2,048-token attribution took 96 s instead of 17 on its first run.
 */
const MEM_PATTERN = false;

/**
 * ORT's constant folding is off for compiled graphs. With it on, every `Transpose` of a weight
 * (the backward pass's g·Wᵀ, ops.ts `linear`; the forward's x·Wᵀ for nn.Linear layouts,
 * build.ts `linearParams`) and every fused-projection `Slice` is folded into a new initializer:
 * a second copy of nearly all weights (the GPT-2-small-sized attribution graph held 1,093 MiB
 * of initializers for 475 MiB of weights). With it off, ORT's level-2 MatMul–Transpose fusion
 * turns each MatMul(x, Transpose(W)) into FusedMatMul(x, W, transB=1), which reads W in place,
 * and the slices run per call (a few MiB). Measured (README "Speed and memory at scale"): the
 * outputs are bit-identical, and the initializers are the weights once.
 */
const OPTIMIZATION = { disable_specified_optimizers: 'ConstantFolding' };

/**
 * The folder ORT should read the graph's external data from, when every weight file sits in
 * one real folder: ORT then maps the safetensors files itself and JavaScript never reads them
 * (one copy of the weights instead of two). null: hand ORT buffers instead.
 */
function externalFolder(graph: CompiledGraph): string | null {
  if (graph.externalData.length === 0) return null;
  const folders = new Set(graph.externalData.map((e) => path.dirname(e.source.realPath)));
  return folders.size === 1 ? [...folders][0]! : null;
}

/**
 * Where the weights come from: `session.model_external_initializers_file_folder_path` (ORT
 * resolves each initializer's `location` in that folder and maps the file) or in-memory
 * buffers, which ORT copies. The finite-weight checks (models/load.ts) run on the file first,
 * in chunks, since the whole-file read that used to run them is gone.
 */
function weightSource(graph: CompiledGraph, useFile: boolean): { externalData?: CompiledGraph['externalData']; session: Record<string, string> } {
  const folder = useFile ? externalFolder(graph) : null;
  if (folder === null) return graph.externalData.length > 0 ? { externalData: graph.externalData, session: {} } : { session: {} };
  for (const e of graph.externalData) e.source.verifyFinite();
  return { session: { model_external_initializers_file_folder_path: folder } };
}

const ORDER: Record<ExecutionProviderSetting, string[]> = {
  auto: ['cuda', 'webgpu', 'cpu'],
  cuda: ['cuda', 'cpu'],
  webgpu: ['webgpu', 'cpu'],
  cpu: ['cpu'],
};

/** Where ORT should write the optimised model while it creates the session (cache.ts). */
export interface SaveOptimized {
  readonly modelPath: string;
  readonly sessionConfig: Record<string, string>;
}

/** Fallback lines already logged in this process. */
const saidFallbacks = new Set<string>();

export async function openSession(graph: CompiledGraph, options: SessionOptions, save?: SaveOptimized): Promise<OpenedSession> {
  const supported = new Set(ort.listSupportedBackends().map((b) => b.name));
  const failures: string[] = [];
  for (const provider of ORDER[options.executionProvider]) {
    if (provider !== 'cpu' && !supported.has(provider)) {
      failures.push(`${provider}: not in this onnxruntime-node build`);
      continue;
    }
    try {
      const create = (useFile: boolean) => {
        const source = weightSource(graph, useFile);
        return ort.InferenceSession.create(graph.model, {
          executionProviders: [provider],
          graphOptimizationLevel: 'all',
          ...(source.externalData ? { externalData: source.externalData } : {}),
          ...(options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
          interOpNumThreads: 1,
          enableMemPattern: MEM_PATTERN,
          // Saved only on the CPU: other providers' optimised graphs are not portable (cache.ts).
          ...(save && provider === 'cpu'
            ? {
                optimizedModelFilePath: save.modelPath,
                extra: { session: { ...sessionConfig(options), ...source.session, ...stripPrefix(save.sessionConfig, 'session.') }, optimization: OPTIMIZATION },
                logSeverityLevel: 3 as const,
              }
            : { extra: { session: { ...sessionConfig(options), ...source.session }, optimization: OPTIMIZATION } }),
        });
      };
      let session: ort.InferenceSession;
      try {
        session = await create(true);
      } catch (err) {
        // ORT refuses some external-data locations (a path it considers outside the folder);
        // buffers always work, at the price of a second copy of the weights.
        if (externalFolder(graph) === null || !/external data/i.test((err as Error).message)) throw err;
        options.log(`weights: ONNX Runtime could not map the safetensors files (${(err as Error).message.split('\n')[0]}); passing them as buffers (one more copy of the weights in memory)`);
        session = await create(false);
      }
      if (failures.length > 0 && options.executionProvider !== 'cpu') {
        // Said once per process: every session of a pruning curve would repeat it (100 lines a run).
        const line = `execution provider: using ${provider}; fell back because ${failures.join('; ')}`;
        if (!saidFallbacks.has(line)) options.log(line);
        saidFallbacks.add(line);
      }
      return { session, provider };
    } catch (err) {
      if (provider === 'cpu') throw err;
      failures.push(`${provider}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no execution provider could run the graph (${failures.join('; ')})`);
}

/**
 * A session from a cached optimised model (cache.ts) on the CPU. Optimisation is off: the file
 * already holds ORT's optimised graph (fused MatMuls, the weights once).
 */
export async function openCachedSession(modelPath: string, options: SessionOptions): Promise<OpenedSession> {
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'disabled',
    enableMemPattern: MEM_PATTERN,
    extra: { session: sessionConfig(options) },
    ...(options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
    interOpNumThreads: 1,
  });
  return { session, provider: 'cpu' };
}

function stripPrefix(entries: Record<string, string>, prefix: string): Record<string, string> {
  return Object.fromEntries(Object.entries(entries).map(([k, v]) => [k.startsWith(prefix) ? k.slice(prefix.length) : k, v]));
}

export { ort };

/** The ONNX Runtime build in use (part of the graph cache key). */
export const ORT_VERSION: string = ort.env.versions.node ?? ort.env.versions.common;
