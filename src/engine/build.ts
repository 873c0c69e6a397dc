/**
 * The relevance-graph compiler: from an architecture spec, one ONNX graph that runs the
 * forward pass and, when asked, the modified backward pass of a composite, with named hook
 * outputs and intervention inputs. One builder serves GPT-2, OPT and Llama: the families
 * differ only in what the spec says (norm kind, positional scheme, gating, biases, GQA).
 *
 * Graph inputs
 *   input_ids      int64 [B, T]
 *   seed           float [B, V]   gradient at the explained position's logits (attribution)
 *   seed_position  float [B, T]   one-hot of the explained position (attribution)
 *   head_keep      float [B, L, H]      1 keeps a head's z, 0 replaces it (interventions)
 *   head_repl      float [B, L, T, H, dh] replacement z
 *   neuron_keep    float [B, L, F]      same for MLP activations
 *   neuron_repl    float [B, L, T, F]
 *   embedding_scale, baseline_scale float [B], baseline_ids int64 [B, T]   integration path (`embeddingScale`)
 * Graph outputs: see `GraphOutputs`.
 */
import { InputError } from '../models/errors';
import type { ArchSpec, LinearRef, NormRef, RopeScaling } from '../models/spec';
import { float32ToHalfBits, type SafetensorsFile } from '../models/safetensors';
import type { ModelWeights } from '../models/weights';
import type { Composite } from './api';
import { OnnxWriter } from './onnx';
import { Ops } from './ops';
import { COMPOSITE_RULES, isPlainGradient, layerGroup, type LayerGroup, type RuleTable } from './rules';
import { Tape, type Shape, type Tensor } from './tape';

export interface GraphOptions {
  /** Compile the backward pass of this composite; null builds a forward-only graph. */
  readonly composite: Composite | null;
  readonly interventions: boolean;
  /** Forward graphs: emit per-layer head z and MLP activations. */
  readonly hooks: boolean;
  /** Attribution graphs: HF names of weights whose relevance is an output. */
  readonly weightRelevance: readonly string[];
  /**
   * Attribution graphs: edge relevance. Each batch row carries gradient gates (inputs
   * `edge_gate_*`) that let one downstream node's relevance through; the graph reports every
   * upstream node's output dotted with the gradient at the residual stream feeding that node.
   */
  readonly edges?: boolean;
  /**
   * Attribution graphs: the same edge relevance as `edges` from one ungated pass on one prompt
   * (batch 1). A gradient gate leaves the gradient above it unchanged, so each downstream node's
   * row is a local backward of its own block only: the heads of a layer go through the layer's
   * recorded attention VJPs as a batch of H rows (tape.ts `localBackward`), an MLP's row is the
   * gradient its norm sends into the residual stream, the logits' row the final gradient.
   * Outputs `edges_head` [L, H, N], `edges_mlp` [L, N], `edges_logits` [N] and the inflows.
   */
  readonly localEdges?: boolean;
  /**
   * Attribution graphs: the backward pass recomputes each layer's attention maps from Q and K
   * instead of keeping them from the forward pass (activation checkpointing; default on).
   * Memory for long prompts: every layer's H T×T maps otherwise live until its backward.
   */
  readonly recomputeAttention?: boolean;
  /**
   * Weight matrices kept in half precision (GPU memory; README "Half precision"): F16 and BF16
   * tensors as the file stores them (ONNX Runtime reads them by offset), F32 ones rounded to F16.
   * Each use casts to float32, so activations, gradients and relevance stay float32; the
   * backward pass casts again where a linear layer's VJP reads its weight rather than keep a
   * float32 copy of every matrix from the forward pass to the backward one. Vectors (biases,
   * norm gains) stay float32.
   */
  readonly halfWeights?: boolean;
  /** Attribution graphs: seed every position (`target_ids`/`target_weight`) instead of one. */
  readonly sequenceTargets?: boolean;
  /** With sequence targets: contrastive seeds (target − mean over the vocabulary). */
  readonly contrastiveSequence?: boolean;
  /** Forward graphs: HF names of linear weights whose input's Σ_t x² per feature is an output (Wanda's ‖X_i‖₂²). */
  readonly inputNorms?: readonly string[];
  /**
   * Attribution graphs: position-resolved readouts for prompt graphs (src/circuits/prompt/promptGraph.ts),
   * batch row 0's forward values and (ungated) modified gradients: `pg_*` outputs, see `promptGraphOutputs`.
   */
  readonly promptGraph?: boolean;
  /**
   * Forward graphs: the logit lens (nostalgebraist 2020) with this many top tokens: the residual
   * stream before each layer and after the last, through the final norm and the unembedding.
   * Outputs `lens_values_l`/`lens_indices_l` [B, T, k] and `lens_lse_l` [B, T, 1] (log Σ exp).
   */
  readonly logitLens?: number;
  /** Attribution graphs: a rule table to use instead of the composite's entry (tests, rule search). */
  readonly rules?: RuleTable;
  /**
   * Integration path of integrated gradients (Sundararajan et al. 2017): inputs `embedding_scale`
   * α [B], `baseline_ids` [B, T] and `baseline_scale` β [B]. Each row's token embeddings become
   * x' + α(x − x') with x' = β·E[baseline_ids] (β = 0: the zero baseline; β = 1: a baseline
   * prompt's embeddings), so one run evaluates several α as batch rows. Positional embeddings
   * are not on the path. The token-embedding leaf is the displacement x − x', so
   * token_relevance = Σ_d (x − x') ⊙ α∇f(x' + α(x − x')). Unset, the graph is unchanged.
   */
  readonly embeddingScale?: boolean;
}

/** Output names, so callers never spell them twice. */
export const OUT = {
  logits: 'logits',
  logitsAt: 'logits_at',
  targetValue: 'target_value',
  tokenRelevance: 'token_relevance',
  positionRelevance: 'position_relevance',
  headRelevance: 'head_relevance',
  headRelevanceProbs: 'head_relevance_probs',
  headRelevanceScores: 'head_relevance_scores',
  headPatch: 'head_patch',
  neuronPatch: 'neuron_patch',
  mlpRelevance: 'mlp_relevance',
  residPre: 'resid_pre',
  residMid: 'resid_mid',
  residFinal: 'resid_final',
  biasLinear: 'bias_linear',
  biasLayerNorm: 'bias_layernorm',
  hookZ: (l: number) => `hook_z_${l}`,
  hookPost: (l: number) => `hook_post_${l}`,
  weight: (i: number) => `weight_relevance_${i}`,
  inputSquares: (i: number) => `input_squares_${i}`,
  edgesPre: 'edges_pre',
  edgesMid: 'edges_mid',
  edgesFinal: 'edges_final',
  edgesHead: 'edges_head',
  edgesMlp: 'edges_mlp',
  edgesLogits: 'edges_logits',
  edgesHeadInflow: 'edges_head_inflow',
  edgesMlpInflow: 'edges_mlp_inflow',
} as const;

export interface CompiledGraph {
  readonly model: Uint8Array;
  /**
   * External-data file name → its safetensors file. `data` reads the whole file into memory on
   * first use (a buffer for ORT or the graph export); session.ts instead lets ORT map `source`.
   */
  readonly externalData: { path: string; readonly data: Uint8Array; source: SafetensorsFile }[];
  readonly options: GraphOptions;
  readonly nodeCount: number;
}

interface LinearUse {
  readonly ref: LinearRef;
  readonly input: Tensor;
  readonly output: Tensor;
  /** The graph's [in, out] weight (after transpose and fused slice) and bias. */
  readonly weight: string;
  readonly bias?: string;
  /** Under a non-gradient linear rule (rules.ts `LinearRule`): z/z_ρ, W_ρ/W and b_ρ. */
  readonly ratio?: string;
  readonly weightFactor?: string;
  readonly biasRho?: string;
  /** α-β rules (ops.ts `LinearResult`): g̃_W and the bias relevance from the raw g̃_z. */
  readonly weightGrad?: (gz: string) => string;
  readonly biasRelevance?: (gz: string) => string;
}

export function compileGraph(spec: ArchSpec, weights: ModelWeights, options: GraphOptions): CompiledGraph {
  return new GraphBuilder(spec, weights, options).build();
}

class GraphBuilder {
  private readonly w = new OnnxWriter();
  private readonly tape = new Tape(this.w);
  private readonly ops: Ops;
  private readonly initializers = new Map<string, string>();
  private readonly external = new Map<string, SafetensorsFile>();
  private readonly linearUses: LinearUse[] = [];
  private readonly normBetas: { beta: string; output: Tensor }[] = [];
  /** Replacement activations and the tensor they enter, for attribution patching's Σ repl ⊙ g̃. */
  private readonly replacements: { kind: 'head' | 'neuron'; repl: string; at: Tensor }[] = [];
  /**
   * Edge attribution: each upstream node's output [n, T, D] in batch row 0 (the forward pass is
   * the same in every row), in the order input, then per layer heads, o-bias, MLP.
   */
  private readonly upstream: string[] = [];
  private readonly attribution: boolean;

  constructor(
    private readonly spec: ArchSpec,
    private readonly weights: ModelWeights,
    private readonly options: GraphOptions,
  ) {
    this.attribution = options.composite !== null;
    this.ops = new Ops(this.tape, options.rules ?? COMPOSITE_RULES[options.composite ?? 'gradient']);
  }

  build(): CompiledGraph {
    const { spec, w, ops } = this;
    const L = spec.nLayers;
    const ids = w.input('input_ids', 'int64', ['B', 'T']);
    const keep = this.options.interventions ? this.interventionInputs() : undefined;
    const gates = this.options.edges ? this.edgeGateInputs() : undefined;
    const localEdges = !!this.options.localEdges && this.attribution;
    if (gates && localEdges) throw new Error('edges and localEdges are two ways to the same outputs; ask for one');
    const edgeReadout = !!gates || localEdges;
    if (edgeReadout && !spec.preNorm) throw new Error('edge attribution needs pre-norm blocks; this model is post-norm');
    // Edges are read at resid_mid as the MLP's input; a parallel residual (the MLP reads the block
    // input) or a norm between a sublayer and the residual stream breaks that reading.
    if (edgeReadout && spec.parallelResidual) throw new InputError('edge attribution needs sequential blocks; this model has a parallel residual (use_parallel_residual)');
    // Edge and prompt-graph readouts re-derive relevance from ordinary linear gradients (x ⊙ g̃
    // at the residual cuts, per-head W_O/W_V products), which a γ/z⁺/ε linear rule changes.
    const linearRules = this.ops.rules.linear;
    if ((edgeReadout || this.options.promptGraph) && !Object.values(linearRules).every(isPlainGradient)) throw new InputError('edge attribution and prompt graphs need ε = 0 linear rules; use attnlrp, cp-lrp, gradient or ln-gradient');
    if (edgeReadout && spec.layers.some((l) => l.postAttnNorm || l.postMlpNorm)) throw new InputError('edge attribution is not available for models that normalise sublayer outputs (Gemma 2/3)');

    // Embeddings. Token (and positional) embeddings are the leaves whose relevance is read.
    const tokens = this.embeddingRows(spec.embedTokens, ids, 'embed_tokens');
    const path = this.options.embeddingScale ? this.integrationPath(tokens) : undefined;
    const tokenEmbedding = this.leafOrConstant(path?.displacement ?? tokens, ['B', 'T', this.embedDim()]);
    const embedded = path ? path.along(tokenEmbedding) : tokenEmbedding;
    let resid = spec.projectIn ? this.linear(embedded, spec.projectIn, 'project_in', 'low') : embedded;
    // Gemma's ·√d is a constant scaling (relevance passes unchanged); token relevance is read before it.
    if (spec.embedScale !== undefined) resid = ops.scale(resid, spec.embedScale, 'embed_scale');
    let positionEmbedding: Tensor | undefined;
    const positions = this.positionIds(ids);
    if (spec.positional.kind === 'learned') {
      const shifted = spec.positional.offset ? w.op1('Add', [positions, w.ints([spec.positional.offset])]) : positions;
      positionEmbedding = this.leafOrConstant(this.embeddingRows(spec.positional.weight, shifted, 'embed_positions'), ['B', 'T', spec.dModel]);
      resid = ops.add(resid, positionEmbedding, 'embed');
    }
    const pos = spec.positional;
    const rope = pos.kind === 'rope' && pos.dims !== 0 ? this.ropeTables(pos.theta, pos.scaling, 'rope') : undefined;
    // Gemma 3: sliding-window layers rotate with their own base.
    const localRope = pos.kind === 'rope' && pos.local ? this.ropeTables(pos.local.theta, pos.local.scaling, 'rope_local') : undefined;
    const ropeOf = (l: number) => (localRope && (spec.windows?.[l] ?? null) !== null ? localRope : rope);
    if (edgeReadout) this.upstream.push(this.firstRow(resid.name, 'input_row0'));
    const masks = new Map<number | null, string>();
    const maskOf = (l: number) => {
      const window = spec.windows?.[l] ?? null;
      if (!masks.has(window)) masks.set(window, this.causalMask(ids, window));
      return masks.get(window)!;
    };

    const residPre: Tensor[] = [];
    const residMid: Tensor[] = [];
    const probs: Tensor[] = [];
    const scores: Tensor[] = [];
    const attentions: { mixed: Tensor; qT: Tensor }[] = [];
    const headZ: Tensor[] = [];
    const mlpPost: Tensor[] = [];
    const promptTensors: PromptLayerTensors[] = [];
    const localLayers: LocalEdgeLayer[] = [];
    for (let l = 0; l < L; l++) {
      const layer = spec.layers[l]!;
      residPre.push(resid);
      const layerStart = this.tape.mark();
      const attnIn = spec.preNorm ? this.norm(resid, layer.ln1, `l${l}_ln1`) : resid;
      const attn = this.attention(l, attnIn, maskOf(l), ropeOf(l), keep, gates);
      probs.push(attn.probs);
      scores.push(attn.scores);
      attentions.push(attn);
      headZ.push(attn.z);
      if (this.options.hooks) w.output(OUT.hookZ(l), attn.zClean.name);
      if (edgeReadout) this.recordUpstream(l, attn.z, attn.oProjection);
      const skipAttn = gates ? ops.gradientGate(resid, this.gateAt(gates.skipAttn, l, [-1, 1, 1]), `l${l}_skip_attn_gate`) : resid;
      const attnOut = layer.postAttnNorm ? this.norm(attn.out, layer.postAttnNorm, `l${l}_post_attn_norm`) : attn.out;
      resid = ops.add(skipAttn, attnOut, `l${l}_resid_mid`);
      if (!spec.preNorm) resid = this.norm(resid, layer.ln1, `l${l}_ln1`);
      residMid.push(resid);
      // Parallel residual (GPT-NeoX): the MLP reads the block input, so resid_mid (x + attn)
      // carries only the attention's and the skip's share (oracle convention; not conserved).
      // Local edges: an identity whose gradient is what the MLP's norm alone sends into resid_mid.
      const mlpTap = localEdges ? this.gradientTap(resid, `l${l}_mlp_tap`) : undefined;
      if (localEdges) localLayers.push({ start: layerStart, z: attn.z, mlpTap: mlpTap! });
      const mlpIn = spec.preNorm ? this.norm(mlpTap ?? (spec.parallelResidual ? residPre[l]! : resid), layer.ln2, `l${l}_ln2`) : resid;
      const mlp = this.mlp(l, mlpIn, keep);
      mlpPost.push(mlp.post);
      if (this.options.promptGraph) promptTensors.push({ attn, mlpOut: mlp.out });
      if (this.options.hooks) w.output(OUT.hookPost(l), mlp.postClean.name);
      if (edgeReadout) this.upstream.push(this.firstRow(mlp.out.name, `l${l}_mlp_out_row0`));
      const mlpNormed = layer.postMlpNorm ? this.norm(mlp.out, layer.postMlpNorm, `l${l}_post_mlp_norm`) : mlp.out;
      const mlpOut = gates ? ops.gradientGate(mlpNormed, this.gateAt(gates.mlp, l, [-1, 1, 1]), `l${l}_mlp_gate`) : mlpNormed;
      const skipMlp = gates ? ops.gradientGate(resid, this.gateAt(gates.skipMlp, l, [-1, 1, 1]), `l${l}_skip_mlp_gate`) : resid;
      resid = ops.add(skipMlp, mlpOut, `l${l}_resid_post`);
      if (!spec.preNorm) resid = this.norm(resid, layer.ln2, `l${l}_ln2`);
    }
    const residFinal = resid;
    let hidden = spec.finalNorm ? this.norm(resid, spec.finalNorm, 'ln_f') : resid;
    if (spec.projectOut) hidden = this.linear(hidden, spec.projectOut, 'project_out', 'high');

    if (!this.attribution) {
      const logits = this.logitCap(this.linear(hidden, spec.lmHead, 'lm_head', 'head'));
      w.output(OUT.logits, logits.name);
      if (this.options.logitLens) {
        [...residPre, residFinal].forEach((x, l) => {
          let read = spec.finalNorm ? this.norm(x, spec.finalNorm, `lens_norm_${l}`) : x;
          if (spec.projectOut) read = this.linear(read, spec.projectOut, `lens_project_${l}`, 'high');
          const lens = this.linear(read, spec.lmHead, `lens_${l}`, 'head').name;
          const [values, indices] = w.op('TopK', [lens, w.ints([this.options.logitLens!])], { axis: -1 }, `lens_top_${l}`, 2) as [string, string];
          w.output(`lens_values_${l}`, values);
          w.output(`lens_indices_${l}`, indices, 'int64');
          w.output(`lens_lse_${l}`, w.op1('ReduceLogSumExp', [lens, w.ints([-1])], { keepdims: 1 }));
        });
      }
      (this.options.inputNorms ?? []).forEach((name, i) => {
        const use = this.linearUses.find((u) => u.ref.weight === name);
        if (!use) throw new Error(`"${name}" is not a linear weight of this model`);
        w.output(OUT.inputSquares(i), w.op1('ReduceSum', [w.op1('Mul', [use.input.name, use.input.name]), w.ints([1])], { keepdims: 0 }));
      });
      return this.finish();
    }

    // Only the explained position's logits are computed: the seed is zero everywhere else, so
    // the [T, V] logits the forward pass would need are never formed.
    if (this.options.sequenceTargets) this.seedSequence(hidden);
    else this.seedPosition(hidden);
    this.tape.backward();

    this.relevanceOutputs({ tokenEmbedding, positionEmbedding, residPre, residMid, residFinal, probs, scores, headZ, mlpPost, attentions });
    if (gates) this.edgeOutputs(residPre, residMid, residFinal);
    if (localEdges) this.localEdgeOutputs(localLayers, residPre, residMid, residFinal);
    if (this.options.promptGraph) this.promptGraphOutputs(residPre, residMid, residFinal, promptTensors);
    return this.finish();
  }

  /**
   * Seeds one position per row: `seed` [B, V] at the one-hot `seed_position` [B, T]. Only that
   * position's logits are formed: the seed is zero everywhere else, so the [T, V] logits a
   * forward pass needs are never computed.
   */
  private seedPosition(hidden: Tensor): void {
    const { w, ops, spec } = this;
    const seedPosition = w.input('seed_position', 'float32', ['B', 'T']);
    const seed = w.input('seed', 'float32', ['B', spec.vocabSize]);
    const positionMask = this.tape.constant(w.op1('Unsqueeze', [seedPosition, w.ints([2])]), ['B', 'T', 1]);
    const hiddenAt = ops.sumKeep(ops.mul(hidden, positionMask, 'hidden_masked'), 1, 'hidden_at');
    const logitsAt = this.logitCap(this.linear(hiddenAt, spec.lmHead, 'lm_head', 'head'));
    const logitsFlat = w.op1('Squeeze', [logitsAt.name, w.ints([1])]);
    w.output(OUT.logitsAt, logitsFlat);
    w.output(OUT.targetValue, w.op1('ReduceSum', [w.op1('Mul', [logitsFlat, seed]), w.ints([1])], { keepdims: 0 }));
    this.tape.seed(logitsAt, w.op1('Unsqueeze', [seed, w.ints([1])]));
  }

  /**
   * Seeds every position of a row at once: the logit of `target_ids[b, t]` weighted by
   * `target_weight[b, t]` (e.g. the true next token at every position of a calibration window,
   * explained in one backward pass). Each logit is its unembedding row dotted with the hidden
   * state, so only those rows are gathered; with `contrastiveSequence` the mean row is
   * subtracted (seed +1 at the target, −1/V everywhere).
   */
  private seedSequence(hidden: Tensor): void {
    const { w, ops, spec } = this;
    if (spec.lmHead.layout !== 'out_in') throw new Error('sequence targets need an unembedding stored [vocab, hidden]');
    const targetIds = w.input('target_ids', 'int64', ['B', 'T']);
    const targetWeight = w.input('target_weight', 'float32', ['B', 'T']);
    const unembedding = this.weight(spec.lmHead.weight); // [V, D]
    let rows = w.op1('Gather', [unembedding, targetIds], { axis: 0 }, 'unembedding_rows'); // [B, T, D]
    // A soft-capped logit minus the mean capped logit is not one row's dot product.
    if (this.options.contrastiveSequence && spec.finalSoftcap !== undefined) throw new InputError('contrastive sequence targets are not available with final logit soft-capping (Gemma 2)');
    if (this.options.contrastiveSequence) rows = w.op1('Sub', [rows, w.op1('ReduceMean', [unembedding, w.ints([0])], { keepdims: 1 })]);
    // The gathered rows are a per-position dot product, not the lm_head linear: the head's LRP
    // rule is not applied here (with ε, z/(z + ε) ≈ 1 for every logit of a real model).
    const logits = this.logitCap(ops.sumKeep(ops.mul(hidden, this.tape.constant(rows, hidden.shape), 'target_logit_terms'), 2, 'target_logits')); // [B, T, 1]
    const weight = w.op1('Unsqueeze', [targetWeight, w.ints([2])]);
    w.output(OUT.targetValue, w.op1('ReduceSum', [w.op1('Mul', [logits.name, weight]), w.ints([1, 2])], { keepdims: 0 }));
    this.tape.seed(logits, weight);
  }

  /** Gemma 2's final soft-capping, cap·tanh(logits/cap), elementwise; the explained value is the capped logit. */
  private logitCap(logits: Tensor): Tensor {
    const cap = this.spec.finalSoftcap;
    return cap === undefined ? logits : this.ops.softcap(logits, cap, 'logit_softcap');
  }

  private finish(): CompiledGraph {
    return {
      model: this.w.encode('circuit-lens'),
      externalData: [...this.external.entries()].map(([path, source]) => ({ path, source, get data() { return source.bytes; } })),
      options: this.options,
      nodeCount: this.w.nodeCount,
    };
  }

  private embedDim(): number {
    return this.spec.projectIn ? this.weights.info(this.spec.embedTokens).shape[1]! : this.spec.dModel;
  }

  /**
   * IG's straight-line path (`embeddingScale`): the displacement x − x' (the leaf) and the map
   * d ↦ x' + α·d. α is a constant input, so the gradient reaching the leaf is α·∇f(x' + α·d)
   * (chain rule), and the leaf's relevance divided by α is the IG integrand at α.
   */
  private integrationPath(tokens: string): { displacement: string; along: (d: Tensor) => Tensor } {
    const { w, ops, tape, spec } = this;
    const perRow = (name: string, hint: string) => w.op1('Reshape', [w.input(name, 'float32', ['B']), w.ints([-1, 1, 1])], {}, hint);
    const alpha = perRow('embedding_scale', 'path_alpha');
    const baselineIds = w.input('baseline_ids', 'int64', ['B', 'T']);
    const baseline = w.op1('Mul', [this.embeddingRows(spec.embedTokens, baselineIds, 'path_baseline_rows'), perRow('baseline_scale', 'path_beta')], {}, 'path_baseline');
    const shape = ['B', 'T', this.embedDim()];
    return {
      displacement: w.op1('Sub', [tokens, baseline], {}, 'path_displacement'),
      along: (d) => ops.add(tape.constant(baseline, shape), ops.mul(d, tape.constant(alpha, ['B', 1, 1]), 'path_scaled'), 'path_point'),
    };
  }

  private leafOrConstant(name: string, shape: Shape): Tensor {
    return this.attribution ? this.tape.leaf(name, shape) : this.tape.constant(name, shape);
  }

  /**
   * A weight as float32. Stored in half precision (`halfWeights`, matrices only), it is a Cast of
   * the stored initializer, one per call; `after` makes that cast wait for a tensor (a gradient),
   * so a readout at the end of the graph does not keep the forward pass's float32 copy alive.
   */
  private weight(hfName: string, after?: string): string {
    const stored = this.storedWeight(hfName);
    if (!this.isHalf(hfName)) return stored;
    return this.w.op1('Cast', [after ? this.w.after(stored, after, `${stored}_after`) : stored], { to: 1 }, `${stored}_f32`);
  }

  /** Whether `hfName` is kept in half precision. */
  private isHalf(hfName: string): boolean {
    return !!this.options.halfWeights && this.weights.info(hfName).shape.length >= 2;
  }

  /** Rows of an embedding table, float32: gathered from the stored table, then cast. */
  private embeddingRows(hfName: string, ids: string, hint: string): string {
    const rows = this.w.op1('Gather', [this.storedWeight(hfName), ids], { axis: 0 }, this.isHalf(hfName) ? `${hint}_half` : hint);
    return this.isHalf(hfName) ? this.w.op1('Cast', [rows], { to: 1 }, hint) : rows;
  }

  /**
   * A weight as the initializer it is stored in. Float32: F32 tensors point into the safetensors
   * file, others are converted. Half (`isHalf`): F16/BF16 tensors point into the file, others
   * are rounded to F16 (`float32ToHalfBits`, ties to even).
   */
  private storedWeight(hfName: string): string {
    const existing = this.initializers.get(hfName);
    if (existing) return existing;
    const info = this.weights.info(hfName);
    const hint = `w_${hfName.replace(/[^A-Za-z0-9]+/g, '_')}`;
    const half = this.isHalf(hfName);
    const asStored = half ? info.dtype === 'F16' || info.dtype === 'BF16' : info.dtype === 'F32';
    let name: string;
    if (asStored && info.offset % (half ? 2 : 4) === 0 && !this.weights.isOverridden(hfName)) {
      const file = this.weights.file(hfName);
      const location = file.realPath.split(/[\\/]/).pop()!;
      this.external.set(location, file);
      name = this.w.externalInitializer(hint, info.shape, { location, offset: info.offset, length: info.byteLength }, info.dtype === 'F32' ? 'float32' : info.dtype === 'F16' ? 'float16' : 'bfloat16');
    } else if (half) {
      name = this.w.halfInitializer(hint, float32ToHalfBits(this.weights.readFloat32(hfName)), info.shape);
    } else {
      name = this.w.floatInitializer(hint, this.weights.readFloat32(hfName), info.shape);
    }
    this.initializers.set(hfName, name);
    return name;
  }

  /** A linear layer's weight as [in, out] (after the fused-slice), and its bias. */
  private linearParams(ref: LinearRef): { weight: string; bias?: string; outDim: number } {
    const w = this.w;
    const start = w.mark();
    let weight = this.weight(ref.weight);
    let bias = ref.bias ? this.weight(ref.bias) : undefined;
    const info = this.weights.info(ref.weight);
    // The output axis of the stored tensor: 0 for nn.Linear [out, in], 1 for Conv1D [in, out].
    // Fused parts are cut along it before any transpose, so only the part is transposed.
    const outAxis = ref.layout === 'out_in' ? 0 : 1;
    let outDim = info.shape[outAxis]!;
    if (ref.outRows) {
      // Interleaved fused projection (GPT-NeoX query_key_value): gather this part's output units.
      const rows = w.ints(ref.outRows);
      weight = w.op1('Gather', [weight, rows], { axis: outAxis }, 'w_rows');
      if (bias) bias = w.op1('Gather', [bias, rows], { axis: 0 }, 'b_rows');
      outDim = ref.outRows.length;
    } else if (ref.outSlice) {
      const [start, end] = ref.outSlice;
      weight = w.op1('Slice', [weight, w.ints([start]), w.ints([end]), w.ints([outAxis])], {}, 'w_slice');
      if (bias) bias = w.op1('Slice', [bias, w.ints([start]), w.ints([end]), w.ints([0])], {}, 'b_slice');
      outDim = end - start;
    }
    if (ref.layout === 'out_in') weight = w.op1('Transpose', [weight], { perm: [1, 0] }, 'wT');
    // A half-precision matrix: the backward pass casts its own copy (tape.ts `recomputeInBackward`).
    if (this.attribution && this.isHalf(ref.weight)) this.tape.recomputeInBackward(start, this.storedWeight(ref.weight));
    return { weight, ...(bias ? { bias } : {}), outDim };
  }

  /** A linear layer with its group's rule (rules.ts `linear`; ε = 0 is the ordinary gradient). */
  private linear(x: Tensor, ref: LinearRef, hint: string, group: LayerGroup): Tensor {
    const { weight, bias, outDim } = this.linearParams(ref);
    const { out, ...rule } = this.ops.linear(x, weight, outDim, bias, this.ops.rules.linear[group], hint);
    this.linearUses.push({ ref, input: x, output: out, weight, ...(bias ? { bias } : {}), ...rule });
    return out;
  }

  /** A norm's gain: w, or 1 + w for Gemma's RMSNorm (a constant either way). */
  private gain(ref: NormRef): string {
    const weight = this.weight(ref.weight);
    return this.spec.norm.unitOffset ? this.w.op1('Add', [weight, this.w.scalar(1)], {}, 'gain') : weight;
  }

  private norm(x: Tensor, ref: NormRef, hint: string): Tensor {
    const { spec } = this;
    if (spec.norm.kind === 'rmsnorm') return this.ops.rmsNorm(x, this.gain(ref), spec.norm.eps, hint);
    const beta = ref.bias ? this.weight(ref.bias) : undefined;
    const out = this.ops.layerNorm(x, this.gain(ref), beta, spec.norm.eps, hint);
    if (beta) this.normBetas.push({ beta, output: out });
    return out;
  }

  private positionIds(ids: string): string {
    const w = this.w;
    const scalar = (t: string) => w.op1('Squeeze', [t]);
    const length = w.op1('Gather', [w.op1('Shape', [ids]), w.ints([1])], { axis: 0 });
    const range = w.op1('Range', [scalar(w.ints([0])), scalar(length), scalar(w.ints([1]))], {}, 'positions');
    return w.op1('Expand', [w.op1('Unsqueeze', [range, w.ints([0])]), w.op1('Shape', [ids])], {}, 'position_ids');
  }

  /**
   * Additive causal mask [T, T]: 0 where query i sees key j, −1e9 elsewhere (finite: S ⊙ g̃ stays
   * 0, never NaN). With a sliding window, i sees i − window < j ≤ i (HF masks i − j ≥ window).
   */
  private causalMask(ids: string, window: number | null = null): string {
    const w = this.w;
    const length = w.op1('Gather', [w.op1('Shape', [ids]), w.ints([1])], { axis: 0 });
    const square = w.op1('Concat', [length, length], { axis: 0 });
    const ones = w.op1('ConstantOfShape', [square], { value: { tensor: { data: new Float32Array([1]), dims: [1] } } });
    let seen = w.op1('Trilu', [ones], { upper: 0 });
    if (window !== null) {
      const tooFar = w.op1('Trilu', [ones, w.op1('Squeeze', [w.ints([-window])])], { upper: 0 }, `window_${window}_far`);
      seen = w.op1('Sub', [seen, tooFar]);
    }
    return w.op1('Mul', [w.op1('Sub', [w.scalar(1), seen]), w.scalar(-1e9)], {}, window === null ? 'causal_mask' : `window_${window}_mask`);
  }

  /** cos/sin tables [1, T, 1, dh] for rotary embeddings, gathered for the prompt's positions. */
  private ropeTables(theta: number, scaling: RopeScaling | undefined, hint: string): { cos: string; sin: string } {
    const { spec, w } = this;
    if (spec.positional.kind !== 'rope') throw new Error('unreachable');
    // Partial rotary (GPT-NeoX): tables and frequencies over the rotated dims only.
    const dh = spec.positional.dims ?? spec.headDim;
    const invFreq = ropeInverseFrequencies(theta, dh, scaling);
    const positions = spec.maxPositions;
    const cos = new Float32Array(positions * dh);
    const sin = new Float32Array(positions * dh);
    for (let p = 0; p < positions; p++) {
      for (let i = 0; i < dh / 2; i++) {
        const angle = p * invFreq[i]!;
        cos[p * dh + i] = cos[p * dh + i + dh / 2] = Math.cos(angle);
        sin[p * dh + i] = sin[p * dh + i + dh / 2] = Math.sin(angle);
      }
    }
    const length = w.op1('Gather', [w.op1('Shape', ['input_ids']), w.ints([1])], { axis: 0 });
    const table = (data: Float32Array, hint: string) => {
      const all = w.floatInitializer(`${hint}_table`, data, [positions, dh]);
      const rows = w.op1('Slice', [all, w.ints([0]), length, w.ints([0])]);
      return w.op1('Reshape', [rows, w.ints([1, -1, 1, dh])], {}, hint);
    };
    return { cos: table(cos, `${hint}_cos`), sin: table(sin, `${hint}_sin`) };
  }

  private interventionInputs(): Interventions {
    const { spec, w } = this;
    return {
      headKeep: w.input('head_keep', 'float32', ['B', spec.nLayers, spec.nHeads]),
      headRepl: w.input('head_repl', 'float32', ['B', spec.nLayers, 'T', spec.nHeads, spec.headDim]),
      neuronKeep: w.input('neuron_keep', 'float32', ['B', spec.nLayers, spec.dMlp]),
      neuronRepl: w.input('neuron_repl', 'float32', ['B', spec.nLayers, 'T', spec.dMlp]),
    };
  }

  /** x·keep + repl·(1 − keep), with keep/repl taken at `layer` from the intervention inputs. */
  private intervene(x: Tensor, keepInput: string, replInput: string, layer: number, keepShape: number[], hint: string): Tensor {
    const w = this.w;
    const keep = w.op1('Reshape', [w.op1('Gather', [keepInput, w.ints([layer])], { axis: 1 }), w.ints(keepShape)], {}, `${hint}_keep`);
    const repl = w.op1('Squeeze', [w.op1('Gather', [replInput, w.ints([layer])], { axis: 1 }), w.ints([1])], {}, `${hint}_repl`);
    const replaced = w.op1('Mul', [repl, w.op1('Sub', [w.scalar(1), keep])]);
    const kept = this.ops.mul(x, this.tape.constant(keep, keepShape), `${hint}_kept`);
    const out = this.ops.add(kept, this.tape.constant(replaced, x.shape), hint);
    this.replacements.push({ kind: replInput === 'head_repl' ? 'head' : 'neuron', repl, at: out });
    return out;
  }

  private attention(l: number, x: Tensor, mask: string, rope: { cos: string; sin: string } | undefined, keep: Interventions | undefined, gates?: EdgeGates) {
    const { spec, ops, tape } = this;
    const layer = spec.layers[l]!;
    const { nHeads: H, nKvHeads: Hkv, headDim: dh } = spec;
    const rules = ops.rules;
    const heads = (t: Tensor, n: number, hint: string) => ops.reshape(t, [0, 0, n, dh], ['B', 'T', n, dh], hint);
    let q = heads(this.linear(x, layer.q, `l${l}_q`, layerGroup(l, spec.nLayers)), H, `l${l}_q_heads`);
    let k = heads(this.linear(x, layer.k, `l${l}_k`, layerGroup(l, spec.nLayers)), Hkv, `l${l}_k_heads`);
    const v0 = heads(this.linear(x, layer.v, `l${l}_v`, layerGroup(l, spec.nLayers)), Hkv, `l${l}_v_heads`);
    // Qwen3: per-head RMSNorm of q and k before RoPE, with the table's q/k-norm rule.
    if (layer.qNorm) q = ops.rmsNorm(q, this.gain(layer.qNorm), spec.norm.eps, `l${l}_q_norm`, rules.qkNorm);
    if (layer.kNorm) k = ops.rmsNorm(k, this.gain(layer.kNorm), spec.norm.eps, `l${l}_k_norm`, rules.qkNorm);
    if (rope) {
      const dims = spec.positional.kind === 'rope' ? spec.positional.dims : undefined;
      q = ops.rope(q, rope.cos, rope.sin, `l${l}_q_rope`, dims);
      k = ops.rope(k, rope.cos, rope.sin, `l${l}_k_rope`, dims);
    }
    k = ops.repeatKv(k, H / Hkv, Hkv, dh, `l${l}_k_rep`);
    const v = ops.repeatKv(v0, H / Hkv, Hkv, dh, `l${l}_v_rep`);
    const qT = ops.transpose(q, [0, 2, 1, 3], `l${l}_qT`); // [B,H,T,dh]
    const kT = ops.transpose(k, [0, 2, 3, 1], `l${l}_kT`); // [B,H,dh,T]
    const vT = ops.transpose(v, [0, 2, 1, 3], `l${l}_vT`); // [B,H,T,dh]
    // The uniform rule at the two activation×activation matmuls (Prop. 3.3): factors from the table.
    const mapsStart = this.w.mark();
    const scores = ops.matmul(qT, kT, `l${l}_scores`, rules.qk);
    let scaled = ops.scale(scores, spec.attnScale, `l${l}_scaled`);
    // Gemma 2 caps the scaled scores before the mask (identity rule from the table).
    if (spec.attnSoftcap !== undefined) scaled = ops.softcap(scaled, spec.attnSoftcap, `l${l}_score_cap`);
    const masked = ops.add(scaled, tape.constant(mask, ['T', 'T']), `l${l}_masked`);
    let probs = ops.softmax(masked, `l${l}_probs`);
    // The backward pass reads the layer's T×T maps from a copy computed again from Q and K when
    // it reaches the layer, so only one layer's maps are alive at a time (README "Speed and memory").
    if (this.attribution && this.options.recomputeAttention !== false) tape.recomputeInBackward(mapsStart, qT.name);
    if (rules.attentionProbs === 'detached') probs = ops.detach(probs);
    const mixed = ops.matmul(probs, vT, `l${l}_mixed`, rules.av); // [B,H,T,dh]
    const zClean = ops.transpose(mixed, [0, 2, 1, 3], `l${l}_z`); // [B,T,H,dh]
    const z = keep ? this.intervene(zClean, keep.headKeep, keep.headRepl, l, [-1, 1, H, 1], `l${l}_z_ablated`) : zClean;
    const zGated = gates ? ops.gradientGate(z, this.gateAt(gates.head, l, [-1, 1, H, 1]), `l${l}_head_gate`) : z;
    const merged = ops.reshape(zGated, [0, 0, H * dh], ['B', 'T', H * dh], `l${l}_z_merged`);
    const out = this.linear(merged, layer.o, `l${l}_o`, layerGroup(l, spec.nLayers));
    return { out, probs, scores: masked, z, zClean, oProjection: this.linearUses[this.linearUses.length - 1]!, qT, kT, qk: scores, mixed };
  }

  private mlp(l: number, x: Tensor, keep: Interventions | undefined) {
    const { spec, ops } = this;
    const layer = spec.layers[l]!;
    const up = this.linear(x, layer.up, `l${l}_up`, layerGroup(l, spec.nLayers));
    let postClean: Tensor;
    if (layer.gate) {
      const gate = ops.activation(this.linear(x, layer.gate, `l${l}_gate`, layerGroup(l, spec.nLayers)), spec.activation, `l${l}_act`);
      postClean = ops.mul(gate, up, `l${l}_post`, ops.rules.gatedProduct);
    } else {
      postClean = ops.activation(up, spec.activation, `l${l}_post`);
    }
    const post = keep ? this.intervene(postClean, keep.neuronKeep, keep.neuronRepl, l, [-1, 1, spec.dMlp], `l${l}_post_ablated`) : postClean;
    const out = this.linear(post, layer.down, `l${l}_down`, layerGroup(l, spec.nLayers));
    return { out, post, postClean };
  }

  private edgeGateInputs(): EdgeGates {
    const { spec, w } = this;
    return {
      head: w.input('edge_gate_head', 'float32', ['B', spec.nLayers, spec.nHeads]),
      mlp: w.input('edge_gate_mlp', 'float32', ['B', spec.nLayers]),
      skipAttn: w.input('edge_gate_skip_attn', 'float32', ['B', spec.nLayers]),
      skipMlp: w.input('edge_gate_skip_mlp', 'float32', ['B', spec.nLayers]),
    };
  }

  /** The gate of `layer` from a [B, L, …] gate input, reshaped to broadcast. */
  private gateAt(input: string, layer: number, shape: number[]): string {
    const w = this.w;
    return w.op1('Reshape', [w.op1('Gather', [input, w.ints([layer])], { axis: 1 }), w.ints(shape)]);
  }

  private firstRow(tensor: string, hint: string): string {
    const w = this.w;
    return w.op1('Gather', [tensor, w.ints([0])], { axis: 0 }, hint); // [1, T, D]
  }

  /** Per-head outputs z_h·W_O[h] of row 0 ([H, T, D]) and the output-projection bias ([1, T, D]). */
  private recordUpstream(l: number, z: Tensor, oProjection: LinearUse): void {
    const { w, spec } = this;
    const { nHeads: H, headDim: dh, dModel: D } = spec;
    const zRow = w.op1('Squeeze', [this.firstRow(z.name, `l${l}_z_row0`), w.ints([0])]); // [T, H, dh]
    const perHead = w.op1('Transpose', [zRow], { perm: [1, 0, 2] }); // [H, T, dh]
    const wO = w.op1('Reshape', [oProjection.weight, w.ints([H, dh, D])]);
    this.upstream.push(w.op1('MatMul', [perHead, wO], {}, `l${l}_head_out_row0`));
    const zeros = w.op1('Mul', [w.op1('ReduceSum', [perHead, w.ints([0, 2])], { keepdims: 1 }), w.scalar(0)]); // [1, T, 1]
    this.upstream.push(oProjection.bias ? w.op1('Add', [zeros, oProjection.bias], {}, `l${l}_o_bias_row0`) : w.op1('Expand', [zeros, w.ints([1, 1, D])], {}, `l${l}_o_bias_row0`));
  }

  /** edges_pre/mid [B, L, N] and edges_final [B, N]: Σ_{t,d} upstream_n ⊙ g̃ at the residual cut. */
  private edgeOutputs(residPre: Tensor[], residMid: Tensor[], residFinal: Tensor): void {
    const { w, tape } = this;
    const U = w.op1('Concat', this.upstream, { axis: 0 }, 'upstream'); // [N, T, D]
    const flatT = w.op1('Transpose', [w.op1('Reshape', [U, w.ints([0, -1])])], { perm: [1, 0] }); // [T·D, N]
    const against = (x: Tensor) => {
      const g = tape.gradOf(x)!;
      return w.op1('MatMul', [w.op1('Reshape', [g, w.ints([0, -1])]), flatT]); // [B, N]
    };
    const stack = (parts: string[]) => w.op1('Concat', parts.map((p) => w.op1('Unsqueeze', [p, w.ints([1])])), { axis: 1 });
    w.output(OUT.edgesPre, stack(residPre.map(against)));
    w.output(OUT.edgesMid, stack(residMid.map(against)));
    w.output(OUT.edgesFinal, against(residFinal));
  }

  /** Identity forward and backward: a named point whose gradient is one branch's share. */
  private gradientTap(x: Tensor, hint: string): Tensor {
    const out = this.w.op1('Identity', [x.name], {}, hint);
    return this.tape.record(out, x.shape, [x], (g) => [[x, g]]);
  }

  /**
   * Edge relevance from the one ungated pass (`localEdges`; the graph runs one prompt, batch 1).
   * Row (layer l, head h) of the gated graph lets only head h's gradient through at z and
   * nothing through the skip, and a gate leaves every gradient above it unchanged; so its
   * gradient at resid_pre[l] is the ungated g̃_z with the other heads zeroed, sent back through
   * layer l's attention VJPs alone. All H heads go as one batch of H rows against the batch-1
   * forward tensors. An MLP row's gradient at resid_mid[l] is the part that came through ln2
   * (the tap), the logits row's is g̃ at resid_final. Each edge is Σ_{t,d} upstream_n ⊙ g̃.
   */
  private localEdgeOutputs(layers: LocalEdgeLayer[], residPre: Tensor[], residMid: Tensor[], residFinal: Tensor): void {
    const { w, tape, spec } = this;
    const H = spec.nHeads;
    const U = w.op1('Concat', this.upstream, { axis: 0 }, 'upstream'); // [N, T, D]
    const flatT = w.op1('Transpose', [w.op1('Reshape', [U, w.ints([0, -1])])], { perm: [1, 0] }); // [T·D, N]
    const zerosLike = (t: Tensor) => w.op1('Mul', [t.name, w.scalar(0)]);
    const against = (g: string) => w.op1('MatMul', [w.op1('Reshape', [g, w.ints([0, -1])]), flatT]); // [rows, N]
    const inflow = (x: Tensor, g: string) => w.op1('ReduceSum', [w.op1('Mul', [x.name, g]), w.ints([1, 2])], { keepdims: 0 }); // [rows]
    const stack = (parts: string[]) => w.op1('Concat', parts.map((p) => w.op1('Unsqueeze', [p, w.ints([0])])), { axis: 0 });
    // eye[r, 0, h, 0] = [r = h]: row r keeps head r's gradient at z [·, T, H, dh].
    const eye = new Float32Array(H * H);
    for (let h = 0; h < H; h++) eye[h * H + h] = 1;
    const headRows = w.floatInitializer('edge_head_rows', eye, [H, 1, H, 1]);
    const heads: string[] = [];
    const headInflow: string[] = [];
    const mlps: string[] = [];
    const mlpInflow: string[] = [];
    layers.forEach(({ start, z, mlpTap }, l) => {
      const gz = tape.gradOf(z);
      const local = gz ? tape.localBackward(z, w.op1('Mul', [gz, headRows], {}, `l${l}_edge_head_rows`), start, residPre[l]!) : undefined;
      const gHeads = local ?? w.op1('Expand', [zerosLike(residPre[l]!), w.ints([H, 1, 1])]); // [H, T, D]
      heads.push(against(gHeads));
      headInflow.push(inflow(residPre[l]!, gHeads));
      const gMlp = tape.gradOf(mlpTap) ?? zerosLike(residMid[l]!); // [1, T, D]
      mlps.push(against(gMlp));
      mlpInflow.push(inflow(residMid[l]!, gMlp));
    });
    w.output(OUT.edgesHead, stack(heads)); // [L, H, N]
    w.output(OUT.edgesHeadInflow, stack(headInflow)); // [L, H]
    w.output(OUT.edgesMlp, w.op1('Concat', mlps, { axis: 0 })); // [L, N]
    w.output(OUT.edgesMlpInflow, w.op1('Concat', mlpInflow, { axis: 0 })); // [L]
    w.output(OUT.edgesLogits, w.op1('Squeeze', [against(tape.gradOf(residFinal) ?? zerosLike(residFinal)), w.ints([0])])); // [N]
  }

  /**
   * Prompt-graph readouts (batch row 0 of each tensor; `promptGraph` graphs run one row):
   *   pg_x_pre_l [T, D], pg_g_pre_l, pg_g_mid_l   residual stream before layer l, its gradient, gradient after attention
   *   pg_head_out_l [T, H, D]  z_h·W_O[h] per head; pg_attn_out_l [T, D] with the o-bias; pg_mlp_out_l [T, D]
   *   pg_g_z_l [T, H, dh]      gradient at the head outputs z
   *   pg_probs_l, pg_g_qk_l [H, T, T]  attention probabilities and the gradient at the raw Q·Kᵀ
   *   pg_q_l, pg_k_l [H, T, dh]        queries and keys as they enter Q·Kᵀ (after RoPE and repeat_kv)
   *   pg_yv_l, pg_yk_l, pg_yq_l [H, T, D]  W_V[h]·g̃_z[q,h], W_K[h]·Q[q,h], W_Q[h]·g̃_Q[q,h]: each head's
   *                                        local backward before the norm, per query (no RoPE)
   *   pg_x_final, pg_g_final [T, D]    the last residual stream and its gradient
   * Every relevance of a prompt graph is a dot product of these (R = x ⊙ g̃ is linear in g̃, and a
   * gradient gate at one node leaves the gradient above it unchanged), see promptGraph.ts.
   */
  private promptGraphOutputs(residPre: Tensor[], residMid: Tensor[], residFinal: Tensor, layers: PromptLayerTensors[]): void {
    const { w, tape, spec } = this;
    const { nHeads: H, headDim: dh, dModel: D } = spec;
    const row = (t: string) => w.op1('Squeeze', [w.op1('Gather', [t, w.ints([0])], { axis: 0 }), w.ints([0])]);
    const grad = (t: Tensor) => tape.gradOf(t) ?? w.op1('Mul', [t.name, w.scalar(0)]);
    const out = (name: string, t: string) => w.output(name, row(t));
    layers.forEach(({ attn, mlpOut }, l) => {
      out(`pg_x_pre_${l}`, residPre[l]!.name);
      out(`pg_g_pre_${l}`, grad(residPre[l]!));
      out(`pg_g_mid_${l}`, grad(residMid[l]!));
      const wO = w.op1('Reshape', [attn.oProjection.weight, w.ints([H, dh, D])]);
      const perHead = w.op1('MatMul', [w.op1('Unsqueeze', [attn.z.name, w.ints([3])]), wO]); // [B, T, H, 1, D]
      out(`pg_head_out_${l}`, w.op1('Squeeze', [perHead, w.ints([3])]));
      out(`pg_attn_out_${l}`, attn.out.name);
      out(`pg_mlp_out_${l}`, mlpOut.name);
      out(`pg_g_z_${l}`, grad(attn.z));
      out(`pg_probs_${l}`, attn.probs.name);
      out(`pg_g_qk_${l}`, grad(attn.qk));
      out(`pg_q_${l}`, attn.qT.name);
      out(`pg_k_${l}`, w.op1('Transpose', [attn.kT.name], { perm: [0, 1, 3, 2] }));
      if (spec.positional.kind === 'rope') return;
      const layer = spec.layers[l]!;
      /** A projection's weight per query head as [H, dh, D] (kv heads repeated for GQA). */
      const headWeights = (ref: LinearRef, n: number) => {
        const use = this.linearUses.find((u) => u.ref === ref)!;
        const hd = w.op1('Transpose', [w.op1('Reshape', [use.weight, w.ints([D, n, dh])])], { perm: [1, 2, 0] });
        return n === H ? hd : w.op1('Gather', [hd, w.ints(Array.from({ length: H }, (_, h) => Math.floor(h / (H / n))))], { axis: 0 });
      };
      const headsFirst = (t: string) => w.op1('Transpose', [t], { perm: [0, 2, 1, 3] });
      out(`pg_yv_${l}`, w.op1('MatMul', [headsFirst(grad(attn.z)), headWeights(layer.v, spec.nKvHeads)]));
      out(`pg_yk_${l}`, w.op1('MatMul', [attn.qT.name, headWeights(layer.k, spec.nKvHeads)]));
      out(`pg_yq_${l}`, w.op1('MatMul', [grad(attn.qT), headWeights(layer.q, H)]));
    });
    out('pg_x_final', residFinal.name);
    out('pg_g_final', grad(residFinal));
  }

  /** Reads relevance R = t ⊙ g̃ at the named tensors and sums it into the graph's outputs. */
  private relevanceOutputs(t: {
    tokenEmbedding: Tensor;
    positionEmbedding: Tensor | undefined;
    residPre: Tensor[];
    residMid: Tensor[];
    residFinal: Tensor;
    probs: Tensor[];
    scores: Tensor[];
    headZ: Tensor[];
    mlpPost: Tensor[];
    attentions: { mixed: Tensor; qT: Tensor }[];
  }): void {
    const { w, tape } = this;
    const batchZeros = (hint: string) => w.op1('Mul', [w.op1('ReduceSum', [w.op1('Cast', ['input_ids'], { to: 1 }), w.ints([1])], { keepdims: 0 }), w.scalar(0)], {}, hint);
    /** Σ over `axes` of t ⊙ g̃ (zeros when no gradient reached t). */
    const relevance = (x: Tensor, axes: number[], hint: string, zerosShape?: () => string): string => {
      const g = tape.gradOf(x);
      if (!g) return zerosShape ? zerosShape() : batchZeros(hint);
      return w.op1('ReduceSum', [w.op1('Mul', [x.name, g]), w.ints(axes)], { keepdims: 0 }, hint);
    };
    const stack = (parts: string[], hint: string) => w.op1('Concat', parts.map((p) => w.op1('Unsqueeze', [p, w.ints([1])])), { axis: 1 }, hint);

    w.output(OUT.tokenRelevance, relevance(t.tokenEmbedding, [2], 'token_rel'));
    if (t.positionEmbedding) w.output(OUT.positionRelevance, relevance(t.positionEmbedding, [2], 'position_rel'));
    w.output(OUT.residPre, stack(t.residPre.map((x, l) => relevance(x, [1, 2], `resid_pre_${l}`)), 'resid_pre'));
    w.output(OUT.residMid, stack(t.residMid.map((x, l) => relevance(x, [1, 2], `resid_mid_${l}`)), 'resid_mid'));
    w.output(OUT.residFinal, relevance(t.residFinal, [1, 2], 'resid_final'));
    // Head relevance is z_h ⊙ g̃_{z_h}, which equals (z_h W_O[h]) ⊙ g̃ at the output projection.
    w.output(OUT.headRelevance, stack(t.headZ.map((z, l) => relevance(z, [1, 3], `head_rel_${l}`)), 'head_rel'));
    if (this.ops.rules.attentionProbs === 'relevance') {
      const [avProbs] = this.ops.rules.av;
      const [qkQ] = this.ops.rules.qk;
      // Both readouts are summed over a T×T map, which long prompts cannot keep until the end of
      // the graph. Each map is one side of a matmul whose other factor is an activation, so the
      // sum is a T×dh one (exact in real arithmetic):
      //   Σ_{q,k} A ⊙ g̃_A = f_A · Σ_{q,d} (A·V) ⊙ g̃_{A·V}   (g̃_A = f_A · g̃_{A·V} Vᵀ)
      //   Σ_{q,k} S ⊙ g̃_S = Σ_{q,d} Q ⊙ g̃_Q / f_Q            (S = Q·Kᵀ, g̃_Q = f_Q · g̃_S K)
      // and the masked, scaled scores carry S's relevance (the mask meets g̃ = 0, the scale is
      // constant). Gemma 2's score soft-cap sits in between, so it reads the maps themselves.
      const viaMatmul = this.spec.attnSoftcap === undefined && avProbs !== 0 && qkQ !== 0;
      const sumOf = (x: Tensor, g: string | undefined, factor: number, hint: string) =>
        g ? w.op1('Mul', [w.op1('ReduceSum', [w.op1('Mul', [x.name, g]), w.ints([2, 3])], { keepdims: 0 }), w.scalar(factor)], {}, hint) : batchZeros(hint);
      w.output(
        OUT.headRelevanceProbs,
        stack(t.probs.map((p, l) => (viaMatmul ? sumOf(t.attentions[l]!.mixed, tape.gradOf(t.attentions[l]!.mixed), avProbs, `head_probs_rel_${l}`) : relevance(p, [2, 3], `head_probs_rel_${l}`))), 'head_probs_rel'),
      );
      // At the softmax input: R(probs) − R(scores) is the softmax rule's leak (methods.md A.3).
      w.output(
        OUT.headRelevanceScores,
        stack(t.scores.map((x, l) => (viaMatmul ? sumOf(t.attentions[l]!.qT, tape.gradOf(t.attentions[l]!.qT), 1 / qkQ, `head_scores_rel_${l}`) : relevance(x, [2, 3], `head_scores_rel_${l}`))), 'head_scores_rel'),
      );
    }
    w.output(OUT.mlpRelevance, stack(t.mlpPost.map((p, l) => relevance(p, [1], `mlp_rel_${l}`)), 'mlp_rel'));

    // Bias relevance: b ⊙ g̃_b summed, for linear biases and LayerNorm β.
    const biasSum = (terms: string[], hint: string) => (terms.length === 0 ? batchZeros(hint) : terms.length === 1 ? terms[0]! : w.op1('Sum', terms, {}, hint));
    const linearBiasTerms: string[] = [];
    for (const use of this.linearUses) {
      const g = this.modifiedGradient(use);
      if (!use.bias || !g) continue;
      if (use.biasRelevance) {
        linearBiasTerms.push(w.op1('ReduceSum', [use.biasRelevance(g), w.ints([1, 2])], { keepdims: 0 }));
        continue;
      }
      linearBiasTerms.push(w.op1('ReduceSum', [w.op1('Mul', [g, use.biasRho ?? use.bias]), w.ints([1, 2])], { keepdims: 0 }));
    }
    w.output(OUT.biasLinear, biasSum(linearBiasTerms, 'bias_linear'));
    const betaTerms = this.normBetas.flatMap(({ beta, output }) => {
      const g = tape.gradOf(output);
      return g ? [w.op1('ReduceSum', [w.op1('Mul', [g, beta]), w.ints([1, 2])], { keepdims: 0 })] : [];
    });
    w.output(OUT.biasLayerNorm, biasSum(betaTerms, 'bias_layernorm'));

    // Attribution patching (EAP): Σ replacement ⊙ g̃ at each ablation site; minus the component's
    // own relevance this is (corrupted − clean) · gradient.
    if (this.replacements.length > 0) {
      const patch = (kind: 'head' | 'neuron', axes: number[]) =>
        stack(this.replacements.filter((r) => r.kind === kind).map((r, l) => {
          const g = tape.gradOf(r.at);
          return g ? w.op1('ReduceSum', [w.op1('Mul', [r.repl, g]), w.ints(axes)], { keepdims: 0 }) : relevance(r.at, axes, `patch_${kind}_${l}`);
        }), `${kind}_patch`);
      w.output(OUT.headPatch, patch('head', [1, 3]));
      w.output(OUT.neuronPatch, patch('neuron', [1]));
    }

    this.options.weightRelevance.forEach((name, i) => w.output(OUT.weight(i), this.weightRelevance(name)));
  }

  /** The modified gradient at a linear layer's pre-activation z: g̃_z, times z/z_ρ under a rule. */
  private modifiedGradient(use: LinearUse): string | undefined {
    const g = this.tape.gradOf(use.output);
    return g && use.ratio ? this.w.op1('Mul', [g, use.ratio], {}, 'g_rule_s') : g;
  }

  /**
   * R_W = W ⊙ g̃_W per batch row, in the HF layout of `name` (B, …shape). g̃_W sums xᵀ·g̃_z over
   * positions for every use of the weight (a fused c_attn has three, one per output slice).
   */
  private weightRelevance(requested: string): string {
    const { w, spec } = this;
    // A tied unembedding has its HF parameter name (`lm_head.weight`) but is stored once, as the
    // embedding or (head-only files) as the head; either name means the head's use.
    const name = requested === spec.headName || (spec.tiedEmbeddings && requested === spec.embedName) ? spec.lmHead.weight : requested;
    const uses = this.linearUses.filter((u) => u.ref.weight === name);
    if (uses.length === 0) throw new Error(`"${name}" is not a linear weight of this model`);
    const pieces = uses.map((use) => {
      const g = this.modifiedGradient(use);
      const x = use.input.name;
      const xT = w.op1('Transpose', [x], { perm: [0, 2, 1] });
      if (!g) {
        const zeros = w.op1('MatMul', [xT, w.op1('Mul', [use.output.name, w.scalar(0)])]);
        return { use, grad: zeros };
      }
      if (use.weightGrad) return { use, grad: use.weightGrad(g) };
      const grad = w.op1('MatMul', [xT, g], {}, 'g_weight'); // [B, in, outSlice]
      // γ/z⁺: g̃_W = (W_ρ/W) ⊙ xᵀ(g̃_z ⊙ z/z_ρ), so W ⊙ g̃_W is the rule's share (rules.ts LinearRule).
      return { use, grad: use.weightFactor ? w.op1('Mul', [grad, use.weightFactor], {}, 'g_weight_rule') : grad };
    });
    // A fused tensor has one use per part: join them and put each output unit back at its row.
    let inOut = pieces.length === 1 ? pieces[0]!.grad : w.op1('Concat', pieces.map((p) => p.grad), { axis: 2 });
    if (pieces.length > 1) {
      const order = pieces.flatMap(({ use }) => {
        const { outRows, outSlice } = use.ref;
        if (outRows) return [...outRows];
        if (outSlice) return Array.from({ length: outSlice[1] - outSlice[0] }, (_, i) => outSlice[0] + i);
        throw new Error(`"${name}" is used more than once without a fused slice`);
      });
      const inverse = new Array<number>(order.length);
      order.forEach((row, i) => (inverse[row] = i));
      if (order.some((row, i) => row !== i)) inOut = w.op1('Gather', [inOut, w.ints(inverse)], { axis: 2 }, 'g_weight_rows');
    }
    const layout = uses[0]!.ref.layout;
    const grad = layout === 'out_in' ? w.op1('Transpose', [inOut], { perm: [0, 2, 1] }) : inOut;
    return w.op1('Mul', [grad, this.weight(name, grad)], {}, 'weight_rel');
  }
}

interface PromptLayerTensors {
  readonly attn: { z: Tensor; out: Tensor; probs: Tensor; qk: Tensor; qT: Tensor; kT: Tensor; oProjection: LinearUse };
  readonly mlpOut: Tensor;
}

interface LocalEdgeLayer {
  /** The tape mark before the layer's first norm: its attention VJPs are recorded after it. */
  readonly start: number;
  readonly z: Tensor;
  readonly mlpTap: Tensor;
}

interface EdgeGates {
  readonly head: string;
  readonly mlp: string;
  readonly skipAttn: string;
  readonly skipMlp: string;
}

interface Interventions {
  readonly headKeep: string;
  readonly headRepl: string;
  readonly neuronKeep: string;
  readonly neuronRepl: string;
}

/** HF's rotary inverse frequencies, with linear or Llama-3 scaling. */
export function ropeInverseFrequencies(theta: number, headDim: number, scaling?: ArchSpec['positional'] extends infer P ? (P extends { scaling?: infer S } ? S : never) : never): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  if (!scaling) return inv;
  if (scaling.type === 'linear') return inv.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  const lowWavelen = originalMaxPositions / lowFreqFactor;
  const highWavelen = originalMaxPositions / highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
