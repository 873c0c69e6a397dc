/**
 * The ops the transformer graphs are made of, each with its forward emission and its VJP.
 * Ops with an LRP rule take it as an argument from the composite's rule table (rules.ts);
 * none of them decides a rule on its own.
 */
import { IDENTITY_RULE_EPSILON, RULE_STABILISER, checkLinearRule, isPlainGradient, type LinearRule, type RuleTable } from './rules';
import { broadcastShape, unbroadcast, type Dim, type Shape, type Tape, type Tensor } from './tape';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export class Ops {
  constructor(
    readonly tape: Tape,
    readonly rules: RuleTable,
  ) {}

  private get w() {
    return this.tape.w;
  }

  /** Multiplies a gradient by a constant factor (skipping the node when it is 1). */
  private factor(g: string, f: number): string {
    return f === 1 ? g : this.w.op1('Mul', [g, this.w.scalar(f, 'rule_factor')], {}, 'g_scaled');
  }

  /**
   * `a · b` over the last two axes. `factors` are the rule's gradient factors on a and b
   * (the uniform rule's ½ at Q·Kᵀ and A·V); a factor of 0 sends no gradient.
   */
  matmul(a: Tensor, b: Tensor, hint: string, factors: readonly [number, number] = [1, 1]): Tensor {
    const out = this.w.op1('MatMul', [a.name, b.name], {}, hint);
    const shape: Shape = [...a.shape.slice(0, -1), b.shape[b.shape.length - 1]!];
    const swap = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
    return this.tape.record(out, shape, [a, b], (g) => {
      const grads: [Tensor, string][] = [];
      if (a.grad && factors[0] !== 0) {
        const bT = this.w.op1('Transpose', [this.tape.read(b.name, g)], { perm: swap(b.shape.length) }, 'bT');
        grads.push([a, this.factor(this.w.op1('MatMul', [g, bT], {}, `g_${hint}_a`), factors[0])]);
      }
      if (b.grad && factors[1] !== 0) {
        if (a.shape.length !== b.shape.length) throw new Error(`matmul ${hint}: gradient into a broadcast right operand is not supported`);
        const aT = this.w.op1('Transpose', [this.tape.read(a.name, g)], { perm: swap(a.shape.length) }, 'aT');
        grads.push([b, this.factor(this.w.op1('MatMul', [aT, g], {}, `g_${hint}_b`), factors[1])]);
      }
      return grads;
    });
  }

  /**
   * A linear layer z = xW + b (W [in, out], b [out]; both constants) with an LRP rule
   * (rules.ts `LinearRule`; Montavon et al. 2019 Eq. 2.4/2.5): g̃_x = W_ρᵀ(g̃_z ⊙ z/z_ρ).
   * ε = 0 emits exactly the ordinary matmul (+ add) with their ordinary gradients. Otherwise the
   * layer is one tape entry, and `ratio` (z/z_ρ, stabilised), `weightFactor` (W_ρ/W as
   * [in, out], absent when 1) and `biasRho` (b_ρ) let weight and bias relevance use the same
   * redistribution (rules.ts).
   */
  linear(x: Tensor, weight: string, outDim: Dim, bias: string | undefined, rule: LinearRule, hint: string): LinearResult {
    const w = this.w;
    checkLinearRule(rule);
    if (isPlainGradient(rule) || !x.grad) {
      let out = this.matmul(x, this.tape.constant(weight, ['_', outDim]), hint);
      if (bias) out = this.add(out, this.tape.constant(bias, [outDim]), `${hint}_bias`);
      return { out };
    }
    const xw = w.op1('MatMul', [x.name, weight], {}, hint);
    const z = bias ? w.op1('Add', [xw, bias], {}, `${hint}_bias`) : xw;
    const shape: Shape = [...x.shape.slice(0, -1), outDim];
    /** sign(t) with sign(0) = 1 (zennit `stabilize`). */
    const sign = (t: string) => w.op1('Where', [w.op1('GreaterOrEqual', [t, w.scalar(0)]), w.scalar(1), w.scalar(-1)]);
    if (rule.kind === 'alpha-beta') return this.alphaBeta(x, weight, bias, z, shape, rule, hint, sign);
    let weightRho = weight;
    let biasRho = bias;
    let weightFactor: string | undefined;
    let zRho = z;
    let stabiliser: number;
    if (rule.kind === 'epsilon') {
      stabiliser = rule.epsilon;
    } else {
      const positive = (t: string) => w.op1('Relu', [t]);
      const mask = w.op1('Cast', [w.op1('Greater', [weight, w.scalar(0)])], { to: 1 }, `${hint}_wpos`);
      if (rule.kind === 'gamma') {
        const gamma = w.scalar(rule.gamma, `${hint}_gamma`);
        weightRho = w.op1('Add', [weight, w.op1('Mul', [positive(weight), gamma])], {}, `${hint}_w_rho`);
        if (bias) biasRho = w.op1('Add', [bias, w.op1('Mul', [positive(bias), gamma])], {}, `${hint}_b_rho`);
        weightFactor = w.op1('Add', [w.scalar(1), w.op1('Mul', [mask, gamma])], {}, `${hint}_w_factor`);
      } else {
        weightRho = positive(weight);
        if (bias) biasRho = positive(bias);
        weightFactor = mask;
      }
      const xwRho = w.op1('MatMul', [x.name, weightRho], {}, `${hint}_z_rho`);
      zRho = biasRho ? w.op1('Add', [xwRho, biasRho]) : xwRho;
      stabiliser = RULE_STABILISER;
    }
    const denominator = w.op1('Add', [zRho, w.op1('Mul', [sign(zRho), w.scalar(stabiliser)])], {}, `${hint}_z_rho_stab`);
    const ratio = w.op1('Div', [z, denominator], {}, `${hint}_rule_ratio`);
    const out = this.tape.record(z, shape, [x], (g) => {
      const s = w.op1('Mul', [g, ratio], {}, `g_${hint}_s`);
      return [[x, w.op1('MatMul', [s, w.op1('Transpose', [weightRho], { perm: [1, 0] })], {}, `g_${hint}_x`)]];
    });
    return { out, ratio, ...(weightFactor ? { weightFactor } : {}), ...(biasRho ? { biasRho } : {}) };
  }

  /**
   * zennit's AlphaBeta (α2β1; α1β0 is its ZPlus) in VJP form (rules.ts `AlphaBetaRule`):
   * g̃_x = where(x > 0, α s_p W⁺ᵀ − β s_n W⁻ᵀ, α s_p W⁻ᵀ − β s_n W⁺ᵀ), s_p = g̃_z ⊙ z/z_p,
   * s_n = g̃_z ⊙ z/z_n. The readouts get the rule's weight gradient and bias relevance as
   * functions of g̃_z (`weightGrad`, `biasRelevance`), since no single ratio z/z_ρ describes them.
   */
  private alphaBeta(x: Tensor, weight: string, bias: string | undefined, z: string, shape: Shape, rule: { alpha: number; beta: number }, hint: string, sign: (t: string) => string): LinearResult {
    const w = this.w;
    const pos = (t: string) => w.op1('Relu', [t]);
    const neg = (t: string) => w.op1('Min', [t, w.scalar(0)]);
    const xPos = pos(x.name);
    const xNeg = neg(x.name);
    const wPos = pos(weight);
    const wNeg = neg(weight);
    const mm = (a: string, b: string) => w.op1('MatMul', [a, b]);
    const plus = (a: string, b: string) => w.op1('Add', [a, b]);
    const stab = (t: string) => w.op1('Add', [t, w.op1('Mul', [sign(t), w.scalar(RULE_STABILISER)])]);
    const withBias = (t: string, b: string | undefined) => (b ? plus(t, b) : t);
    const zp = stab(withBias(plus(mm(xPos, wPos), mm(xNeg, wNeg)), bias ? pos(bias) : undefined));
    const ratioP = w.op1('Div', [z, zp], {}, `${hint}_ab_ratio_p`);
    const hasBeta = rule.beta !== 0;
    const ratioN = hasBeta ? w.op1('Div', [z, stab(withBias(plus(mm(xPos, wNeg), mm(xNeg, wPos)), bias ? neg(bias) : undefined))], {}, `${hint}_ab_ratio_n`) : undefined;
    const alpha = w.scalar(rule.alpha, `${hint}_alpha`);
    const beta = w.scalar(rule.beta, `${hint}_beta`);
    const scaled = (t: string, k: string) => w.op1('Mul', [t, k]);
    /** α·a − β·b (b only when β ≠ 0). */
    const combine = (a: string, b: (() => string) | undefined) => (b ? w.op1('Sub', [scaled(a, alpha), scaled(b(), beta)]) : scaled(a, alpha));
    const sp = (g: string) => w.op1('Mul', [g, ratioP], {}, `g_${hint}_sp`);
    const sn = (g: string) => w.op1('Mul', [g, ratioN!], {}, `g_${hint}_sn`);
    const T = (t: string) => w.op1('Transpose', [t], { perm: [1, 0] });
    const out = this.tape.record(z, shape, [x], (g) => {
      const p = sp(g);
      const n = ratioN ? sn(g) : undefined;
      const onPositive = combine(mm(p, T(wPos)), n ? () => mm(n, T(wNeg)) : undefined);
      const onNegative = combine(mm(p, T(wNeg)), n ? () => mm(n, T(wPos)) : undefined);
      return [[x, w.op1('Where', [w.op1('Greater', [x.name, w.scalar(0)]), onPositive, onNegative], {}, `g_${hint}_x`)]];
    });
    const rank = x.shape.length;
    const xT = (t: string) => w.op1('Transpose', [t], { perm: [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2] });
    const weightGrad = (g: string) => {
      const p = sp(g);
      const n = ratioN ? sn(g) : undefined;
      const maskPos = w.op1('Cast', [w.op1('Greater', [weight, w.scalar(0)])], { to: 1 });
      const maskNeg = w.op1('Cast', [w.op1('Less', [weight, w.scalar(0)])], { to: 1 });
      const forPos = combine(mm(xT(xPos), p), n ? () => mm(xT(xNeg), n) : undefined);
      const forNeg = combine(mm(xT(xNeg), p), n ? () => mm(xT(xPos), n) : undefined);
      return plus(w.op1('Mul', [forPos, maskPos]), w.op1('Mul', [forNeg, maskNeg]));
    };
    const biasRelevance = bias
      ? (g: string) => combine(w.op1('Mul', [sp(g), pos(bias)]), ratioN ? () => w.op1('Mul', [sn(g), neg(bias)]) : undefined)
      : undefined;
    return { out, weightGrad, ...(biasRelevance ? { biasRelevance } : {}) };
  }

  add(a: Tensor, b: Tensor, hint = 'add'): Tensor {
    const shape = broadcastShape(a.shape, b.shape);
    const out = this.w.op1('Add', [a.name, b.name], {}, hint);
    return this.tape.record(out, shape, [a, b], (g) => [
      [a, unbroadcast(this.w, g, shape, a.shape)],
      [b, unbroadcast(this.w, g, shape, b.shape)],
    ]);
  }

  /**
   * Element-wise product. With both inputs activations this is the product rule's site
   * (SwiGLU): `factors` from the rule table, ½ each for the uniform rule (Eq. 7).
   */
  mul(a: Tensor, b: Tensor, hint = 'mul', factors: readonly [number, number] = [1, 1]): Tensor {
    const shape = broadcastShape(a.shape, b.shape);
    const out = this.w.op1('Mul', [a.name, b.name], {}, hint);
    return this.tape.record(out, shape, [a, b], (g) => {
      const grads: [Tensor, string][] = [];
      if (a.grad && factors[0] !== 0) grads.push([a, this.factor(unbroadcast(this.w, this.w.op1('Mul', [g, b.name]), shape, a.shape), factors[0])]);
      if (b.grad && factors[1] !== 0) grads.push([b, this.factor(unbroadcast(this.w, this.w.op1('Mul', [g, a.name]), shape, b.shape), factors[1])]);
      return grads;
    });
  }

  /** Multiplication by a constant scalar: relevance passes unchanged (constant scaling). */
  scale(x: Tensor, c: number, hint = 'scale'): Tensor {
    const k = this.w.scalar(c, `${hint}_c`);
    const out = this.w.op1('Mul', [x.name, k], {}, hint);
    return this.tape.record(out, x.shape, [x], (g) => [[x, this.w.op1('Mul', [g, k], {}, `g_${hint}`)]]);
  }

  /**
   * Identity forward, gradient multiplied by `gate` (a constant broadcastable to x). Edge
   * attribution uses it to let one downstream node's relevance through at a time.
   */
  gradientGate(x: Tensor, gate: string, hint = 'gate'): Tensor {
    const out = this.w.op1('Identity', [x.name], {}, hint);
    return this.tape.record(out, x.shape, [x], (g) => [[x, this.w.op1('Mul', [g, gate], {}, `g_${hint}`)]]);
  }

  /** Cuts the gradient (CP-LRP's detached attention; never used for ordinary ops). */
  detach(x: Tensor): Tensor {
    return { ...x, grad: false };
  }

  /** Softmax over the last axis. AttnLRP's softmax rule is its ordinary gradient (Prop. 3.1, A.1). */
  softmax(x: Tensor, hint = 'softmax'): Tensor {
    const s = this.w.op1('Softmax', [x.name], { axis: -1 }, hint);
    return this.tape.record(s, x.shape, [x], (g) => {
      const sv = this.tape.read(s, g);
      const gs = this.w.op1('Mul', [g, sv]);
      const sum = this.w.op1('ReduceSum', [gs, this.w.ints([-1])], { keepdims: 1 });
      return [[x, this.w.op1('Mul', [sv, this.w.op1('Sub', [g, sum])], {}, `g_${hint}`)]];
    });
  }

  reshape(x: Tensor, target: readonly number[], shape: Shape, hint = 'reshape'): Tensor {
    const out = this.w.op1('Reshape', [x.name, this.w.ints(target)], {}, hint);
    // The gradient keeps its own batch axis: a local backward (tape.ts `localBackward`) sends
    // several rows through a block whose forward ran on one.
    return this.tape.record(out, shape, [x], (g) => {
      const w = this.w;
      const rest = w.op1('Slice', [w.op1('Shape', [x.name]), w.ints([1]), w.ints([x.shape.length])]);
      return [[x, w.op1('Reshape', [g, w.op1('Concat', [w.ints([-1]), rest], { axis: 0 })], {}, `g_${hint}`)]];
    });
  }

  transpose(x: Tensor, perm: readonly number[], hint = 'transpose'): Tensor {
    const out = this.w.op1('Transpose', [x.name], { perm: [...perm] }, hint);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return this.tape.record(out, perm.map((p) => x.shape[p]!), [x], (g) => [[x, this.w.op1('Transpose', [g], { perm: inverse }, `g_${hint}`)]]);
  }

  /** Sum over `axis`, keeping it as size 1. */
  sumKeep(x: Tensor, axis: number, hint = 'sum'): Tensor {
    const out = this.w.op1('ReduceSum', [x.name, this.w.ints([axis])], { keepdims: 1 }, hint);
    const shape = x.shape.map((d, i) => (i === axis ? 1 : d));
    return this.tape.record(out, shape, [x], (g) => [[x, this.w.op1('Expand', [g, this.w.op1('Shape', [x.name])], {}, `g_${hint}`)]]);
  }

  /**
   * LayerNorm over the last axis, y = (x − μ)/σ · γ + β. LRP treats 1/σ as a constant
   * (Prop. 3.4): the VJP is the centring map's gradient times γ/σ.
   */
  layerNorm(x: Tensor, gamma: string, beta: string | undefined, eps: number, hint = 'ln'): Tensor {
    const w = this.w;
    const mean = w.op1('ReduceMean', [x.name, w.ints([-1])], { keepdims: 1 }, `${hint}_mean`);
    const centred = w.op1('Sub', [x.name, mean], {}, `${hint}_xc`);
    const variance = w.op1('ReduceMean', [w.op1('Mul', [centred, centred]), w.ints([-1])], { keepdims: 1 }, `${hint}_var`);
    const invStd = w.op1('Reciprocal', [w.op1('Sqrt', [w.op1('Add', [variance, w.scalar(eps, 'eps')])])], {}, `${hint}_rstd`);
    const normed = w.op1('Mul', [centred, invStd], {}, `${hint}_xhat`);
    const scaled = w.op1('Mul', [normed, gamma], {}, `${hint}_scaled`);
    const out = beta ? w.op1('Add', [scaled, beta], {}, hint) : scaled;
    const rule = this.rules.layerNorm;
    return this.tape.record(out, x.shape, [x], (g) => {
      const gy = w.op1('Mul', [g, gamma]);
      const meanOf = (t: string) => w.op1('ReduceMean', [t, w.ints([-1])], { keepdims: 1 });
      if (rule === 'std-detached') {
        const u = w.op1('Mul', [gy, invStd]);
        return [[x, w.op1('Sub', [u, meanOf(u)], {}, `g_${hint}`)]];
      }
      // Full gradient: r·(gy − mean(gy) − x̂·mean(gy·x̂)).
      const inner = w.op1('Sub', [w.op1('Sub', [gy, meanOf(gy)]), w.op1('Mul', [normed, meanOf(w.op1('Mul', [gy, normed]))])]);
      return [[x, w.op1('Mul', [inner, invStd], {}, `g_${hint}`)]];
    });
  }

  /** RMSNorm, y = γ·x·rsqrt(mean(x²) + ε). With rsqrt constant the layer is an identity rule. */
  rmsNorm(x: Tensor, gamma: string, eps: number, hint = 'rms', rule: RuleTable['rmsNorm'] = this.rules.rmsNorm): Tensor {
    const w = this.w;
    const meanSquare = w.op1('ReduceMean', [w.op1('Mul', [x.name, x.name]), w.ints([-1])], { keepdims: 1 }, `${hint}_ms`);
    const invRms = w.op1('Reciprocal', [w.op1('Sqrt', [w.op1('Add', [meanSquare, w.scalar(eps, 'eps')])])], {}, `${hint}_rrms`);
    const out = w.op1('Mul', [w.op1('Mul', [x.name, invRms]), gamma], {}, hint);
    return this.tape.record(out, x.shape, [x], (g) => {
      const gy = w.op1('Mul', [g, gamma]);
      const detached = w.op1('Mul', [gy, invRms]);
      if (rule === 'rsqrt-detached') return [[x, detached]];
      // Full gradient: r·gy − x·r³·mean(gy·x).
      const r3 = w.op1('Mul', [invRms, w.op1('Mul', [invRms, invRms])]);
      const correction = w.op1('Mul', [x.name, w.op1('Mul', [r3, w.op1('ReduceMean', [w.op1('Mul', [gy, x.name]), w.ints([-1])], { keepdims: 1 })])]);
      return [[x, w.op1('Sub', [detached, correction], {}, `g_${hint}`)]];
    });
  }

  /** An element-wise activation with its rule: identity (Eq. 9) or the ordinary derivative. */
  activation(x: Tensor, kind: 'gelu_new' | 'gelu' | 'relu' | 'silu', hint = 'act'): Tensor {
    const w = this.w;
    const y = this.activationForward(x.name, kind, hint);
    const rule = kind === 'relu' ? this.rules.relu : kind === 'silu' ? this.rules.silu : this.rules.gelu;
    return this.tape.record(y, x.shape, [x], (g) => {
      if (rule === 'identity') {
        const ratio = w.op1('Div', [y, w.op1('Add', [x.name, w.scalar(IDENTITY_RULE_EPSILON, 'id_eps')])], {}, `${hint}_ratio`);
        return [[x, w.op1('Mul', [g, ratio], {}, `g_${hint}`)]];
      }
      return [[x, w.op1('Mul', [g, this.activationDerivative(x.name, kind)], {}, `g_${hint}`)]];
    });
  }

  private activationForward(x: string, kind: 'gelu_new' | 'gelu' | 'relu' | 'silu', hint: string): string {
    const w = this.w;
    switch (kind) {
      case 'relu':
        return w.op1('Relu', [x], {}, hint);
      case 'silu':
        return w.op1('Mul', [x, w.op1('Sigmoid', [x])], {}, hint);
      case 'gelu':
        return w.op1('Mul', [w.op1('Mul', [x, w.scalar(0.5)]), w.op1('Add', [w.scalar(1), w.op1('Erf', [w.op1('Mul', [x, w.scalar(Math.SQRT1_2)])])])], {}, hint);
      case 'gelu_new': {
        const cube = w.op1('Mul', [x, w.op1('Mul', [x, x])]);
        const inner = w.op1('Mul', [w.op1('Add', [x, w.op1('Mul', [cube, w.scalar(0.044715)])]), w.scalar(SQRT_2_OVER_PI)]);
        return w.op1('Mul', [w.op1('Mul', [x, w.scalar(0.5)]), w.op1('Add', [w.scalar(1), w.op1('Tanh', [inner])])], {}, hint);
      }
    }
  }

  private activationDerivative(x: string, kind: 'gelu_new' | 'gelu' | 'relu' | 'silu'): string {
    const w = this.w;
    switch (kind) {
      case 'relu':
        return w.op1('Cast', [w.op1('Greater', [x, w.scalar(0)])], { to: 1 });
      case 'silu': {
        const s = w.op1('Sigmoid', [x]);
        return w.op1('Mul', [s, w.op1('Add', [w.scalar(1), w.op1('Mul', [x, w.op1('Sub', [w.scalar(1), s])])])]);
      }
      case 'gelu': {
        const cdf = w.op1('Mul', [w.scalar(0.5), w.op1('Add', [w.scalar(1), w.op1('Erf', [w.op1('Mul', [x, w.scalar(Math.SQRT1_2)])])])]);
        const pdf = w.op1('Mul', [w.op1('Exp', [w.op1('Mul', [w.op1('Mul', [x, x]), w.scalar(-0.5)])]), w.scalar(1 / Math.sqrt(2 * Math.PI))]);
        return w.op1('Add', [cdf, w.op1('Mul', [x, pdf])]);
      }
      case 'gelu_new': {
        const x2 = w.op1('Mul', [x, x]);
        const inner = w.op1('Mul', [w.op1('Add', [x, w.op1('Mul', [w.op1('Mul', [x2, x]), w.scalar(0.044715)])]), w.scalar(SQRT_2_OVER_PI)]);
        const t = w.op1('Tanh', [inner]);
        const dInner = w.op1('Mul', [w.scalar(SQRT_2_OVER_PI), w.op1('Add', [w.scalar(1), w.op1('Mul', [x2, w.scalar(3 * 0.044715)])])]);
        const sech2 = w.op1('Sub', [w.scalar(1), w.op1('Mul', [t, t])]);
        return w.op1('Add', [w.op1('Mul', [w.scalar(0.5), w.op1('Add', [w.scalar(1), t])]), w.op1('Mul', [w.op1('Mul', [w.scalar(0.5), x]), w.op1('Mul', [sech2, dInner])])]);
      }
    }
  }

  /** Grouped-query attention: each of the kv heads serves `rep` query heads. [B,T,Hkv,d] → [B,T,Hkv·rep,d]. */
  repeatKv(x: Tensor, rep: number, nKv: number, headDim: number, hint = 'repeat_kv'): Tensor {
    if (rep === 1) return x;
    const w = this.w;
    const expanded = w.op1('Expand', [w.op1('Unsqueeze', [x.name, w.ints([3])]), w.ints([1, 1, 1, rep, 1])]);
    const out = w.op1('Reshape', [expanded, w.ints([0, 0, nKv * rep, headDim])], {}, hint);
    const shape: Shape = [x.shape[0]!, x.shape[1]!, nKv * rep, headDim];
    return this.tape.record(out, shape, [x], (g) => {
      const grouped = w.op1('Reshape', [g, w.ints([0, 0, nKv, rep, headDim])]);
      return [[x, w.op1('ReduceSum', [grouped, w.ints([3])], { keepdims: 0 }, `g_${hint}`)]];
    });
  }

  /**
   * Rotary embedding, y = x·cos + rotate_half(x)·sin (HF layout: halves, not interleaved), on
   * the first `dims` of the last axis (GPT-NeoX partial rotary; the rest pass unchanged).
   * cos/sin are constants, so the ordinary gradient is the rule: g̃x = g̃·cos − rotate_half(g̃·sin).
   */
  rope(x: Tensor, cos: string, sin: string, hint = 'rope', dims?: number): Tensor {
    const w = this.w;
    const width = x.shape[x.shape.length - 1];
    const partial = dims !== undefined && typeof width === 'number' && dims < width;
    const rotate = (t: string) => {
      const [first, second] = w.op('Split', [t], { axis: -1, num_outputs: 2 }, 'rot_half', 2) as [string, string];
      return w.op1('Concat', [w.op1('Neg', [second]), first], { axis: -1 });
    };
    const forward = (t: string) => w.op1('Add', [w.op1('Mul', [t, cos]), w.op1('Mul', [rotate(t), sin])]);
    const backward = (g: string) => w.op1('Sub', [w.op1('Mul', [g, cos]), rotate(w.op1('Mul', [g, sin]))]);
    // Partial rotary: split off the rotated dims, rotate them, and join the untouched rest.
    const onRotated = (t: string, f: (part: string) => string, out: string) => {
      if (!partial) return f(t);
      const [rot, pass] = w.op('Split', [t, w.ints([dims, (width as number) - dims])], { axis: -1 }, `${out}_split`, 2) as [string, string];
      return w.op1('Concat', [f(rot), pass], { axis: -1 }, out);
    };
    const out = onRotated(x.name, forward, hint);
    return this.tape.record(out, x.shape, [x], (g) => [[x, onRotated(g, backward, `g_${hint}`)]]);
  }

  /**
   * Tanh soft-capping, y = cap·tanh(x/cap) (Gemma 2 scores and logits), with the table's rule:
   * the identity rule g̃x = g̃y · y/(x + 1e-10) (Eq. 9), or the ordinary derivative 1 − tanh².
   */
  softcap(x: Tensor, cap: number, hint = 'softcap'): Tensor {
    const w = this.w;
    const t = w.op1('Tanh', [w.op1('Mul', [x.name, w.scalar(1 / cap, `${hint}_inv_cap`)])], {}, `${hint}_tanh`);
    const y = w.op1('Mul', [t, w.scalar(cap, `${hint}_cap`)], {}, hint);
    const rule = this.rules.softcap;
    return this.tape.record(y, x.shape, [x], (g) => {
      if (rule === 'identity') {
        const ratio = w.op1('Div', [this.tape.read(y, g), w.op1('Add', [this.tape.read(x.name, g), w.scalar(IDENTITY_RULE_EPSILON, 'id_eps')])], {}, `${hint}_ratio`);
        return [[x, w.op1('Mul', [g, ratio], {}, `g_${hint}`)]];
      }
      const tv = this.tape.read(t, g);
      return [[x, w.op1('Mul', [g, w.op1('Sub', [w.scalar(1), w.op1('Mul', [tv, tv])])], {}, `g_${hint}`)]];
    });
  }
}

/** A linear layer's output and, under a non-gradient rule, what its relevance readouts need. */
export interface LinearResult {
  readonly out: Tensor;
  /** z/z_ρ (stabilised): the modified gradient at z is g̃_z ⊙ ratio. */
  readonly ratio?: string;
  /** W_ρ/W as [in, out] (1 + γ[W > 0] or [W > 0]); absent when 1. */
  readonly weightFactor?: string;
  /** b_ρ. */
  readonly biasRho?: string;
  /**
   * Rules without a single z/z_ρ (α-β): the modified weight gradient g̃_W [B, in, out] from the
   * raw g̃_z (R_W = W ⊙ g̃_W), replacing xᵀ(g̃_z ⊙ ratio) ⊙ weightFactor.
   */
  readonly weightGrad?: (gz: string) => string;
  /** Likewise the bias relevance per position [B, T, out], replacing g̃_z ⊙ ratio ⊙ b_ρ. */
  readonly biasRelevance?: (gz: string) => string;
}

export type { Dim, Shape, Tensor };
