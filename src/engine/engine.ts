/**
 * The engine: one loaded model, its compiled graphs and ONNX Runtime sessions. Everything
 * that crosses its surface is plain data (api.ts), so the extension can run it in a worker
 * thread and the CLI in-process.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../models/errors';
import { loadModelFolder, parameterCount, type LoadedModel } from '../models/load';
import type { ArchSpec } from '../models/spec';
import type { ModelTokenizer } from '../models/tokenizer';
import type {
  Attribution,
  AttributeRequest,
  Composite,
  EdgeAttribution,
  EdgeRelevance,
  ForwardRequest,
  ForwardRow,
  Interventions,
  ModelInfo,
  SequenceAttributeRequest,
  Target,
} from './api';
import { compileGraph, OUT, type GraphOptions } from './build';
import { checkMemory, estimateModelBytes, estimateRunBytes, type MemoryPolicy } from './memory';
import { engineCodeHash, GraphCache, resolveCacheMaxBytes } from './cache';
import { openCachedSession, openSession, ort, ORT_VERSION, type OpenedSession } from './session';
import { COMPOSITES, type ExecutionProviderSetting, type WeightPrecision } from '../vocabulary';
import { reportsProbs } from './rules';


/** A downstream node of the edge graph. */
interface EdgeTarget {
  readonly id: string;
  readonly layer: number;
  readonly kind: 'head' | 'mlp' | 'logits';
  readonly head?: number;
}

/** Gated edge attribution (`edgesGated`) runs at most this many backward rows per session run. */
const EDGE_ROWS_PER_RUN = 32;
/** Integrated gradients: default number of midpoint steps, and batch rows per session run. */
export const IG_STEPS = 16;
const IG_ROWS_PER_RUN = 72;

export interface IntegratedGradientsRequest {
  readonly ids: readonly (readonly number[])[];
  readonly targets: readonly Target[];
  /** Midpoint steps m (default IG_STEPS). */
  readonly steps?: number;
  /** `'zero'` (default) or one baseline prompt per prompt, of the same length. */
  readonly baseline?: 'zero' | readonly (readonly number[])[];
}

/** One prompt's integrated gradients (Engine.integratedGradients). */
export interface IntegratedGradients {
  /** IG per token (Σ over the embedding dimension). */
  readonly tokenRelevance: Float32Array;
  /** f(x): the explained value of the unscaled prompt. */
  readonly targetValue: number;
  /** f(x'): the explained value at the baseline (positions kept). */
  readonly baselineValue: number;
  /** The α = 1 row's gradient × (x − x′): plain gradient × input for the zero baseline. */
  readonly gradientTimesInput: Float32Array;
}

export interface EngineOptions {
  readonly executionProvider?: ExecutionProviderSetting;
  readonly threads?: number;
  readonly log?: (message: string) => void;
  /** When to refuse a model or a run for its estimated memory (memory.ts). */
  readonly memory?: MemoryPolicy;
  /**
   * Folder of the compiled-graph cache (cache.ts): the CLI's cache dir, the extension's global
   * storage. null or absent: no cache (unless $CIRCUIT_LENS_CACHE_DIR names one).
   */
  readonly cacheDir?: string | null;
  /** Prepack weights when a session is created (session.ts): true for long-lived engines. */
  readonly prepack?: boolean;
  /** How weight matrices are stored (vocabulary.ts `WEIGHT_PRECISION_DOCS`; default auto). */
  readonly weightPrecision?: WeightPrecision;
}

export class Engine {
  private readonly sessions = new Map<string, Promise<OpenedSession>>();
  private provider = 'cpu';

  /**
   * Whether weight matrices are kept in half precision, decided once per engine. `auto`: where
   * the files are F16/BF16 and the provider asked for is a GPU one this build has (cuda/webgpu,
   * or auto with either present); the CPU stays float32, which measured faster there (README
   * "Half precision").
   */
  readonly halfWeights: boolean;

  private constructor(
    private readonly model: LoadedModel,
    private readonly options: Required<EngineOptions>,
  ) {
    this.halfWeights = keepsHalfWeights(options, model.weights.dtype());
  }

  static async load(folder: string, options: EngineOptions = {}): Promise<Engine> {
    const memory = options.memory ?? { share: 0.8 };
    const model = loadModelFolder(folder, (parameters) =>
      checkMemory(estimateModelBytes(parameters), 'loading this model', memory, 'use a machine with more memory or a GPU (VS Code Remote puts the engine next to it), or a smaller model'),
    );
    const envDir = process.env.CIRCUIT_LENS_CACHE_DIR;
    const cacheDir = options.cacheDir !== undefined ? options.cacheDir : envDir && envDir !== 'off' && envDir !== 'none' ? path.resolve(envDir) : null;
    return new Engine(model, {
      executionProvider: options.executionProvider ?? 'cpu',
      threads: options.threads ?? 0,
      log: options.log ?? (() => undefined),
      memory,
      cacheDir,
      prepack: options.prepack ?? true,
      weightPrecision: options.weightPrecision ?? 'auto',
    });
  }

  /** Refuses a run whose activations would not fit (before anything is allocated). */
  private checkRunMemory(ids: readonly (readonly number[])[], attribution: boolean): void {
    const tokens = Math.max(...ids.map((row) => row.length));
    checkMemory(
      estimateRunBytes(this.spec, ids.length, tokens, attribution),
      `${attribution ? 'attributing' : 'running'} ${ids.length} prompt${ids.length === 1 ? '' : 's'} of up to ${tokens} tokens`,
      this.options.memory,
      'use a smaller batch or shorter prompts, or a GPU execution provider',
    );
  }

  get spec(): ArchSpec {
    return this.model.spec;
  }

  get folder(): string {
    return this.model.folder;
  }

  get tokenizer(): ModelTokenizer | null {
    return this.model.tokenizer;
  }

  /**
   * The same model with some weights replaced (pruning, correction). Shares the tokenizer and
   * files; compiles its own graphs.
   */
  withWeights(replacements: ReadonlyMap<string, Float32Array>): Engine {
    const weights = this.model.weights.withOverrides(replacements);
    return new Engine({ ...this.model, weights }, this.options);
  }

  /**
   * Σ over tokens of x² for the input of each named linear weight, per row (Wanda's ‖X_i‖₂²
   * before the square root), from one forward pass.
   */
  async inputSquares(ids: readonly (readonly number[])[], weights: readonly string[]): Promise<Float32Array[][]> {
    this.checkIds(ids);
    const options: GraphOptions = { composite: null, interventions: false, hooks: false, weightRelevance: [], inputNorms: weights };
    const { session } = await this.session(options);
    const { feeds } = this.inputFeeds(ids);
    const out = await session.run(feeds);
    return ids.map((_, b) =>
      weights.map((__, i) => {
        const t = out[OUT.inputSquares(i)]!;
        const size = t.dims[1]!;
        return (t.data as Float32Array).slice(b * size, (b + 1) * size);
      }),
    );
  }

  /** Raw access for pruning and export. */
  get loaded(): LoadedModel {
    return this.model;
  }

  info(): ModelInfo {
    const { spec } = this.model;
    return {
      folder: this.model.folder,
      architecture: spec.family,
      modelType: spec.modelType,
      layers: spec.nLayers,
      heads: spec.nHeads,
      kvHeads: spec.nKvHeads,
      dModel: spec.dModel,
      headDim: spec.headDim,
      dMlp: spec.dMlp,
      vocab: spec.vocabSize,
      maxPositions: spec.maxPositions,
      parameters: parameterCount(this.model.weights),
      // The files' dtype, and how the graph keeps the matrices when that differs from float32.
      dtype: `${this.model.weights.dtype()}${this.halfWeights ? ' (matrices kept half)' : ''}`,
      executionProvider: this.provider,
    };
  }

  /** Encodes a prompt with the model's tokenizer (no special tokens), checking it fits. */
  encode(text: string): { ids: number[]; offsets: [number, number][] } {
    if (!this.model.tokenizer) throw new InputError('this model folder has no tokenizer.json; pass token ids instead', this.model.folder);
    if (text.length === 0) throw new InputError('the prompt is empty');
    // Checked before offsets are computed, so a 100 000-character prompt is refused at once.
    return this.model.tokenizer.encode(text, (ids) => this.checkIds([ids]));
  }

  async forward(request: ForwardRequest): Promise<ForwardRow[]> {
    this.checkIds(request.ids);
    this.checkRunMemory(request.ids, false);
    const options: GraphOptions = { composite: null, interventions: !!request.interventions, hooks: !!request.hooks, weightRelevance: [] };
    const { session } = await this.session(options);
    const { feeds, lengths, T } = this.inputFeeds(request.ids);
    if (request.interventions) Object.assign(feeds, this.interventionFeeds(request.interventions, request.ids.length, T));
    const out = await session.run(feeds);
    const V = this.spec.vocabSize;
    const logits = out[OUT.logits]!.data as Float32Array;
    return lengths.map((len, b) => {
      const rowStart = b * T * V;
      const row: { -readonly [K in keyof ForwardRow]: ForwardRow[K] } = {
        logitsLast: logits.slice(rowStart + (len - 1) * V, rowStart + len * V),
      };
      if (request.allLogits) row.logits = logits.slice(rowStart, rowStart + len * V);
      if (request.hooks) {
        const { nHeads: H, headDim: dh, dMlp: F, nLayers: L } = this.spec;
        row.headZ = Array.from({ length: L }, (_, l) => (out[OUT.hookZ(l)]!.data as Float32Array).slice(b * T * H * dh, (b * T + len) * H * dh));
        row.mlpPost = Array.from({ length: L }, (_, l) => (out[OUT.hookPost(l)]!.data as Float32Array).slice(b * T * F, (b * T + len) * F));
      }
      return row;
    });
  }

  async attribute(request: AttributeRequest): Promise<Attribution[]> {
    this.checkIds(request.ids);
    this.checkRunMemory(request.ids, true);
    if (!COMPOSITES.includes(request.mode)) throw new InputError(`unknown mode "${String(request.mode)}" (use ${COMPOSITES.join(', ')})`);
    if (request.targets.length !== request.ids.length) throw new InputError(`${request.ids.length} prompts but ${request.targets.length} targets`);
    request.targets.forEach((t, i) => this.checkTarget(t, request.ids[i]!.length));
    const weightNames = [...(request.weights ?? [])];
    const options: GraphOptions = { composite: request.mode, interventions: !!request.interventions, hooks: false, weightRelevance: weightNames, ...(request.rules ? { rules: request.rules } : {}) };
    const { session } = await this.session(options);
    const { feeds, lengths, T } = this.inputFeeds(request.ids);
    const B = request.ids.length;
    const V = this.spec.vocabSize;
    const seed = new Float32Array(B * V);
    const seedPosition = new Float32Array(B * T);
    request.targets.forEach((target, b) => {
      fillSeed(seed.subarray(b * V, (b + 1) * V), target);
      seedPosition[b * T + target.position] = 1;
    });
    feeds.seed = new ort.Tensor('float32', seed, [B, V]);
    feeds.seed_position = new ort.Tensor('float32', seedPosition, [B, T]);
    if (request.interventions) Object.assign(feeds, this.interventionFeeds(request.interventions, B, T));
    const out = await session.run(feeds);
    return lengths.map((len, b) => this.readAttribution(out, b, len, T, request.mode, weightNames, request.neurons !== false));
  }

  /**
   * Integrated gradients (Sundararajan et al. 2017, Eq. 1) of each prompt's target, per token:
   * IG_t = Σ_d (x − x')_td · (1/m) Σ_k ∂f/∂x_td(x' + α_k(x − x')), α_k = (k + ½)/m (midpoint
   * Riemann sum, error O(1/m²)), through the plain-gradient graph with an integration-path input
   * (build.ts `embeddingScale`). The path moves the token embeddings only; positional embeddings
   * stay. Baseline x': `'zero'` (zero token embeddings) or, per prompt, the token ids of a
   * baseline prompt of the same length (e.g. every token replaced, as in the perturbation test).
   * Each prompt takes m + 2 batch rows: the m steps, α = 0 (f(x')) and α = 1 (f(x));
   * completeness says Σ_t IG_t ≈ f(x) − f(x').
   */
  async integratedGradients(request: IntegratedGradientsRequest): Promise<IntegratedGradients[]> {
    const steps = request.steps ?? IG_STEPS;
    if (!Number.isInteger(steps) || steps < 1 || steps > 1024) throw new InputError(`integrated gradients: steps must be an integer in 1..1024, got ${String(steps)}`);
    this.checkIds(request.ids);
    if (request.targets.length !== request.ids.length) throw new InputError(`${request.ids.length} prompts but ${request.targets.length} targets`);
    request.targets.forEach((t, i) => this.checkTarget(t, request.ids[i]!.length));
    const baseline = request.baseline ?? 'zero';
    if (baseline !== 'zero') {
      if (baseline.length !== request.ids.length) throw new InputError(`${request.ids.length} prompts but ${baseline.length} baseline prompts`);
      baseline.forEach((b, i) => {
        if (b.length !== request.ids[i]!.length) throw new InputError(`prompt ${i + 1}: the baseline has ${b.length} tokens, the prompt ${request.ids[i]!.length}`);
      });
      this.checkIds(baseline);
    }
    const alphas = [...Array.from({ length: steps }, (_, k) => (k + 0.5) / steps), 0, 1];
    // One batch row per (prompt, α), run in chunks of at most IG_ROWS_PER_RUN rows, so memory
    // stays bounded however many steps a prompt takes (a chunk may hold parts of two prompts).
    const rows = request.ids.flatMap((_, p) => alphas.map((alpha, k) => ({ p, k, alpha })));
    const ig = request.ids.map((ids) => new Float64Array(ids.length));
    const targetValue = new Float64Array(request.ids.length);
    const baselineValue = new Float64Array(request.ids.length);
    const gradientTimesInput: Float32Array[] = [];
    const { session } = await this.session({ composite: 'gradient', interventions: false, hooks: false, weightRelevance: [], embeddingScale: true });
    const V = this.spec.vocabSize;
    for (let first = 0; first < rows.length; first += IG_ROWS_PER_RUN) {
      const chunk = rows.slice(first, first + IG_ROWS_PER_RUN);
      const ids = chunk.map((r) => request.ids[r.p]!);
      this.checkRunMemory(ids, true);
      const { feeds, T } = this.inputFeeds(ids);
      const B = chunk.length;
      const seed = new Float32Array(B * V);
      const seedPosition = new Float32Array(B * T);
      const scale = new Float32Array(B);
      chunk.forEach((r, b) => {
        const target = request.targets[r.p]!;
        fillSeed(seed.subarray(b * V, (b + 1) * V), target);
        seedPosition[b * T + target.position] = 1;
        scale[b] = r.alpha;
      });
      feeds.seed = new ort.Tensor('float32', seed, [B, V]);
      feeds.seed_position = new ort.Tensor('float32', seedPosition, [B, T]);
      feeds.embedding_scale = new ort.Tensor('float32', scale, [B]);
      // The zero baseline gathers any ids (the prompt's own) and scales them by β = 0.
      feeds.baseline_ids = this.inputFeeds(chunk.map((r) => (baseline === 'zero' ? request.ids[r.p]! : baseline[r.p]!))).feeds.input_ids!;
      feeds.baseline_scale = new ort.Tensor('float32', new Float32Array(B).fill(baseline === 'zero' ? 0 : 1), [B]);
      const out = await session.run(feeds);
      const token = out[OUT.tokenRelevance]!.data as Float32Array;
      const value = out[OUT.targetValue]!.data as Float32Array;
      chunk.forEach((r, b) => {
        const len = request.ids[r.p]!.length;
        if (r.k < steps) {
          // Row k's token relevance is Σ_d (x − x') ⊙ ∇f at x' + α_k(x − x'), times α_k; dividing by α_k leaves the integrand.
          const sum = ig[r.p]!;
          for (let t = 0; t < len; t++) sum[t]! += token[b * T + t]! / r.alpha / steps;
        } else if (r.k === steps) {
          baselineValue[r.p] = value[b]!;
        } else {
          targetValue[r.p] = value[b]!;
          gradientTimesInput[r.p] = token.slice(b * T, b * T + len);
        }
      });
    }
    return request.ids.map((_, p) => ({
      tokenRelevance: Float32Array.from(ig[p]!),
      targetValue: targetValue[p]!,
      baselineValue: baselineValue[p]!,
      gradientTimesInput: gradientTimesInput[p]!,
    }));
  }

  /** Relevance of many explained positions per row, in one backward pass (see api.ts). */
  async attributeSequence(request: SequenceAttributeRequest): Promise<Attribution[]> {
    this.checkIds(request.ids);
    this.checkRunMemory(request.ids, true);
    if (!COMPOSITES.includes(request.mode)) throw new InputError(`unknown mode "${String(request.mode)}" (use ${COMPOSITES.join(', ')})`);
    if (request.targets.length !== request.ids.length) throw new InputError(`${request.ids.length} prompts but ${request.targets.length} target lists`);
    const V = this.spec.vocabSize;
    request.targets.forEach((row, i) => {
      if (row.length > request.ids[i]!.length) throw new InputError(`prompt ${i + 1}: ${row.length} targets for ${request.ids[i]!.length} positions`);
      const bad = row.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= V);
      if (bad !== -1) throw new InputError(`prompt ${i + 1}: target id ${String(row[bad])} at position ${bad} is outside the vocabulary`);
    });
    const weightNames = [...(request.weights ?? [])];
    const options: GraphOptions = {
      composite: request.mode,
      interventions: false,
      hooks: false,
      weightRelevance: weightNames,
      sequenceTargets: true,
      contrastiveSequence: !!request.contrastive,
      ...(request.rules ? { rules: request.rules } : {}),
    };
    const { session } = await this.session(options);
    const { feeds, lengths, T } = this.inputFeeds(request.ids);
    const B = request.ids.length;
    const targetIds = new BigInt64Array(B * T);
    const targetWeight = new Float32Array(B * T);
    request.targets.forEach((row, b) =>
      row.forEach((id, t) => {
        targetIds[b * T + t] = BigInt(id);
        targetWeight[b * T + t] = 1;
      }),
    );
    feeds.target_ids = new ort.Tensor('int64', targetIds, [B, T]);
    feeds.target_weight = new ort.Tensor('float32', targetWeight, [B, T]);
    const out = await session.run(feeds);
    return lengths.map((len, b) => this.readAttribution(out, b, len, T, request.mode, weightNames, request.neurons !== false));
  }

  /**
   * Edge relevance for each prompt, from one ungated attribution pass per prompt (build.ts
   * `localEdges`): each downstream node's gated backward row is computed locally from that pass,
   * so the forward and the backward above the node are not repeated. Equals `edgesGated`.
   */
  async edges(prompts: readonly { ids: readonly number[]; target: Target }[], mode: Composite): Promise<EdgeAttribution[]> {
    this.checkEdgeRequest(prompts, mode);
    const { nLayers: L, nHeads: H, vocabSize: V } = this.spec;
    const N = 1 + L * (H + 2);
    // One prompt per run. Besides the attribution row, the local backward carries H rows
    // through one layer's attention at a time: a few H²·T² maps, where one row's estimate counts
    // 10·H·T². 1 + ⌈0.2·H⌉ rows is fitted to the GPT-2-small-sized model (H = 12) at 256 and 512
    // tokens (3.3 and 3.5 rows measured, README "Edges").
    const longest = longestIds(prompts);
    this.checkRunMemory(Array.from({ length: 1 + Math.ceil(0.2 * H) }, () => longest), true);
    const { session } = await this.session({ composite: mode, interventions: false, hooks: false, weightRelevance: [], localEdges: true });
    const results: EdgeAttribution[] = [];
    for (const prompt of prompts) {
      const { feeds, T } = this.inputFeeds([prompt.ids]);
      const seed = new Float32Array(V);
      fillSeed(seed, prompt.target);
      const seedPosition = new Float32Array(T);
      seedPosition[prompt.target.position] = 1;
      feeds.seed = new ort.Tensor('float32', seed, [1, V]);
      feeds.seed_position = new ort.Tensor('float32', seedPosition, [1, T]);
      const out = await session.run(feeds);
      const data = (name: string) => out[name]!.data as Float32Array;
      const heads = data(OUT.edgesHead);
      const headInflow = data(OUT.edgesHeadInflow);
      const mlps = data(OUT.edgesMlp);
      const mlpInflow = data(OUT.edgesMlpInflow);
      results.push(
        this.assembleEdges(data(OUT.targetValue)[0]!, (node) => {
          if (node.kind === 'logits') return { values: data(OUT.edgesLogits), inflow: data(OUT.residFinal)[0]! };
          if (node.kind === 'head') {
            const r = node.layer * H + node.head!;
            return { values: heads.subarray(r * N, (r + 1) * N), inflow: headInflow[r]! };
          }
          return { values: mlps.subarray(node.layer * N, (node.layer + 1) * N), inflow: mlpInflow[node.layer]! };
        }),
      );
    }
    return results;
  }

  /**
   * The same edges the way they are defined: one batch row per downstream node, each seeded at
   * the target and gated so that only that node's relevance reaches the residual stream below it
   * (build.ts `edges`), every row a full forward and backward pass. Kept as the reference that
   * `edges` is tested against (test/unit/edges-local.test.ts).
   */
  async edgesGated(prompts: readonly { ids: readonly number[]; target: Target }[], mode: Composite): Promise<EdgeAttribution[]> {
    this.checkEdgeRequest(prompts, mode);
    const { nLayers: L, nHeads: H, vocabSize: V } = this.spec;
    const longest = longestIds(prompts);
    this.checkRunMemory(Array.from({ length: Math.min(EDGE_ROWS_PER_RUN, prompts.length * (1 + L * (H + 1))) }, () => longest), true);
    const downstream = this.edgeTargets();
    const R = downstream.length;
    const rows = prompts.flatMap((p) => downstream.map((node) => ({ ...p, node })));
    const N = 1 + L * (H + 2);
    const pre = new Float32Array(rows.length * L * N);
    const mid = new Float32Array(rows.length * L * N);
    const fin = new Float32Array(rows.length * N);
    const residPre = new Float32Array(rows.length * L);
    const residMid = new Float32Array(rows.length * L);
    const residFinal = new Float32Array(rows.length);
    const targetValues = new Float32Array(rows.length);
    const { session } = await this.session({ composite: mode, interventions: false, hooks: false, weightRelevance: [], edges: true });
    // Rows run in chunks so memory stays bounded on wide models (every row is a full forward and
    // backward pass). A chunk never mixes prompts: the graph reads every upstream node's output
    // from the chunk's batch row 0.
    const starts = prompts.flatMap((_, p) => Array.from({ length: Math.ceil(R / EDGE_ROWS_PER_RUN) }, (_, c) => p * R + c * EDGE_ROWS_PER_RUN));
    for (const first of starts) {
      const chunk = rows.slice(first, Math.min(first + EDGE_ROWS_PER_RUN, first - (first % R) + R));
      const { feeds, T } = this.inputFeeds(chunk.map((r) => r.ids));
      const B = chunk.length;
      const seed = new Float32Array(B * V);
      const seedPosition = new Float32Array(B * T);
      const gateHead = new Float32Array(B * L * H).fill(1);
      const gateMlp = new Float32Array(B * L).fill(1);
      const gateSkipAttn = new Float32Array(B * L).fill(1);
      const gateSkipMlp = new Float32Array(B * L).fill(1);
      chunk.forEach((row, b) => {
        fillSeed(seed.subarray(b * V, (b + 1) * V), row.target);
        seedPosition[b * T + row.target.position] = 1;
        const { node } = row;
        if (node.kind === 'head') {
          gateSkipAttn[b * L + node.layer] = 0;
          for (let h = 0; h < H; h++) if (h !== node.head) gateHead[(b * L + node.layer) * H + h] = 0;
        } else if (node.kind === 'mlp') {
          gateSkipMlp[b * L + node.layer] = 0;
        }
      });
      Object.assign(feeds, {
        seed: new ort.Tensor('float32', seed, [B, V]),
        seed_position: new ort.Tensor('float32', seedPosition, [B, T]),
        edge_gate_head: new ort.Tensor('float32', gateHead, [B, L, H]),
        edge_gate_mlp: new ort.Tensor('float32', gateMlp, [B, L]),
        edge_gate_skip_attn: new ort.Tensor('float32', gateSkipAttn, [B, L]),
        edge_gate_skip_mlp: new ort.Tensor('float32', gateSkipMlp, [B, L]),
      });
      const out = await session.run(feeds);
      const copy = (dst: Float32Array, name: string, per: number) => dst.set(out[name]!.data as Float32Array, first * per);
      copy(pre, OUT.edgesPre, L * N);
      copy(mid, OUT.edgesMid, L * N);
      copy(fin, OUT.edgesFinal, N);
      copy(residPre, OUT.residPre, L);
      copy(residMid, OUT.residMid, L);
      copy(residFinal, OUT.residFinal, 1);
      copy(targetValues, OUT.targetValue, 1);
    }
    return prompts.map((_, p) =>
      this.assembleEdges(targetValues[p * R]!, (node, r) => {
        const b = p * R + r;
        if (node.kind === 'logits') return { values: fin.subarray(b * N, (b + 1) * N), inflow: residFinal[b]! };
        const at = b * L + node.layer;
        if (node.kind === 'head') return { values: pre.subarray(at * N, (at + 1) * N), inflow: residPre[at]! };
        return { values: mid.subarray(at * N, (at + 1) * N), inflow: residMid[at]! };
      }),
    );
  }

  private checkEdgeRequest(prompts: readonly { ids: readonly number[]; target: Target }[], mode: Composite): void {
    if (prompts.length === 0) throw new InputError('no prompts given');
    this.checkIds(prompts.map((p) => p.ids));
    if (!COMPOSITES.includes(mode)) throw new InputError(`unknown mode "${String(mode)}" (use ${COMPOSITES.join(', ')})`);
    prompts.forEach((p) => this.checkTarget(p.target, p.ids.length));
  }

  /** Downstream nodes of the edge graph, in output order: the logits, then per layer its heads and its MLP. */
  private edgeTargets(): EdgeTarget[] {
    const { nLayers: L, nHeads: H } = this.spec;
    const downstream: EdgeTarget[] = [{ id: 'logits', layer: L, kind: 'logits' }];
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) downstream.push({ id: `a${l}.h${h}`, layer: l, kind: 'head', head: h });
      downstream.push({ id: `m${l}`, layer: l, kind: 'mlp' });
    }
    return downstream;
  }

  /**
   * One prompt's edges from each downstream node's readout: `values[n]` is upstream node n's
   * output dotted with the gradient at the residual cut feeding the node, `inflow` the residual
   * stream there dotted with the same gradient. Upstream nodes: input, then per layer heads,
   * o-bias, MLP; only those that feed the node give an edge.
   */
  private assembleEdges(targetValue: number, readout: (node: EdgeTarget, r: number) => { values: Float32Array; inflow: number }): EdgeAttribution {
    const { nHeads: H } = this.spec;
    const N = 1 + this.spec.nLayers * (H + 2);
    const upstreamId = (n: number): string => {
      if (n === 0) return 'input';
      const l = Math.floor((n - 1) / (H + 2));
      const k = (n - 1) % (H + 2);
      return k < H ? `a${l}.h${k}` : k === H ? `a${l}.bias` : `m${l}`;
    };
    const upstreamLayer = (n: number) => (n === 0 ? -1 : Math.floor((n - 1) / (H + 2)));
    const isHead = (n: number) => n > 0 && (n - 1) % (H + 2) < H + 1; // heads and their bias
    const edges: EdgeRelevance[] = [];
    const inflow: Record<string, number> = {};
    this.edgeTargets().forEach((node, r) => {
      const { values, inflow: into } = readout(node, r);
      inflow[node.id] = into;
      const feeds = node.kind === 'logits' ? () => true : node.kind === 'head' ? (n: number) => upstreamLayer(n) < node.layer : (n: number) => upstreamLayer(n) < node.layer || (upstreamLayer(n) === node.layer && isHead(n));
      for (let n = 0; n < N; n++) if (feeds(n)) edges.push({ source: upstreamId(n), target: node.id, relevance: values[n]! });
    });
    return { targetValue, edges, inflow };
  }

  /**
   * The position-resolved forward values and modified gradients of one prompt that prompt graphs
   * are computed from (build.ts `promptGraph`): output name → row-0 data, plus the explained value
   * and the logits at the explained position.
   */
  async promptGraphTensors(ids: readonly number[], target: Target, mode: Composite): Promise<{ tensors: Record<string, Float32Array>; targetValue: number; logits: Float32Array }> {
    this.checkIds([ids]);
    this.checkRunMemory([ids], true);
    if (!COMPOSITES.includes(mode)) throw new InputError(`unknown mode "${String(mode)}" (use ${COMPOSITES.join(', ')})`);
    this.checkTarget(target, ids.length);
    const { session } = await this.session({ composite: mode, interventions: false, hooks: false, weightRelevance: [], promptGraph: true });
    const { feeds, T } = this.inputFeeds([ids]);
    const seed = new Float32Array(this.spec.vocabSize);
    fillSeed(seed, target);
    const seedPosition = new Float32Array(T);
    seedPosition[target.position] = 1;
    feeds.seed = new ort.Tensor('float32', seed, [1, seed.length]);
    feeds.seed_position = new ort.Tensor('float32', seedPosition, [1, T]);
    const out = await session.run(feeds);
    const tensors: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(out)) if (name.startsWith('pg_')) tensors[name] = value.data as Float32Array;
    return { tensors, targetValue: (out[OUT.targetValue]!.data as Float32Array)[0]!, logits: (out[OUT.logitsAt]!.data as Float32Array).slice() };
  }

  /** Logit lens of one prompt (build.ts `logitLens`): per layer boundary, the top-k ids and logits at each position, and log Σ exp. */
  async logitLens(ids: readonly number[], k: number): Promise<{ values: Float32Array; indices: BigInt64Array; lse: Float32Array }[]> {
    this.checkIds([ids]);
    this.checkRunMemory([ids], false);
    if (!Number.isInteger(k) || k < 1 || k > this.spec.vocabSize) throw new InputError(`top-k must be an integer in 1..${this.spec.vocabSize}, got ${k}`);
    const { session } = await this.session({ composite: null, interventions: false, hooks: false, weightRelevance: [], logitLens: k });
    const out = await session.run(this.inputFeeds([ids]).feeds);
    return Array.from({ length: this.spec.nLayers + 1 }, (_, l) => ({
      values: out[`lens_values_${l}`]!.data as Float32Array,
      indices: out[`lens_indices_${l}`]!.data as BigInt64Array,
      lse: out[`lens_lse_${l}`]!.data as Float32Array,
    }));
  }

  async dispose(): Promise<void> {
    for (const pending of this.sessions.values()) {
      try {
        await (await pending).session.release();
      } catch {
        // A session that failed to open has nothing to release.
      }
    }
    this.sessions.clear();
  }

  private readAttribution(out: ort.InferenceSession.ReturnType, b: number, len: number, T: number, mode: Composite, weightNames: string[], neurons: boolean): Attribution {
    const { nLayers: L, nHeads: H, dMlp: F, vocabSize: V } = this.spec;
    const data = (name: string) => out[name]!.data as Float32Array;
    const matrix = (flat: Float32Array, rows: number, cols: number) =>
      Array.from({ length: rows }, (_, r) => Array.from(flat.subarray(b * rows * cols + r * cols, b * rows * cols + (r + 1) * cols)));
    const weightRelevance: Record<string, Float32Array> = {};
    weightNames.forEach((name, i) => {
      const t = out[OUT.weight(i)]!;
      const size = t.dims.slice(1).reduce((x, y) => x * y, 1);
      weightRelevance[name] = (t.data as Float32Array).slice(b * size, (b + 1) * size);
    });
    const mlp = data(OUT.mlpRelevance);
    return {
      targetValue: data(OUT.targetValue)[b]!,
      logitsLast: out[OUT.logitsAt] ? data(OUT.logitsAt).slice(b * V, (b + 1) * V) : new Float32Array(0),
      tokenRelevance: data(OUT.tokenRelevance).slice(b * T, b * T + len),
      positionRelevance: out[OUT.positionRelevance] ? data(OUT.positionRelevance).slice(b * T, b * T + len) : null,
      headRelevance: matrix(data(OUT.headRelevance), L, H),
      headRelevanceProbs: out[OUT.headRelevanceProbs] && reportsProbs(mode) ? matrix(data(OUT.headRelevanceProbs), L, H) : null,
      headRelevanceScores: out[OUT.headRelevanceScores] && reportsProbs(mode) ? matrix(data(OUT.headRelevanceScores), L, H) : null,
      mlpRelevance: neurons ? Array.from({ length: L }, (_, l) => mlp.slice((b * L + l) * F, (b * L + l + 1) * F)) : null,
      residPre: Array.from(data(OUT.residPre).subarray(b * L, (b + 1) * L)),
      residMid: Array.from(data(OUT.residMid).subarray(b * L, (b + 1) * L)),
      residFinal: data(OUT.residFinal)[b]!,
      biasRelevance: { linear: data(OUT.biasLinear)[b]!, layernorm: data(OUT.biasLayerNorm)[b]! },
      weightRelevance,
      ...(out[OUT.headPatch]
        ? {
            headPatch: matrix(data(OUT.headPatch), L, H),
            neuronPatch: Array.from({ length: L }, (_, l) => data(OUT.neuronPatch).slice((b * L + l) * F, (b * L + l + 1) * F)),
          }
        : {}),
    };
  }

  private session(requested: GraphOptions): Promise<OpenedSession> {
    const options: GraphOptions = this.halfWeights ? { ...requested, halfWeights: true } : requested;
    const key = JSON.stringify(options);
    let pending = this.sessions.get(key);
    if (!pending) {
      pending = (async () => {
        const opened = await this.openCachedOrCompile(options);
        this.provider = opened.provider;
        return opened;
      })();
      // A failed compile must not poison the cache for the next request.
      pending.catch(() => this.sessions.delete(key));
      this.sessions.set(key, pending);
    }
    return pending;
  }

  /**
   * Sessions are created lazily, on the first request that needs their graph. With a cache
   * (CPU only, original weights only) a hit opens ORT's saved optimised model and never
   * compiles or reads the safetensors; a miss compiles and saves it while the session is made.
   */
  private async openCachedOrCompile(options: GraphOptions): Promise<OpenedSession> {
    const cache = this.graphCache();
    if (!cache) return openSession(compileGraph(this.spec, this.model.weights, options), this.options);
    const { cache: c, modelHash } = cache;
    const key = c.key({ model: modelHash, options, code: engineCodeHash(), ort: ORT_VERSION, cpu: os.cpus()[0]?.model ?? '?', arch: process.arch });
    const hit = c.lookup(key);
    if (hit) {
      try {
        return await openCachedSession(hit, this.options);
      } catch (err) {
        this.options.log(`graph cache: entry ${key} could not be opened (${(err as Error).message.split('\n')[0]}); recompiling`);
        c.remove(key);
      }
    }
    const graph = compileGraph(this.spec, this.model.weights, options);
    const write = c.begin(key, { folder: this.model.folder, options, ort: ORT_VERSION });
    try {
      const opened = await openSession(graph, this.options, write);
      if (opened.provider === 'cpu' && fs.existsSync(write.modelPath)) write.commit();
      else write.abort();
      return opened;
    } catch (err) {
      write.abort();
      throw err;
    }
  }

  private cacheState: { cache: GraphCache; modelHash: string } | null | undefined;

  private graphCache(): { cache: GraphCache; modelHash: string } | null {
    if (this.cacheState !== undefined) return this.cacheState;
    const dir = this.options.cacheDir;
    // Pruned or corrected weights live in memory only: never cached. Other providers save
    // provider-specific graphs, so the cache serves the CPU only.
    const overridden = this.model.weights.names().some((n) => this.model.weights.isOverridden(n));
    if (!dir || overridden || this.options.executionProvider !== 'cpu') return (this.cacheState = null);
    try {
      const cache = new GraphCache(dir, resolveCacheMaxBytes());
      const files = [...new Set(this.model.weights.files.map((f) => f.path)), path.join(this.model.folder, 'config.json')];
      this.cacheState = { cache, modelHash: cache.contentHash(files) };
    } catch (err) {
      this.options.log(`graph cache: disabled (${(err as Error).message})`);
      this.cacheState = null;
    }
    return this.cacheState;
  }

  /** Right-pads the rows to one length; causal attention keeps real positions unaffected. */
  private inputFeeds(ids: readonly (readonly number[])[]): { feeds: Record<string, ort.Tensor>; lengths: number[]; T: number } {
    const lengths = ids.map((row) => row.length);
    const T = Math.max(...lengths);
    const data = new BigInt64Array(ids.length * T);
    ids.forEach((row, b) => row.forEach((id, t) => (data[b * T + t] = BigInt(id))));
    return { feeds: { input_ids: new ort.Tensor('int64', data, [ids.length, T]) }, lengths, T };
  }

  private interventionFeeds(iv: Interventions, B: number, T: number): Record<string, ort.Tensor> {
    const { nLayers: L, nHeads: H, headDim: dh, dMlp: F } = this.spec;
    const headKeep = new Float32Array(B * L * H).fill(1);
    const neuronKeep = new Float32Array(B * L * F).fill(1);
    for (const id of iv.ablate) {
      const target = parseComponent(id, this.spec);
      for (let b = 0; b < B; b++) {
        if (target.kind === 'head') headKeep[(b * L + target.layer) * H + target.head] = 0;
        else if (target.kind === 'mlp') neuronKeep.fill(0, (b * L + target.layer) * F, (b * L + target.layer + 1) * F);
        else neuronKeep[(b * L + target.layer) * F + target.neuron] = 0;
      }
    }
    const headRepl = new Float32Array(B * L * T * H * dh);
    const neuronRepl = new Float32Array(B * L * T * F);
    const fill = (dst: Float32Array, src: readonly Float32Array[][] | undefined, per: number, what: string) => {
      if (!src) return;
      if (src.length !== B) throw new InputError(`${what}: ${src.length} rows of replacement activations for ${B} prompts`);
      src.forEach((layers, b) =>
        layers.forEach((values, l) => {
          if (values.length > T * per) throw new InputError(`${what}: row ${b} layer ${l} has ${values.length} values, more than ${T}×${per}`);
          dst.set(values, (b * L + l) * T * per);
        }),
      );
    };
    fill(headRepl, iv.headReplacement, H * dh, 'head replacement');
    fill(neuronRepl, iv.neuronReplacement, F, 'neuron replacement');
    return {
      head_keep: new ort.Tensor('float32', headKeep, [B, L, H]),
      head_repl: new ort.Tensor('float32', headRepl, [B, L, T, H, dh]),
      neuron_keep: new ort.Tensor('float32', neuronKeep, [B, L, F]),
      neuron_repl: new ort.Tensor('float32', neuronRepl, [B, L, T, F]),
    };
  }

  private checkIds(ids: readonly (readonly number[])[]): void {
    if (ids.length === 0) throw new InputError('no prompts given');
    const { vocabSize, maxPositions } = this.spec;
    ids.forEach((row, i) => {
      const which = ids.length > 1 ? `prompt ${i + 1}: ` : '';
      if (row.length === 0) throw new InputError(`${which}the prompt is empty`);
      if (row.length > maxPositions) throw new InputError(`${which}the prompt has ${row.length} tokens, longer than the model's context of ${maxPositions}`);
      const bad = row.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
      if (bad !== -1) throw new InputError(`${which}token id ${String(row[bad])} at position ${bad} is outside the vocabulary (0..${vocabSize - 1})`);
    });
  }

  private checkTarget(target: Target, length: number): void {
    const V = this.spec.vocabSize;
    if (!['logit', 'logit_diff', 'contrastive', 'set_diff'].includes(target.kind)) throw new InputError(`unknown target kind "${String(target.kind)}"`);
    if (target.kind === 'set_diff') {
      const ok = (ids: readonly number[] | undefined) => !!ids && ids.length > 0 && ids.every((id) => Number.isInteger(id) && id >= 0 && id < V);
      if (!ok(target.good) || !ok(target.bad)) throw new InputError('a set difference needs non-empty good and bad token lists inside the vocabulary');
    }
    if (!Number.isInteger(target.position) || target.position < 0 || target.position >= length) {
      throw new InputError(`position ${target.position} is out of range for a prompt of ${length} tokens (0..${length - 1})`);
    }
    if (!Number.isInteger(target.token) || target.token < 0 || target.token >= V) throw new InputError(`target token id ${target.token} is outside the vocabulary`);
    if (target.kind === 'logit_diff') {
      if (target.foil === undefined || !Number.isInteger(target.foil) || target.foil < 0 || target.foil >= V) throw new InputError('a logit difference needs a foil token inside the vocabulary');
      if (target.foil === target.token) throw new InputError('the foil is the same token as the target: their logit difference is identically 0');
    }
  }
}

function fillSeed(seed: Float32Array, target: Target): void {
  if (target.kind === 'set_diff') {
    for (const id of target.good!) seed[id] = (seed[id] ?? 0) + 1 / target.good!.length;
    for (const id of target.bad!) seed[id] = (seed[id] ?? 0) - 1 / target.bad!.length;
    return;
  }
  if (target.kind === 'contrastive') seed.fill(-1 / seed.length);
  seed[target.token] = (seed[target.token] ?? 0) + 1;
  if (target.kind === 'logit_diff') seed[target.foil!] = -1;
}

export type ComponentRef =
  | { kind: 'head'; layer: number; head: number }
  | { kind: 'mlp'; layer: number }
  | { kind: 'neuron'; layer: number; neuron: number };

/** Parses a TransformerLens/EAP-IG component id (`a3.h1`, `m2`, `m2.n17`). */
export function parseComponent(id: string, spec: ArchSpec): ComponentRef {
  const head = /^a(\d+)\.h(\d+)$/.exec(id);
  const mlp = /^m(\d+)$/.exec(id);
  const neuron = /^m(\d+)\.n(\d+)$/.exec(id);
  const check = (layer: number) => {
    if (layer >= spec.nLayers) throw new InputError(`component "${id}": layer ${layer} does not exist (the model has ${spec.nLayers})`);
  };
  if (head) {
    const [layer, h] = [Number(head[1]), Number(head[2])];
    check(layer);
    if (h >= spec.nHeads) throw new InputError(`component "${id}": head ${h} does not exist (${spec.nHeads} heads per layer)`);
    return { kind: 'head', layer, head: h };
  }
  if (mlp) {
    check(Number(mlp[1]));
    return { kind: 'mlp', layer: Number(mlp[1]) };
  }
  if (neuron) {
    const [layer, n] = [Number(neuron[1]), Number(neuron[2])];
    check(layer);
    if (n >= spec.dMlp) throw new InputError(`component "${id}": neuron ${n} does not exist (${spec.dMlp} per layer)`);
    return { kind: 'neuron', layer, neuron: n };
  }
  throw new InputError(`"${id}" is not a component id (expected a<layer>.h<head>, m<layer> or m<layer>.n<neuron>)`);
}

/** The embedded default model shipped in the repository and the VSIX. */
export function embeddedModelPath(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'models', 'tiny-ioi-gpt2');
    if (fs.existsSync(path.join(candidate, 'config.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error('the embedded model folder models/tiny-ioi-gpt2 is missing from this installation');
  }
}

/** The longest prompt's ids: what a run's memory estimate must be made for. */
function longestIds(prompts: readonly { ids: readonly number[] }[]): readonly number[] {
  return prompts.reduce((a, p) => (p.ids.length > a.length ? p.ids : a), prompts[0]!.ids);
}

function keepsHalfWeights(options: Required<EngineOptions>, dtype: string): boolean {
  if (options.weightPrecision !== 'auto') return options.weightPrecision === 'half';
  if (dtype !== 'F16' && dtype !== 'BF16') return false;
  const available = new Set(ort.listSupportedBackends().map((b) => b.name));
  const ep = options.executionProvider;
  return ep === 'auto' ? available.has('cuda') || available.has('webgpu') : ep !== 'cpu' && available.has(ep);
}
