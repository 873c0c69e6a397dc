/**
 * ONNX Runtime sessions and execution-provider choice. `auto` tries CUDA, then WebGPU, then
 * the CPU, and every fallback is logged with its reason: a user who asked for a GPU must be
 * able to see why they did not get one.
 */
import * as ort from 'onnxruntime-node';
import type { ExecutionProviderSetting } from './api';
import type { CompiledGraph } from './build';

export interface SessionOptions {
  readonly executionProvider: ExecutionProviderSetting;
  /** Intra-op threads; 0 lets ONNX Runtime decide. */
  readonly threads: number;
  readonly log: (message: string) => void;
}

export interface OpenedSession {
  readonly session: ort.InferenceSession;
  readonly provider: string;
}

const ORDER: Record<ExecutionProviderSetting, string[]> = {
  auto: ['cuda', 'webgpu', 'cpu'],
  cuda: ['cuda', 'cpu'],
  webgpu: ['webgpu', 'cpu'],
  cpu: ['cpu'],
};

export async function openSession(graph: CompiledGraph, options: SessionOptions): Promise<OpenedSession> {
  const supported = new Set(ort.listSupportedBackends().map((b) => b.name));
  const failures: string[] = [];
  for (const provider of ORDER[options.executionProvider]) {
    if (provider !== 'cpu' && !supported.has(provider)) {
      failures.push(`${provider}: not in this onnxruntime-node build`);
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(graph.model, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        externalData: graph.externalData,
        ...(options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
        interOpNumThreads: 1,
      });
      if (failures.length > 0 && options.executionProvider !== 'cpu') {
        options.log(`execution provider: using ${provider}; fell back because ${failures.join('; ')}`);
      }
      return { session, provider };
    } catch (err) {
      if (provider === 'cpu') throw err;
      failures.push(`${provider}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no execution provider could run the graph (${failures.join('; ')})`);
}

export { ort };
