/**
 * Prompt attribution graphs: for one prompt, which components at which token positions carry
 * the explained logit, with the edges between them (circuit-tracer / Neuronpedia's per-prompt
 * graphs, without a transcoder: the nodes are the model's own heads and MLP blocks).
 *
 * ```jsonc
 * {
 *   "version": 1, "kind": "prompt-graph",
 *   "model": { "name", "nLayers", "nHeads", "dModel", "dMlp" },
 *   "task": { "name": "prompt", "metric": "logit" | "logit_diff", "examples": 1 },
 *   "method": { "name": "attnlrp" },  "granularity": "heads+mlps",
 *   "prompt": { "text", "ids": [..], "tokens": [..] },
 *   "target": { "position", "token", "text", "foil"?, "foilText"?, "value", "probability" },
 *   "nodes": [
 *     { "id": "input@3",   "kind": "input",  "layer": -1, "position": 3, "relevance", "token": " Hugo" },
 *     { "id": "a2.h2@19",  "kind": "head",   "layer": 2, "head": 2, "position": 19, "component": "a2.h2",
 *       "relevance", "inflow", "error" },
 *     { "id": "m1@19",     "kind": "mlp",    "layer": 1, "position": 19, "component": "m1", ... },
 *     { "id": "err2",      "kind": "error",  "layer": 2, "position": null, "relevance" },
 *     { "id": "logits@19", "kind": "logits", "layer": 4, "position": 19, "relevance": <explained value> }
 *   ],
 *   "edges": [ { "id": "input@3->a2.h2@19", "source", "target", "relevance",
 *                "paths"?: { "ov", "qkKey", "qkQuery" }, "qkSelected"?: true } ],  // paths only into heads
 *   "attention": { "a2.h2@19": { "keys": [0..19], "pattern": [..], "ov": [..], "qkKey": [..], "qkQuery": x } },
 *   "conservation": { "explained", "embeddings", "errors", "sum", "relativeError" },
 *   "selection": { "nodeThreshold", "edgeThreshold", "candidates", "keptNodes", "nodeShare",
 *                  "computedEdges", "keptEdges", "edgeShare", "qkThreshold", "qkEdges", "qkAdded", "qkShare" },
 *   "metrics": { "completeness", "replacement", "verification"? }
 * }
 * ```
 *
 * Relevance. One attribution pass (the composite's modified backward, build.ts `promptGraph`)
 * gives the forward values x and gradients g̃ everywhere. The relevance of a node is its output
 * dotted with g̃ where it enters the residual stream: a head h at query position q is
 * (z_{q,h}·W_O[h]) ⊙ g̃_mid[q], an MLP block at t is mlp_out[t] ⊙ g̃_post[t], a token embedding is
 * x_0[t] ⊙ g̃_0[t]. These are in logit units and signed (share of the explained value).
 *
 * Edges are gated backward rows, as for task circuits (build.ts `edges`): the row of a node lets
 * only that node's relevance through to the residual stream below it, and an upstream node's
 * edge is its output dotted with that gradient. A gate at one node leaves every gradient above
 * it unchanged, so the row is computed locally from the ungated pass: for a head (l, h, q) the
 * gradient at z_{q,h} is sent back through the composite's rules inside layer l only,
 *   V at key k:   a_v · p[q,k] · g̃_z[q,h]               (A·V rule, ½ for AttnLRP)
 *   K at key k:   f_k · g̃_{QKᵀ}[q,k] · Q[q,h]            (Q·Kᵀ rule, ½ for AttnLRP)
 *   Q at q:       f_q · Σ_k g̃_{QKᵀ}[q,k] · K[k,h]
 * then through W_V / W_K / W_Q of head h and the norm's rule (LayerNorm: std constant, Prop. 3.4)
 * at each position. With RoPE the key and query gradients first go back through the rotation of
 * their own position (R_kᵀ, R_qᵀ), so the K-path product differs per key (`yFromWeights`). The
 * three parts are the OV, QK-key and QK-query paths of the edge. For an MLP block at t the row is g̃_mid[t] − g̃_post[t] (the block is position-wise; the skip carries
 * g̃_post). The logit node's row is g̃_final.
 *
 * Error nodes. Per layer, `err{l}` holds what the layer absorbs instead of passing down: each
 * node's relevance minus its inflow (softmax leak, q/k/v and MLP biases, LayerNorm β, the
 * identity rule's ε) plus the attention output bias; `err{L}` is the final norm's β. With them
 * Σ embeddings + Σ errors = explained value (tested to 1e-4 relative).
 *
 * Pruning (circuit-tracer's `prune_graph`): heads and MLP blocks are ranked by |relevance| (their
 * total influence on the target, all paths), the fewest covering `nodeThreshold` of Σ|relevance|
 * are kept, edges are computed only into kept nodes from kept nodes, embeddings and error nodes,
 * and the fewest edges covering `edgeThreshold` of Σ|edge| are kept. Embeddings, error nodes and
 * the logit are always kept. Edges into heads get a second, QK selection (circuit-tracer's
 * per-target edge score on each head's QK inflow, threshold `qkThreshold`, default the edge
 * threshold); the edges it keeps are added and flagged `qkSelected`.
 */
import type { Composite, Target } from '../../engine/api';
import type { Engine } from '../../engine/engine';
import { COMPOSITE_RULES } from '../../engine/rules';
import { ropeInverseFrequencies } from '../../engine/build';
import { InputError } from '../../models/errors';
import { componentId } from '../../models/componentIds';

export type PromptNodeKind = 'input' | 'head' | 'mlp' | 'error' | 'logits';

export interface PromptNode {
  readonly id: string;
  readonly kind: PromptNodeKind;
  readonly layer: number;
  readonly position: number | null;
  readonly head?: number;
  /** The task-circuit id of the component (`a2.h2`, `m1`). */
  readonly component?: string;
  readonly token?: string;
  /** Signed relevance (logit units); for `logits` the explained value. */
  readonly relevance: number;
  /** Relevance entering the node from the residual stream (its gated row), heads/MLPs/logits. */
  readonly inflow?: number;
  /** relevance − inflow: what the node absorbs (leak, biases), carried by its layer's error node. */
  readonly error?: number;
  /** Cumulative share of Σ|relevance| up to this node in the pruning order (heads/MLPs). */
  readonly influence?: number;
}

export interface PromptEdge {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  readonly relevance: number;
  /** Into heads: the edge split by path (sums to `relevance`). */
  readonly paths?: { ov: number; qkKey: number; qkQuery: number };
  /** Into heads: kept by the QK selection (its QK part covers the QK threshold), whether or not its total would be kept. */
  readonly qkSelected?: true;
}

export interface HeadAttention {
  /** Key positions 0..q. */
  readonly keys: number[];
  readonly pattern: number[];
  /** Relevance entering through the value at each key (OV path). */
  readonly ov: number[];
  /** Relevance entering through the key at each key position (QK path). */
  readonly qkKey: number[];
  /** Relevance entering through the query at q (QK path). */
  readonly qkQuery: number;
}

export interface PromptGraph {
  readonly version: 1;
  readonly kind: 'prompt-graph';
  readonly model: { name: string; nLayers: number; nHeads: number; dModel: number; dMlp: number };
  readonly task: { name: 'prompt'; metric: 'logit' | 'logit_diff' | 'contrastive'; examples: 1 };
  readonly method: { name: Composite };
  readonly granularity: 'heads+mlps';
  readonly prompt: { text: string | null; ids: number[]; tokens: string[] | null };
  readonly target: {
    position: number;
    token: number;
    text: string | null;
    foil?: number;
    foilText?: string | null;
    value: number;
    probability: number;
    /** The five highest logits at the explained position (the competing outputs). */
    competitors: { token: number; text: string | null; logit: number; probability: number }[];
  };
  readonly nodes: PromptNode[];
  readonly edges: PromptEdge[];
  readonly attention: Record<string, HeadAttention>;
  /** The strongest heads/MLP nodes before pruning (|relevance| order, at most 50): what verification ablates. */
  readonly ranking: { id: string; component: string; layer: number; head?: number; position: number; relevance: number }[];
  readonly conservation: { explained: number; embeddings: number; errors: number; sum: number; relativeError: number };
  readonly selection: {
    nodeThreshold: number;
    edgeThreshold: number;
    candidates: number;
    keptNodes: number;
    nodeShare: number;
    computedEdges: number;
    keptEdges: number;
    edgeShare: number;
    /**
     * The QK selection (README "Prompt graphs", Pruning): its threshold, the edges it selects,
     * those of them the total-relevance selection had dropped, and the share of QK score covered.
     * Optional so that graph files written before it still type-check.
     */
    qkThreshold?: number;
    qkEdges?: number;
    qkAdded?: number;
    qkShare?: number;
  };
  metrics: { completeness: number; replacement: number; verification?: PromptVerification };
}

export interface PromptGraphOptions {
  readonly mode?: Composite;
  readonly nodeThreshold?: number;
  readonly edgeThreshold?: number;
  /** Share of the heads' QK edge score the QK selection covers (default: the edge threshold). */
  readonly qkThreshold?: number;
  readonly text?: string | null;
  /** Keep every head and MLP node and every edge (tests, small prompts). */
  readonly keepAll?: boolean;
}

export const PROMPT_GRAPH_DEFAULTS = { nodeThreshold: 0.8, edgeThreshold: 0.98 } as const;

/** Node ids. */
export const promptNodeId = {
  input: (t: number) => `input@${t}`,
  head: (l: number, h: number, t: number) => `${componentId.head(l, h)}@${t}`,
  mlp: (l: number, t: number) => `${componentId.mlp(l)}@${t}`,
  error: (l: number) => `err${l}`,
  logits: (t: number) => `logits@${t}`,
};

const WEIGHT_CACHE = new WeakMap<Engine, Map<string, Float32Array>>();

/** The position-resolved values and gradients of one prompt, and the local backward rows. */
export class PromptTensors {
  readonly L: number;
  readonly H: number;
  readonly D: number;
  readonly T: number;
  /** Weights read once per engine (reading checks every value for NaN/Inf, which costs seconds on GPT-2 small). */
  private get weightCache(): Map<string, Float32Array> {
    let cache = WEIGHT_CACHE.get(this.engine);
    if (!cache) WEIGHT_CACHE.set(this.engine, (cache = new Map()));
    return cache;
  }

  private constructor(
    readonly engine: Engine,
    readonly mode: Composite,
    readonly ids: readonly number[],
    readonly target: Target,
    readonly t: Record<string, Float32Array>,
    readonly targetValue: number,
    readonly logits: Float32Array,
  ) {
    const s = engine.spec;
    [this.L, this.H, this.D, this.T] = [s.nLayers, s.nHeads, s.dModel, ids.length];
  }

  static async compute(engine: Engine, ids: readonly number[], target: Target, mode: Composite): Promise<PromptTensors> {
    const spec = engine.spec;
    if (!spec.preNorm) throw new InputError('prompt graphs need pre-norm blocks; this model is post-norm');
    // RoPE is taken back per key position in the QK path (`yFromWeights`); a gated MLP needs nothing
    // (its row g̃_mid − g̃_post is position-wise and the compiled backward applies the product rule).
    // Refused: blocks whose MLP does not read resid_mid, or whose sublayer outputs are normed again
    // (a head's output would not be what enters the residual stream), q/k norms before RoPE, and
    // Gemma 3's second rotary table.
    if (spec.parallelResidual) throw new InputError('prompt graphs do not support parallel attention/MLP blocks (GPT-NeoX) yet');
    if (spec.layers.some((layer) => layer.postAttnNorm || layer.postMlpNorm)) throw new InputError('prompt graphs do not support post-sublayer norms (Gemma 2/3) yet');
    if (spec.layers.some((layer) => layer.qNorm || layer.kNorm)) throw new InputError('prompt graphs do not support q/k norms (Qwen3) yet');
    if (spec.positional.kind === 'rope' && spec.positional.local) throw new InputError('prompt graphs do not support two rotary tables (Gemma 3) yet');
    const { tensors, targetValue, logits } = await engine.promptGraphTensors(ids, target, mode);
    return new PromptTensors(engine, mode, ids, target, tensors, targetValue, logits);
  }

  get(name: string): Float32Array {
    const value = this.t[name];
    if (!value) throw new Error(`prompt graph output ${name} is missing`);
    return value;
  }

  /** Gradient at the residual stream after layer l's MLP. */
  gPost(l: number): Float32Array {
    return l < this.L - 1 ? this.get(`pg_g_pre_${l + 1}`) : this.get('pg_g_final');
  }

  /** The attention output bias's term in the residual stream of layer l, [T, D]. */
  private oBiasCache = new Map<number, Float32Array>();
  oBias(l: number): Float32Array {
    let cached = this.oBiasCache.get(l);
    if (cached) return cached;
    const { T, H, D } = this;
    const attn = this.get(`pg_attn_out_${l}`);
    const heads = this.get(`pg_head_out_${l}`);
    cached = new Float32Array(T * D);
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let sum = attn[t * D + d]!;
        for (let h = 0; h < H; h++) sum -= heads[(t * H + h) * D + d]!;
        cached[t * D + d] = sum;
      }
    }
    this.oBiasCache.set(l, cached);
    return cached;
  }

  private weight(name: string): Float32Array {
    let w = this.weightCache.get(name);
    if (!w) {
      w = this.engine.loaded.weights.readFloat32(name);
      this.weightCache.set(name, w);
    }
    return w;
  }

  /** 1/σ (LayerNorm) or 1/rms (RMSNorm) of layer l's first norm at each position. */
  private readonly inverseScale = new Map<number, Float64Array>();
  private normInverse(l: number): Float64Array {
    let r = this.inverseScale.get(l);
    if (r) return r;
    const { D, T } = this;
    const x = this.get(`pg_x_pre_${l}`);
    const layernorm = this.engine.spec.norm.kind === 'layernorm';
    r = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      let mean = 0;
      if (layernorm) {
        for (let d = 0; d < D; d++) mean += x[t * D + d]!;
        mean /= D;
      }
      let square = 0;
      for (let d = 0; d < D; d++) square += (x[t * D + d]! - mean) ** 2;
      r[t] = 1 / Math.sqrt(square / D + this.engine.spec.norm.eps);
    }
    this.inverseScale.set(l, r);
    return r;
  }

  /**
   * With the norm's scale held constant (AttnLRP and CP-LRP, Prop. 3.4) its backward at position
   * t is r_t · c(y) with c(y) = γ⊙y − mean(γ⊙y) (LayerNorm) or γ⊙y (RMSNorm): c is shared by
   * all positions. Null for the full gradient, whose backward is not a scaled copy.
   */
  private sharedNormBack(l: number, y: Float32Array): Float32Array | null {
    const spec = this.engine.spec;
    const rule = COMPOSITE_RULES[this.mode];
    const detached = spec.norm.kind === 'layernorm' ? rule.layerNorm === 'std-detached' : rule.rmsNorm === 'rsqrt-detached';
    if (!detached) return null;
    const gamma = this.weight(spec.layers[l]!.ln1.weight);
    const c = new Float32Array(this.D);
    let mean = 0;
    for (let d = 0; d < this.D; d++) mean += (c[d] = gamma[d]! * y[d]!);
    if (spec.norm.kind === 'layernorm') for (let d = 0; d < this.D; d++) c[d] = c[d]! - mean / this.D;
    return c;
  }

  /** The norm rule's backward at position t of layer l's first norm (attention input): gradient at its input. */
  normBack(l: number, t: number, y: Float32Array): Float32Array {
    const { D } = this;
    const spec = this.engine.spec;
    const gamma = this.weight(spec.layers[l]!.ln1.weight);
    const x = this.get(`pg_x_pre_${l}`).subarray(t * D, (t + 1) * D);
    const rule = COMPOSITE_RULES[this.mode];
    const gy = new Float64Array(D);
    for (let d = 0; d < D; d++) gy[d] = gamma[d]! * y[d]!;
    const out = new Float32Array(D);
    const eps = spec.norm.eps;
    if (spec.norm.kind === 'layernorm') {
      let mean = 0;
      for (let d = 0; d < D; d++) mean += x[d]!;
      mean /= D;
      let variance = 0;
      for (let d = 0; d < D; d++) variance += (x[d]! - mean) ** 2;
      const r = 1 / Math.sqrt(variance / D + eps);
      let gMean = 0;
      for (let d = 0; d < D; d++) gMean += gy[d]!;
      gMean /= D;
      if (rule.layerNorm === 'std-detached') {
        for (let d = 0; d < D; d++) out[d] = r * (gy[d]! - gMean);
      } else {
        let gx = 0;
        for (let d = 0; d < D; d++) gx += gy[d]! * (x[d]! - mean) * r;
        gx /= D;
        for (let d = 0; d < D; d++) out[d] = r * (gy[d]! - gMean - (x[d]! - mean) * r * gx);
      }
    } else {
      let ms = 0;
      for (let d = 0; d < D; d++) ms += x[d]! * x[d]!;
      const r = 1 / Math.sqrt(ms / D + eps);
      if (rule.rmsNorm === 'rsqrt-detached') {
        for (let d = 0; d < D; d++) out[d] = r * gy[d]!;
      } else {
        let gx = 0;
        for (let d = 0; d < D; d++) gx += gy[d]! * x[d]!;
        gx /= D;
        for (let d = 0; d < D; d++) out[d] = r * gy[d]! - x[d]! * r * r * r * gx;
      }
    }
    return out;
  }

  /**
   * W_V[h]·g̃_z[q,h] (`v`), W_K[h]·Q[q,h] (`k`) or W_Q[h]·g̃_Q[q,h] (`q`): read from the graph
   * without RoPE; with RoPE computed here (`yFromWeights`), where the key's depends on the key
   * position k.
   */
  private y(which: 'v' | 'k' | 'q', l: number, h: number, q: number, k = q): Float32Array {
    const { T, D } = this;
    if (this.engine.spec.positional.kind === 'rope') return this.yFromWeights(which, l, h, q, k);
    return this.get(`pg_y${which}_${l}`).subarray((h * T + q) * D, (h * T + q + 1) * D);
  }

  /** cos/sin of the rotary embedding per position over the rotated dims (build.ts `ropeTables`). */
  private ropeTable: { dims: number; cos: Float64Array; sin: Float64Array } | undefined;
  private rotary(): { dims: number; cos: Float64Array; sin: Float64Array } {
    if (this.ropeTable) return this.ropeTable;
    const pos = this.engine.spec.positional;
    if (pos.kind !== 'rope') throw new Error('unreachable: no rotary embedding');
    const dims = pos.dims ?? this.engine.spec.headDim;
    const inv = ropeInverseFrequencies(pos.theta, dims, pos.scaling);
    const cos = new Float64Array(this.T * dims);
    const sin = new Float64Array(this.T * dims);
    for (let t = 0; t < this.T; t++) {
      for (let i = 0; i < dims / 2; i++) {
        cos[t * dims + i] = cos[t * dims + i + dims / 2] = Math.cos(t * inv[i]!);
        sin[t * dims + i] = sin[t * dims + i + dims / 2] = Math.sin(t * inv[i]!);
      }
    }
    return (this.ropeTable = { dims, cos, sin });
  }

  /**
   * R_tᵀ·g: a gradient at a rotated query/key of position t taken back through RoPE (ops.ts `rope`
   * backward: g·cos − rotate_half(g·sin) on the rotated dims; the rest passes unchanged).
   */
  private unrotate(t: number, g: ArrayLike<number>): Float64Array {
    const { dims, cos, sin } = this.rotary();
    const half = dims / 2;
    const out = Float64Array.from(g);
    for (let i = 0; i < dims; i++) {
      const c = cos[t * dims + i]!;
      out[i] = i < half ? g[i]! * c + g[i + half]! * sin[t * dims + i + half]! : g[i]! * c - g[i - half]! * sin[t * dims + i - half]!;
    }
    return out;
  }

  /**
   * With the norm's scale held constant, x_k · c(y) = (γ ⊙ x̃_k) · y for the shared backward c of
   * `sharedNormBack` (x̃ = x − mean x for LayerNorm, x for RMSNorm), so the K-path inflow of head h
   * from key k is (R_k · W_K[h] (γ ⊙ x̃_k)) · Q̃_q. Returns those rotated key inputs [T, dh] per
   * (layer, kv head), i.e. the rotated keys without bias, computed once instead of per query.
   */
  private readonly keyInputCache = new Map<string, Float64Array>();
  private rotatedKeyInputs(l: number, h: number): Float64Array {
    const spec = this.engine.spec;
    const head = Math.floor(h / (spec.nHeads / spec.nKvHeads));
    const cacheKey = `${l}:${head}`;
    const cached = this.keyInputCache.get(cacheKey);
    if (cached) return cached;
    const { T, D } = this;
    const dh = spec.headDim;
    const ref = spec.layers[l]!.k;
    const W = this.weight(ref.weight);
    const width = W.length / D;
    const first = (ref.outSlice?.[0] ?? 0) + head * dh;
    const gamma = this.weight(spec.layers[l]!.ln1.weight);
    const x = this.get(`pg_x_pre_${l}`);
    const { dims, cos, sin } = this.rotary();
    const half = dims / 2;
    const out = new Float64Array(T * dh);
    const v = new Float64Array(D);
    const p = new Float64Array(dh);
    for (let t = 0; t < T; t++) {
      let mean = 0;
      if (spec.norm.kind === 'layernorm') {
        for (let d = 0; d < D; d++) mean += x[t * D + d]!;
        mean /= D;
      }
      for (let d = 0; d < D; d++) v[d] = gamma[d]! * (x[t * D + d]! - mean);
      for (let j = 0; j < dh; j++) {
        let sum = 0;
        if (ref.layout === 'out_in') for (let d = 0, o = (first + j) * D; d < D; d++) sum += W[o + d]! * v[d]!;
        else for (let d = 0, o = first + j; d < D; d++) sum += W[d * width + o]! * v[d]!;
        p[j] = sum;
      }
      // R_t·p (ops.ts `rope` forward: p·cos + rotate_half(p)·sin on the rotated dims).
      for (let j = 0; j < dh; j++) {
        const c = cos[t * dims + j];
        out[t * dh + j] = j >= dims ? p[j]! : j < half ? p[j]! * c! - p[j + half]! * sin[t * dims + j]! : p[j]! * c! + p[j - half]! * sin[t * dims + j]!;
      }
    }
    this.keyInputCache.set(cacheKey, out);
    return out;
  }

  /** W[h]ᵀ·u [D] for head h's slice of the q/k/v projection of layer l (kv heads shared for GQA). */
  private project(which: 'v' | 'k' | 'q', l: number, h: number, u: ArrayLike<number>): Float32Array {
    const spec = this.engine.spec;
    const ref = spec.layers[l]![which];
    if (ref.outRows) throw new InputError('prompt graphs do not support interleaved fused q/k/v projections (GPT-NeoX) with RoPE yet');
    const W = this.weight(ref.weight);
    const { D } = this;
    const dh = spec.headDim;
    const head = which === 'q' ? h : Math.floor(h / (spec.nHeads / spec.nKvHeads));
    const first = (ref.outSlice?.[0] ?? 0) + head * dh;
    const width = W.length / D;
    const out = new Float32Array(D);
    for (let j = 0; j < dh; j++) {
      const uj = u[j]!;
      if (uj === 0) continue;
      if (ref.layout === 'out_in') for (let d = 0, o = (first + j) * D; d < D; d++) out[d] = out[d]! + W[o + d]! * uj;
      else for (let d = 0, o = first + j; d < D; d++) out[d] = out[d]! + W[d * width + o]! * uj;
    }
    return out;
  }

  /**
   * `y` from the weights and the graph's q, k, g̃_z and g̃_QKᵀ, through RoPE where the model has it:
   *   v: W_V[h]ᵀ·g̃_z[q,h]
   *   k: W_K[h]ᵀ·R_kᵀ·Q̃[q,h]        (Q̃, K̃: rotated, as they enter Q·Kᵀ; the K-path rule factor
   *   q: W_Q[h]ᵀ·R_qᵀ·f_q Σ_k g̃_QKᵀ[q,k]·K̃[k,h]    and g̃_QKᵀ[q,k] are applied by the caller for k)
   * Exposed so that tests compare it with the graph's own products on models without RoPE.
   */
  yFromWeights(which: 'v' | 'k' | 'q', l: number, h: number, q: number, k = q): Float32Array {
    const { T } = this;
    const dh = this.engine.spec.headDim;
    const rope = this.engine.spec.positional.kind === 'rope';
    if (which === 'v') {
      const H = this.H;
      return this.project('v', l, h, this.get(`pg_g_z_${l}`).subarray((q * H + h) * dh, (q * H + h + 1) * dh));
    }
    if (which === 'k') {
      const query = this.get(`pg_q_${l}`).subarray((h * T + q) * dh, (h * T + q + 1) * dh);
      return this.project('k', l, h, rope ? this.unrotate(k, query) : query);
    }
    const fq = COMPOSITE_RULES[this.mode].qk[0];
    const gqk = this.get(`pg_g_qk_${l}`);
    const keys = this.get(`pg_k_${l}`);
    const g = new Float64Array(dh);
    for (let key = 0; key < T; key++) {
      const s = fq * gqk[(h * T + q) * T + key]!;
      if (s !== 0) for (let j = 0; j < dh; j++) g[j] = g[j]! + s * keys[(h * T + key) * dh + j]!;
    }
    return this.project('q', l, h, rope ? this.unrotate(q, g) : g);
  }

  /**
   * Σ_t x_pre[t] · row[t] of `headRow` without forming the row (every head node needs its inflow;
   * only kept ones need their edges). Uses the shared norm backward when the rule allows it.
   */
  headInflow(l: number, h: number, q: number): number {
    const { T, D } = this;
    const rules = COMPOSITE_RULES[this.mode];
    const [fq, fk] = rules.qk;
    const fv = rules.av[1];
    const cV = this.sharedNormBack(l, this.y('v', l, h, q));
    if (!cV) {
      const row = this.headRow(l, h, q);
      const x = this.get(`pg_x_pre_${l}`);
      let inflow = dot(x, q * D, row.query, 0, D);
      for (let k = 0; k <= q; k++) inflow += dot(x, k * D, row.ov[k]!, 0, D) + dot(x, k * D, row.key[k]!, 0, D);
      return inflow;
    }
    const rope = this.engine.spec.positional.kind === 'rope';
    const cK = fk === 0 || rope ? null : this.sharedNormBack(l, this.y('k', l, h, q));
    const probs = this.get(`pg_probs_${l}`);
    const gqk = this.get(`pg_g_qk_${l}`);
    const x = this.get(`pg_x_pre_${l}`);
    const r = this.normInverse(l);
    const row = (h * T + q) * T;
    const dh = this.engine.spec.headDim;
    const keyInputs = rope && fk !== 0 ? this.rotatedKeyInputs(l, h) : null;
    const query = keyInputs ? this.get(`pg_q_${l}`).subarray((h * T + q) * dh, (h * T + q + 1) * dh) : null;
    let inflow = 0;
    for (let k = 0; k <= q; k++) {
      const gs = gqk[row + k]!;
      inflow += fv * probs[row + k]! * r[k]! * dot(x, k * D, cV, 0, D);
      if (cK && gs !== 0) inflow += fk * gs * r[k]! * dot(x, k * D, cK, 0, D);
      // RoPE: x_k · c(W_K[h]ᵀ R_kᵀ Q̃_q) = (R_k W_K[h] (γ ⊙ x̃_k)) · Q̃_q (`rotatedKeyInputs`), O(dh) per key.
      if (rope && fk !== 0 && gs !== 0) inflow += fk * gs * r[k]! * dot64(keyInputs!, k * dh, query!, 0, dh);
    }
    if (fq !== 0) inflow += dot(x, q * D, this.normBack(l, q, this.y('q', l, h, q)), 0, D);
    return inflow;
  }

  /**
   * The gated backward row of head h at query q in layer l, at the residual stream below it,
   * split by path: `ov[k]`/`key[k]` [D] for keys 0..q, `query` [D] at q. Scales (the rule factors,
   * p[q,k], g̃_QK[q,k]) are folded in.
   */
  headRow(l: number, h: number, q: number): { ov: Float32Array[]; key: Float32Array[]; query: Float32Array } {
    const { T } = this;
    const rules = COMPOSITE_RULES[this.mode];
    const [fq, fk] = rules.qk;
    const fv = rules.av[1];
    const probs = this.get(`pg_probs_${l}`);
    const gqk = this.get(`pg_g_qk_${l}`);
    const row = (h * T + q) * T;
    const yV = this.y('v', l, h, q);
    const rope = this.engine.spec.positional.kind === 'rope';
    const yK = fk === 0 ? null : (k: number) => this.y('k', l, h, q, k);
    const r = this.normInverse(l);
    const sharedV = this.sharedNormBack(l, yV);
    const sharedK = yK && !rope ? this.sharedNormBack(l, yK(q)) : null;
    const scaled = (shared: Float32Array | null, y: Float32Array, k: number, factor: number) => {
      const out = shared ? shared.slice() : this.normBack(l, k, y);
      const f = shared ? factor * r[k]! : factor;
      for (let d = 0; d < out.length; d++) out[d] = out[d]! * f;
      return out;
    };
    const ov: Float32Array[] = [];
    const key: Float32Array[] = [];
    for (let k = 0; k <= q; k++) {
      ov.push(scaled(sharedV, yV, k, fv * probs[row + k]!));
      const yk = yK ? (rope ? yK(k) : yK(q)) : null;
      key.push(yk ? scaled(sharedK ?? (rope ? this.sharedNormBack(l, yk) : null), yk, k, fk * gqk[row + k]!) : new Float32Array(this.D));
    }
    const query = fq === 0 ? new Float32Array(this.D) : this.normBack(l, q, this.y('q', l, h, q));
    return { ov, key, query };
  }

}

function dot64(a: Float64Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[aOff + i]! * b[bOff + i]!;
  return sum;
}

function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[aOff + i]! * b[bOff + i]!;
  return sum;
}

/** A source of residual-stream writes: its node id and its output vector at position t. */
interface Source {
  readonly node: string;
  readonly layer: number;
  /** Sources at layer l feed heads of layers > l and MLPs of layers ≥ l (heads, o-bias) or > l (MLPs). */
  readonly afterAttention: boolean;
  readonly data: Float32Array;
  readonly offset: (t: number) => number;
  readonly perPosition: boolean;
}

export async function buildPromptGraph(engine: Engine, ids: readonly number[], target: Target, options: PromptGraphOptions = {}): Promise<PromptGraph> {
  const mode = options.mode ?? 'attnlrp';
  const nodeThreshold = options.nodeThreshold ?? PROMPT_GRAPH_DEFAULTS.nodeThreshold;
  const edgeThreshold = options.edgeThreshold ?? PROMPT_GRAPH_DEFAULTS.edgeThreshold;
  const qkThreshold = options.qkThreshold ?? edgeThreshold;
  for (const [name, value] of [['node threshold', nodeThreshold], ['edge threshold', edgeThreshold], ['QK threshold', qkThreshold]] as const) {
    if (!(value > 0 && value <= 1)) throw new InputError(`the ${name} must be in (0, 1], got ${value}`);
  }
  if (target.kind === 'set_diff') throw new InputError('prompt graphs explain a logit or a logit difference, not a set difference');
  const pt = await PromptTensors.compute(engine, ids, target, mode);
  const { L, H, D, T } = pt;
  const P = target.position;
  const tokenizer = engine.tokenizer;
  const tokens = tokenizer ? ids.map((id) => tokenizer.tokenString(id)) : null;

  // --- Node relevances (ungated pass).
  const x0 = pt.get('pg_x_pre_0');
  const g0 = pt.get('pg_g_pre_0');
  const embedding = Array.from({ length: T }, (_, t) => dot(x0, t * D, g0, t * D, D));
  interface Candidate { id: string; kind: 'head' | 'mlp'; layer: number; head?: number; position: number; relevance: number; inflow: number }
  const candidates: Candidate[] = [];
  const errorByLayer = new Float64Array(L + 1);
  for (let l = 0; l < L; l++) {
    const gMid = pt.get(`pg_g_mid_${l}`);
    const heads = pt.get(`pg_head_out_${l}`);
    const xPre = pt.get(`pg_x_pre_${l}`);
    const oBias = pt.oBias(l);
    for (let q = 0; q < T; q++) {
      errorByLayer[l] = errorByLayer[l]! + dot(oBias, q * D, gMid, q * D, D);
      for (let h = 0; h < H; h++) {
        const relevance = dot(heads, (q * H + h) * D, gMid, q * D, D);
        const inflow = pt.headInflow(l, h, q);
        const id = promptNodeId.head(l, h, q);
        candidates.push({ id, kind: 'head', layer: l, head: h, position: q, relevance, inflow });
        errorByLayer[l] = errorByLayer[l]! + relevance - inflow;
      }
    }
    const mlpOut = pt.get(`pg_mlp_out_${l}`);
    const gPost = pt.gPost(l);
    const mlpInflow = (t: number) => {
      // resid_mid = resid_pre + attention output; the MLP row is g̃_mid − g̃_post at t.
      const attn = pt.get(`pg_attn_out_${l}`);
      let sum = 0;
      for (let d = 0; d < D; d++) sum += (xPre[t * D + d]! + attn[t * D + d]!) * (gMid[t * D + d]! - gPost[t * D + d]!);
      return sum;
    };
    for (let t = 0; t < T; t++) {
      const relevance = dot(mlpOut, t * D, gPost, t * D, D);
      const inflow = mlpInflow(t);
      candidates.push({ id: promptNodeId.mlp(l, t), kind: 'mlp', layer: l, position: t, relevance, inflow });
      errorByLayer[l] = errorByLayer[l]! + relevance - inflow;
    }
  }
  const xFinal = pt.get('pg_x_final');
  const gFinal = pt.get('pg_g_final');
  let residFinal = 0;
  for (let t = 0; t < T; t++) residFinal += dot(xFinal, t * D, gFinal, t * D, D);
  errorByLayer[L] = pt.targetValue - residFinal;

  // --- Node pruning: the fewest heads/MLPs covering nodeThreshold of Σ|R|.
  const ranked = [...candidates].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance));
  const totalAbs = ranked.reduce((s, c) => s + Math.abs(c.relevance), 0);
  const influence = new Map<string, number>();
  const kept = new Set<string>();
  let cumulative = 0;
  for (const c of ranked) {
    if (!options.keepAll && totalAbs > 0 && cumulative >= nodeThreshold * totalAbs) break;
    cumulative += Math.abs(c.relevance);
    influence.set(c.id, totalAbs === 0 ? 1 : cumulative / totalAbs);
    kept.add(c.id);
  }
  const nodeShare = totalAbs === 0 ? 1 : cumulative / totalAbs;

  // --- Sources: embeddings, heads, o-biases (error node of their layer), MLP blocks.
  const allSources: Source[] = [{ node: 'input', layer: -1, afterAttention: true, data: x0, offset: (t) => t * D, perPosition: true }];
  for (let l = 0; l < L; l++) {
    const heads = pt.get(`pg_head_out_${l}`);
    for (let h = 0; h < H; h++) allSources.push({ node: componentId.head(l, h), layer: l, afterAttention: false, data: heads, offset: (t) => (t * H + h) * D, perPosition: true });
    allSources.push({ node: promptNodeId.error(l), layer: l, afterAttention: false, data: pt.oBias(l), offset: (t) => t * D, perPosition: false });
    allSources.push({ node: `m${l}`, layer: l, afterAttention: true, data: pt.get(`pg_mlp_out_${l}`), offset: (t) => t * D, perPosition: true });
  }
  const sourceId = (s: Source, t: number): string | null => {
    if (!s.perPosition) return s.node;
    const id = s.node === 'input' ? promptNodeId.input(t) : `${s.node}@${t}`;
    return s.node === 'input' || kept.has(id) ? id : null;
  };
  /** Sources feeding a head of layer l (all earlier layers) or an MLP of layer l (also layer l's heads). */
  const feeding = (l: number, kind: 'head' | 'mlp' | 'logits') =>
    allSources.filter((s) => s.layer < l || (kind === 'mlp' && s.layer === l && !s.afterAttention));

  // --- Edges into kept nodes.
  const edgeMap = new Map<string, { source: string; target: string; relevance: number; ov: number; qkKey: number; qkQuery: number; head: boolean }>();
  const addEdge = (source: string, target: string, value: number, path: 'ov' | 'qkKey' | 'qkQuery' | null, head: boolean) => {
    const key = `${source}->${target}`;
    let edge = edgeMap.get(key);
    if (!edge) edgeMap.set(key, (edge = { source, target, relevance: 0, ov: 0, qkKey: 0, qkQuery: 0, head }));
    edge.relevance += value;
    if (path) edge[path] += value;
  };
  const attention: Record<string, HeadAttention> = {};
  for (const c of candidates) {
    if (!kept.has(c.id)) continue;
    if (c.kind === 'head') {
      const row = pt.headRow(c.layer, c.head!, c.position); // recomputed: rows of all nodes would not fit on wide models
      const q = c.position;
      const sources = feeding(c.layer, 'head');
      for (const s of sources) {
        for (let k = 0; k <= q; k++) {
          const id = sourceId(s, k);
          if (id === null) continue;
          addEdge(id, c.id, dot(s.data, s.offset(k), row.ov[k]!, 0, D), 'ov', true);
          addEdge(id, c.id, dot(s.data, s.offset(k), row.key[k]!, 0, D), 'qkKey', true);
        }
        const id = sourceId(s, q);
        if (id !== null) addEdge(id, c.id, dot(s.data, s.offset(q), row.query, 0, D), 'qkQuery', true);
      }
      const xPre = pt.get(`pg_x_pre_${c.layer}`);
      const probs = pt.get(`pg_probs_${c.layer}`);
      const keys = Array.from({ length: q + 1 }, (_, k) => k);
      attention[c.id] = {
        keys,
        pattern: keys.map((k) => probs[(c.head! * T + q) * T + k]!),
        ov: keys.map((k) => dot(xPre, k * D, row.ov[k]!, 0, D)),
        qkKey: keys.map((k) => dot(xPre, k * D, row.key[k]!, 0, D)),
        qkQuery: dot(xPre, q * D, row.query, 0, D),
      };
    } else {
      const gMid = pt.get(`pg_g_mid_${c.layer}`);
      const gPost = pt.gPost(c.layer);
      const g = new Float32Array(D);
      for (let d = 0; d < D; d++) g[d] = gMid[c.position * D + d]! - gPost[c.position * D + d]!;
      for (const s of feeding(c.layer, 'mlp')) {
        const id = sourceId(s, c.position);
        if (id !== null) addEdge(id, c.id, dot(s.data, s.offset(c.position), g, 0, D), null, false);
      }
    }
    addEdge(promptNodeId.error(c.layer), c.id, c.relevance - c.inflow, null, false); // absorbed in the node: no path split
  }
  const logitId = promptNodeId.logits(P);
  for (const s of feeding(L, 'logits')) {
    const id = sourceId(s, P);
    if (id !== null) addEdge(id, logitId, dot(s.data, s.offset(P), gFinal, P * D, D), null, false);
  }
  addEdge(promptNodeId.error(L), logitId, errorByLayer[L]!, null, false);

  // --- Edge pruning: the fewest edges covering edgeThreshold of Σ|edge|.
  const computed = [...edgeMap.values()].filter((e) => e.relevance !== 0);
  const edgeTotal = computed.reduce((s, e) => s + Math.abs(e.relevance), 0);
  const edgesSorted = [...computed].sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance));
  const keptEdges: typeof computed = [];
  let edgeCumulative = 0;
  for (const e of edgesSorted) {
    if (!options.keepAll && edgeTotal > 0 && edgeCumulative >= edgeThreshold * edgeTotal) break;
    edgeCumulative += Math.abs(e.relevance);
    keptEdges.push(e);
  }
  // --- QK edges: their own selection (README "Prompt graphs", Pruning). With a saturated pattern
  // the softmax rule passes little relevance to the scores, so a head's QK inputs are small next to
  // its OV inputs and one global ranking drops them, although they decide where the head reads.
  // Each kept head's QK channel is treated as a target of its own, as circuit-tracer scores edges
  // (graph.py `compute_edge_influence`: |edge| normalised over the target's inputs, times the
  // target's influence): score = |qk_e| / Σ_{e→n} |qk_e| · |R_n| / Σ_{kept heads} |R|, and the
  // fewest QK parts covering `qkThreshold` of Σ score are kept, added to the edges kept above.
  const qkScored: { edge: (typeof computed)[number]; score: number }[] = [];
  {
    const qkInflow = new Map<string, number>();
    for (const e of computed) if (e.head) qkInflow.set(e.target, (qkInflow.get(e.target) ?? 0) + Math.abs(e.qkKey + e.qkQuery));
    const headTotal = candidates.filter((c) => c.kind === 'head' && kept.has(c.id)).reduce((s, c) => s + Math.abs(c.relevance), 0);
    const relevanceOf = new Map(candidates.map((c) => [c.id, c.relevance]));
    for (const e of computed) {
      const total = qkInflow.get(e.target) ?? 0;
      const qk = Math.abs(e.qkKey + e.qkQuery);
      if (!e.head || qk === 0 || total === 0 || headTotal === 0) continue;
      qkScored.push({ edge: e, score: (qk / total) * (Math.abs(relevanceOf.get(e.target)!) / headTotal) });
    }
  }
  qkScored.sort((a, b) => b.score - a.score);
  const qkScoreTotal = qkScored.reduce((s, e) => s + e.score, 0);
  const qkSelected = new Set<string>();
  let qkCumulative = 0;
  for (const { edge, score } of qkScored) {
    if (!options.keepAll && qkScoreTotal > 0 && qkCumulative >= qkThreshold * qkScoreTotal) break;
    qkCumulative += score;
    qkSelected.add(`${edge.source}->${edge.target}`);
  }
  const keptIds = new Set(keptEdges.map((e) => `${e.source}->${e.target}`));
  let qkAdded = 0;
  for (const { edge } of qkScored) {
    const id = `${edge.source}->${edge.target}`;
    if (qkSelected.has(id) && !keptIds.has(id)) {
      keptIds.add(id);
      keptEdges.push(edge);
      qkAdded++;
    }
  }
  const edges: PromptEdge[] = keptEdges.map((e) => ({
    id: `${e.source}->${e.target}`,
    source: e.source,
    target: e.target,
    relevance: e.relevance,
    ...(e.head ? { paths: { ov: e.ov, qkKey: e.qkKey, qkQuery: e.qkQuery } } : {}),
    ...(qkSelected.has(`${e.source}->${e.target}`) ? { qkSelected: true } : {}),
  }));

  // --- Nodes.
  const nodes: PromptNode[] = embedding.map((relevance, t) => ({
    id: promptNodeId.input(t),
    kind: 'input' as const,
    layer: -1,
    position: t,
    relevance,
    ...(tokens ? { token: tokens[t]! } : {}),
  }));
  for (const c of candidates) {
    if (!kept.has(c.id)) continue;
    nodes.push({
      id: c.id,
      kind: c.kind,
      layer: c.layer,
      position: c.position,
      ...(c.head !== undefined ? { head: c.head } : {}),
      component: c.kind === 'head' ? `a${c.layer}.h${c.head}` : `m${c.layer}`,
      relevance: c.relevance,
      inflow: c.inflow,
      error: c.relevance - c.inflow,
      influence: influence.get(c.id)!,
    });
  }
  for (let l = 0; l <= L; l++) nodes.push({ id: promptNodeId.error(l), kind: 'error', layer: l, position: null, relevance: errorByLayer[l]! });
  nodes.push({ id: logitId, kind: 'logits', layer: L, position: P, relevance: pt.targetValue, inflow: residFinal, error: errorByLayer[L]! });

  const embeddings = embedding.reduce((a, b) => a + b, 0);
  const errors = Array.from(errorByLayer).reduce((a, b) => a + b, 0);
  const sum = embeddings + errors;
  const probability = softmaxAt(pt.logits, target.token);
  const graph: PromptGraph = {
    version: 1,
    kind: 'prompt-graph',
    model: { name: engine.folder.split(/[\\/]/).filter(Boolean).pop() ?? 'model', nLayers: L, nHeads: H, dModel: D, dMlp: engine.spec.dMlp },
    task: { name: 'prompt', metric: target.kind === 'logit_diff' ? 'logit_diff' : target.kind === 'contrastive' ? 'contrastive' : 'logit', examples: 1 },
    method: { name: mode },
    granularity: 'heads+mlps',
    prompt: { text: options.text ?? null, ids: [...ids], tokens },
    target: {
      position: P,
      token: target.token,
      text: tokenizer ? tokenizer.tokenString(target.token) : null,
      ...(target.foil !== undefined ? { foil: target.foil, foilText: tokenizer ? tokenizer.tokenString(target.foil) : null } : {}),
      value: pt.targetValue,
      probability,
      competitors: Array.from(pt.logits.keys())
        .sort((a, b) => pt.logits[b]! - pt.logits[a]!)
        .slice(0, 5)
        .map((token) => ({ token, text: tokenizer ? tokenizer.tokenString(token) : null, logit: pt.logits[token]!, probability: softmaxAt(pt.logits, token) })),
    },
    nodes,
    edges,
    attention,
    ranking: ranked.slice(0, 50).map((c) => ({ id: c.id, component: c.kind === 'head' ? `a${c.layer}.h${c.head}` : `m${c.layer}`, layer: c.layer, ...(c.head !== undefined ? { head: c.head } : {}), position: c.position, relevance: c.relevance })),
    conservation: { explained: pt.targetValue, embeddings, errors, sum, relativeError: Math.abs(sum - pt.targetValue) / Math.max(Math.abs(pt.targetValue), 1e-12) },
    selection: {
      nodeThreshold,
      edgeThreshold,
      candidates: candidates.length,
      keptNodes: kept.size,
      nodeShare,
      computedEdges: computed.length,
      keptEdges: edges.length,
      edgeShare: edgeTotal === 0 ? 1 : edgeCumulative / edgeTotal,
      qkThreshold,
      qkEdges: qkSelected.size,
      qkAdded,
      qkShare: qkScoreTotal === 0 ? 1 : qkCumulative / qkScoreTotal,
    },
    metrics: { completeness: 0, replacement: 0 },
  };
  Object.assign(graph.metrics, graphScores(graph));
  return graph;
}

function softmaxAt(logits: Float32Array, index: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Math.exp(logits[index]! - max) / sum;
}

/**
 * circuit-tracer's graph scores on the pruned graph (`compute_graph_scores`): with |edge|
 * weights normalised per target node, the influence of every node on the logit (all paths);
 * `replacement` = influence of embeddings / (embeddings + error nodes), `completeness` = the
 * output-influence-weighted share of each node's inputs that does not come from error nodes.
 */
export function graphScores(graph: Pick<PromptGraph, 'nodes' | 'edges'>): { completeness: number; replacement: number } {
  const inputs = new Map<string, { source: string; weight: number }[]>();
  const inTotal = new Map<string, number>();
  for (const e of graph.edges) {
    const w = Math.abs(e.relevance);
    if (!inputs.has(e.target)) inputs.set(e.target, []);
    inputs.get(e.target)!.push({ source: e.source, weight: w });
    inTotal.set(e.target, (inTotal.get(e.target) ?? 0) + w);
  }
  const kindOf = new Map(graph.nodes.map((n) => [n.id, n.kind]));
  const logit = graph.nodes.find((n) => n.kind === 'logits')!.id;
  const influence = new Map<string, number>();
  // Propagate from the logit down: nodes in decreasing (layer, kind) order are a topological order.
  const order = [...graph.nodes].sort((a, b) => rank(b) - rank(a));
  const carried = new Map<string, number>([[logit, 1]]);
  for (const node of order) {
    const mass = carried.get(node.id) ?? 0;
    if (node.id !== logit) influence.set(node.id, mass);
    const total = inTotal.get(node.id) ?? 0;
    if (mass === 0 || total === 0) continue;
    for (const { source, weight } of inputs.get(node.id)!) carried.set(source, (carried.get(source) ?? 0) + (mass * weight) / total);
  }
  let tokenInfluence = 0;
  let errorInfluence = 0;
  for (const [id, value] of influence) {
    if (kindOf.get(id) === 'input') tokenInfluence += value;
    if (kindOf.get(id) === 'error') errorInfluence += value;
  }
  let weighted = 0;
  let weights = 0;
  for (const node of graph.nodes) {
    const total = inTotal.get(node.id) ?? 0;
    if (total === 0) continue;
    const fromErrors = inputs.get(node.id)!.filter((i) => kindOf.get(i.source) === 'error').reduce((s, i) => s + i.weight, 0);
    const output = (influence.get(node.id) ?? 0) + (node.id === logit ? 1 : 0);
    weighted += (1 - fromErrors / total) * output;
    weights += output;
  }
  return {
    replacement: tokenInfluence + errorInfluence === 0 ? 0 : tokenInfluence / (tokenInfluence + errorInfluence),
    completeness: weights === 0 ? 0 : weighted / weights,
  };
}

/** Topological rank: within a layer heads before the MLP; error nodes feed their own layer, so sit below it. */
function rank(node: PromptNode): number {
  switch (node.kind) {
    case 'input':
      return -10;
    case 'error':
      return node.layer * 10 - 5;
    case 'head':
      return node.layer * 10;
    case 'mlp':
      return node.layer * 10 + 1;
    case 'logits':
      return 1e9;
  }
}

// ---------------------------------------------------------------------------------------------
// Verification: predicted (relevance) against measured (ablation at the node's position).

export type PromptAblation = 'zero' | 'mean' | 'resample';
export const PROMPT_ABLATIONS: readonly PromptAblation[] = ['zero', 'mean', 'resample'];

export interface PromptVerification {
  readonly ablation: PromptAblation;
  readonly nodes: { id: string; predicted: number; measured: number }[];
  readonly pearson: number;
  readonly spearman: number;
}

/** A head/MLP node at a position, for `ablatePromptNodes` (`a2.h2@19`, `m0@13`). */
export function parsePromptNode(id: string, engine: Engine): { id: string; component: string; kind: 'head' | 'mlp'; layer: number; head?: number; position: number } {
  const match = /^(a(\d+)\.h(\d+)|m(\d+))@(\d+)$/.exec(id);
  if (!match) throw new InputError(`"${id}" is not a prompt-graph head or MLP node (a<l>.h<h>@<position> or m<l>@<position>)`);
  const layer = Number(match[2] ?? match[4]);
  const position = Number(match[5]);
  if (layer >= engine.spec.nLayers) throw new InputError(`node "${id}": layer ${layer} does not exist (the model has ${engine.spec.nLayers})`);
  if (match[3] !== undefined) {
    const head = Number(match[3]);
    if (head >= engine.spec.nHeads) throw new InputError(`node "${id}": head ${head} does not exist (${engine.spec.nHeads} heads per layer)`);
    return { id, component: `a${layer}.h${head}`, kind: 'head', layer, head, position };
  }
  return { id, component: `m${layer}`, kind: 'mlp', layer, position };
}

/**
 * The explained value of a prompt graph's target with each node ablated alone at its position
 * (`full` is the unablated value). A head is replaced in z at its query position, an MLP block in
 * its activations at its position; every other position keeps its clean activation, which is
 * exact because a layer's activations do not depend on that layer's own outputs. `mean` is the
 * mean over the prompt's positions; `resample` takes the activation of `corruptedIds` (same
 * length) at the same position. This is also what the panel runs to ablate a clicked node.
 */
export async function ablatePromptNodes(
  engine: Engine,
  graph: Pick<PromptGraph, 'prompt' | 'target' | 'task'>,
  nodeIds: readonly string[],
  ablation: PromptAblation,
  corruptedIds?: readonly number[],
): Promise<{ full: number; ablated: number[] }> {
  if (!PROMPT_ABLATIONS.includes(ablation)) throw new InputError(`unknown ablation "${String(ablation)}" (use ${PROMPT_ABLATIONS.join(', ')})`);
  const ids = graph.prompt.ids;
  const T = ids.length;
  if (ablation === 'resample' && (!corruptedIds || corruptedIds.length !== T)) {
    throw new InputError(`resample ablation needs a corrupted prompt of the same length (${T} tokens)`);
  }
  const nodes = nodeIds.map((id) => parsePromptNode(id, engine));
  for (const node of nodes) if (node.position >= T) throw new InputError(`node "${node.id}": position ${node.position} is past the prompt's ${T} tokens`);
  const { nHeads: H, headDim: dh, dMlp: F } = engine.spec;
  const [clean] = await engine.forward({ ids: [ids], hooks: true, allLogits: true });
  const [corrupted] = ablation === 'resample' ? await engine.forward({ ids: [corruptedIds!], hooks: true }) : [undefined];
  const value = (logits: Float32Array) => {
    const V = engine.spec.vocabSize;
    const at = logits.subarray(graph.target.position * V, (graph.target.position + 1) * V);
    if (graph.task.metric === 'logit_diff') return at[graph.target.token]! - at[graph.target.foil!]!;
    // contrastive: the seed is +1 at the target and −1/V everywhere (engine.ts fillSeed)
    return graph.task.metric === 'contrastive' ? at[graph.target.token]! - at.reduce((s, x) => s + x, 0) / V : at[graph.target.token]!;
  };
  const ablated: number[] = [];
  for (const node of nodes) {
    const heads = clean!.headZ!.map((z) => z.slice());
    const neurons = clean!.mlpPost!.map((p) => p.slice());
    const { layer: l, position: t } = node;
    // One slot (a head's dh values or the block's F activations) at position t is replaced.
    const [target, source, width, offset, stride] =
      node.kind === 'head'
        ? [heads[l]!, clean!.headZ![l]!, dh, (t * H + node.head!) * dh, H * dh]
        : [neurons[l]!, clean!.mlpPost![l]!, F, t * F, F];
    for (let j = 0; j < width; j++) {
      if (ablation === 'zero') target[offset + j] = 0;
      else if (ablation === 'resample') target[offset + j] = (node.kind === 'head' ? corrupted!.headZ![l]! : corrupted!.mlpPost![l]!)[offset + j]!;
      else {
        let mean = 0;
        for (let s = 0; s < T; s++) mean += source[offset - t * stride + s * stride + j]!;
        target[offset + j] = mean / T;
      }
    }
    // One forward per node: the interventions API ablates the same components in every row.
    const [row] = await engine.forward({ ids: [ids], allLogits: true, interventions: { ablate: [node.component], headReplacement: [heads], neuronReplacement: [neurons] } });
    ablated.push(value(row!.logits!));
  }
  return { full: value(clean!.logits!), ablated };
}

/**
 * Predicted (relevance) against measured effect (clean − ablated, `ablatePromptNodes`) for the
 * top `count` heads/MLP nodes of the graph's ranking, with Pearson and Spearman correlations.
 */
export async function verifyPromptGraph(
  engine: Engine,
  graph: PromptGraph,
  options: { ablation?: PromptAblation; count?: number; corruptedIds?: readonly number[] } = {},
): Promise<PromptVerification> {
  const ablation = options.ablation ?? 'zero';
  const top = graph.ranking.slice(0, options.count ?? 20);
  const { full, ablated } = await ablatePromptNodes(engine, graph, top.map((n) => n.id), ablation, options.corruptedIds);
  const measured = ablated.map((value) => full - value);
  const predicted = top.map((n) => n.relevance);
  return {
    ablation,
    nodes: top.map((n, i) => ({ id: n.id, predicted: predicted[i]!, measured: measured[i]! })),
    pearson: pearson(predicted, measured),
    spearman: pearson(ranks(predicted), ranks(measured)),
  };
}

export function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  if (n < 2) return NaN;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}

function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) out[order[k]![1]] = (i + j) / 2;
    i = j + 1;
  }
  return out;
}
