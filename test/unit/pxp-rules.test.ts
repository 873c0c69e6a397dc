/**
 * PXP's linear-layer rules (rules.ts `LinearRule`: ε, γ, z⁺; Montavon et al. 2019 Eq. 2.4/2.5,
 * Hatefi et al. 2024) against an explicit float64 computation of the rule:
 *   R_i = Σ_j x_i w^ρ_ij / z^ρ_j · R_j,   R_j = z_j ⊙ g̃_z_j,
 * on a single linear layer and a 2-layer MLP run by ONNX Runtime (the tape gives g̃_x, and
 * R_x = x ⊙ g̃_x); then the `pxp-gamma` composite end to end on the embedded model, and ε = 0
 * everywhere compiling to exactly AttnLRP's graph.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxWriter } from '../../src/engine/onnx';
import { Ops } from '../../src/engine/ops';
import { COMPOSITE_RULES, GRADIENT_LINEAR, RULE_STABILISER, checkLinearRule, layerGroup, type LinearRule, type RuleTable } from '../../src/engine/rules';
import { Tape } from '../../src/engine/tape';
import { compileGraph, OUT, type GraphOptions } from '../../src/engine/build';
import { Engine } from '../../src/engine/engine';
import { loadModelFolder } from '../../src/models/load';
import { EMBEDDED_MODEL, missingShared, sharedModel } from '../helpers';

const f32 = (xs: number[]) => xs.map(Math.fround);
const random = (n: number, seed: number) => {
  let s = seed;
  return f32(Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 2 - 1;
  }));
};
/** Max error relative to the reference's largest magnitude. */
const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  const scale = Math.max(...Array.from(b, Math.abs), 1e-30);
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!))) / scale;
};

interface Layer { W: number[]; b: number[]; nIn: number; nOut: number; rule: LinearRule }

/**
 * zennit's AlphaBeta written out, float64 (rules.ts `AlphaBetaRule`): per contribution
 * c_ij = x_i w_ij, the positive part p_ij = x⁺w⁺ + x⁻w⁻ and the negative part x⁺w⁻ + x⁻w⁺,
 * z_p = Σ_i p_ij + b⁺_j, z_n = Σ_i n_ij + b⁻_j, R_i = Σ_j (α p_ij/z_p_j − β n_ij/z_n_j) R_j.
 */
function explicitAlphaBeta(x: number[], N: number, layer: Layer & { rule: { kind: 'alpha-beta'; alpha: number; beta: number } }) {
  const { W, b, nIn, nOut, rule } = layer;
  const pos = (v: number) => Math.max(v, 0);
  const neg = (v: number) => Math.min(v, 0);
  const stab = (v: number) => v + (v >= 0 ? 1 : -1) * RULE_STABILISER;
  const z: number[] = [];
  const zp: number[] = [];
  const zn: number[] = [];
  for (let n = 0; n < N; n++) for (let j = 0; j < nOut; j++) {
    let a = b[j]!, p = pos(b[j]!), q = neg(b[j]!);
    for (let i = 0; i < nIn; i++) {
      const xi = x[n * nIn + i]!, w = W[i * nOut + j]!;
      a += xi * w;
      p += pos(xi) * pos(w) + neg(xi) * neg(w);
      q += pos(xi) * neg(w) + neg(xi) * pos(w);
    }
    z.push(a);
    zp.push(stab(p));
    zn.push(stab(q));
  }
  const redistribute = (Rz: number[]) => {
    const Rx: number[] = [];
    for (let n = 0; n < N; n++) for (let i = 0; i < nIn; i++) {
      const xi = x[n * nIn + i]!;
      let acc = 0;
      for (let j = 0; j < nOut; j++) {
        const w = W[i * nOut + j]!;
        const p = pos(xi) * pos(w) + neg(xi) * neg(w);
        const q = pos(xi) * neg(w) + neg(xi) * pos(w);
        acc += (rule.alpha * p / zp[n * nOut + j]! - rule.beta * q / zn[n * nOut + j]!) * Rz[n * nOut + j]!;
      }
      Rx.push(acc);
    }
    return Rx;
  };
  return { z, redistribute };
}

/** Explicit rule, float64: z, and R_x from R_z (x [N, nIn], W [nIn, nOut]). */
function explicitLayer(x: number[], N: number, layer: Layer) {
  const { W, b, nIn, nOut, rule } = layer;
  if (rule.kind === 'alpha-beta') return explicitAlphaBeta(x, N, { ...layer, rule });
  const pos = (v: number) => Math.max(v, 0);
  const wRho = W.map((w) => (rule.kind === 'epsilon' ? w : rule.kind === 'gamma' ? w + rule.gamma * pos(w) : pos(w)));
  const bRho = b.map((v) => (rule.kind === 'epsilon' ? v : rule.kind === 'gamma' ? v + rule.gamma * pos(v) : pos(v)));
  const stab = rule.kind === 'epsilon' ? rule.epsilon : RULE_STABILISER;
  const z: number[] = [];
  const zRho: number[] = [];
  for (let n = 0; n < N; n++) for (let j = 0; j < nOut; j++) {
    let a = b[j]!;
    let c = bRho[j]!;
    for (let i = 0; i < nIn; i++) {
      a += x[n * nIn + i]! * W[i * nOut + j]!;
      c += x[n * nIn + i]! * wRho[i * nOut + j]!;
    }
    z.push(a);
    zRho.push(c + (c >= 0 ? 1 : -1) * stab);
  }
  /** R_i = Σ_j x_i w^ρ_ij / z^ρ_j · R_j. */
  const redistribute = (Rz: number[]) => {
    const Rx: number[] = [];
    for (let n = 0; n < N; n++) for (let i = 0; i < nIn; i++) {
      let acc = 0;
      for (let j = 0; j < nOut; j++) acc += (x[n * nIn + i]! * wRho[i * nOut + j]! * Rz[n * nOut + j]!) / zRho[n * nOut + j]!;
      Rx.push(acc);
    }
    return Rx;
  };
  return { z, redistribute };
}

/** Runs x → layers (ReLU between) through the tape and ORT; returns R at the input and each hidden. */
async function runMlp(x: number[], N: number, layers: Layer[], g: number[]) {
  const w = new OnnxWriter();
  const tape = new Tape(w);
  const ops = new Ops(tape, COMPOSITE_RULES.attnlrp);
  const xIn = tape.leaf(w.input('x', 'float32', [N, layers[0]!.nIn]), [N, layers[0]!.nIn]);
  const reads = [xIn];
  let h = xIn;
  layers.forEach((layer, l) => {
    const W = w.floatInitializer(`W${l}`, Float32Array.from(layer.W), [layer.nIn, layer.nOut]);
    const b = w.floatInitializer(`b${l}`, Float32Array.from(layer.b), [layer.nOut]);
    h = ops.linear(h, W, layer.nOut, b, layer.rule, `lin${l}`).out;
    if (l < layers.length - 1) {
      h = ops.activation(h, 'relu', `relu${l}`);
      reads.push(h);
    }
  });
  const gIn = w.input('g', 'float32', [N, layers[layers.length - 1]!.nOut]);
  w.output('out', h.name);
  tape.seed(h, gIn);
  tape.backward();
  reads.forEach((t, i) => w.output(`grad_${i}`, tape.gradOf(t)!));
  const session = await ort.InferenceSession.create(w.encode('pxp-rules-test'));
  const result = await session.run({
    x: new ort.Tensor('float32', Float32Array.from(x), [N, layers[0]!.nIn]),
    g: new ort.Tensor('float32', Float32Array.from(g), [N, layers[layers.length - 1]!.nOut]),
  });
  const arr = (n: string) => Array.from(result[n]!.data as Float32Array);
  return { out: arr('out'), grads: reads.map((_, i) => arr(`grad_${i}`)) };
}

const RULES: LinearRule[] = [
  { kind: 'epsilon', epsilon: 0 },
  { kind: 'epsilon', epsilon: 1e-6 },
  { kind: 'epsilon', epsilon: 0.01 },
  { kind: 'epsilon', epsilon: 0.25 },
  { kind: 'gamma', gamma: 0.1 },
  { kind: 'gamma', gamma: 0.25 },
  { kind: 'gamma', gamma: 1 },
  { kind: 'gamma', gamma: 10 },
  { kind: 'zplus' },
  { kind: 'alpha-beta', alpha: 1, beta: 0 },
  { kind: 'alpha-beta', alpha: 2, beta: 1 },
];
const name = (r: LinearRule) => (r.kind === 'epsilon' ? `ε = ${r.epsilon}` : r.kind === 'gamma' ? `γ = ${r.gamma}` : r.kind === 'zplus' ? 'z⁺ (W⁺)' : `α${r.alpha}β${r.beta}`);
const TOL = 1e-6;

describe('PXP linear rules against the explicit rule (float64)', () => {
  for (const rule of RULES) {
    it(`single linear layer, ${name(rule)}: R_x = x ⊙ g̃_x = Σ_j x_i w^ρ_ij/z^ρ_j · R_j`, async () => {
      const N = 3, nIn = 5, nOut = 4;
      const x = random(N * nIn, 11);
      const layer: Layer = { W: random(nIn * nOut, 12), b: random(nOut, 13).map((v) => Math.fround(0.3 * v)), nIn, nOut, rule };
      const g = random(N * nOut, 14);
      const { out, grads } = await runMlp(x, N, [layer], g);
      const { z, redistribute } = explicitLayer(x, N, layer);
      assert.ok(relErr(out, z) < TOL, 'forward');
      const Rx = redistribute(z.map((v, i) => v * g[i]!));
      const err = relErr(x.map((v, i) => v * grads[0]![i]!), Rx);
      assert.ok(err <= TOL, `${name(rule)}: relative error ${err}`);
    });
  }

  const mixed: [LinearRule, LinearRule][] = [...RULES.map((r) => [r, r] as [LinearRule, LinearRule]), [{ kind: 'gamma', gamma: 0.25 }, { kind: 'epsilon', epsilon: 1e-6 }], [{ kind: 'zplus' }, { kind: 'epsilon', epsilon: 0.01 }], [{ kind: 'alpha-beta', alpha: 2, beta: 1 }, { kind: 'alpha-beta', alpha: 1, beta: 0 }]];
  for (const [first, second] of mixed) {
    it(`2-layer MLP (ReLU), ${name(first)} then ${name(second)}: hidden and input relevance`, async () => {
      const N = 2, nIn = 6, nHid = 5, nOut = 3;
      const x = random(N * nIn, 21);
      const layers: Layer[] = [
        { W: random(nIn * nHid, 22), b: random(nHid, 23).map((v) => Math.fround(0.2 * v)), nIn, nOut: nHid, rule: first },
        { W: random(nHid * nOut, 24), b: random(nOut, 25).map((v) => Math.fround(0.2 * v)), nIn: nHid, nOut, rule: second },
      ];
      const g = random(N * nOut, 26);
      const { grads } = await runMlp(x, N, layers, g);
      const one = explicitLayer(x, N, layers[0]!);
      const hidden = one.z.map((v) => Math.max(v, 0));
      const two = explicitLayer(hidden, N, layers[1]!);
      const Rh = two.redistribute(two.z.map((v, i) => v * g[i]!));
      // ReLU's rule is its gradient: R at the pre-activation equals R at the hidden unit.
      const Rx = one.redistribute(Rh);
      const errH = relErr(hidden.map((v, i) => v * grads[1]![i]!), Rh);
      const errX = relErr(x.map((v, i) => v * grads[0]![i]!), Rx);
      assert.ok(errH <= TOL, `hidden: relative error ${errH}`);
      assert.ok(errX <= TOL, `input: relative error ${errX}`);
    });
  }
});

describe('α-β weight and bias relevance against the explicit shares (float64)', () => {
  for (const [alpha, beta] of [[2, 1], [1, 0]] as const) {
    it(`α${alpha}β${beta}: W ⊙ g̃_W = Σ_n (α p_nij/z_p − β q_nij/z_n) R_nj, bias α b⁺R/z_p − β b⁻R/z_n`, async () => {
      const N = 3, nIn = 5, nOut = 4;
      const x = random(N * nIn, 31);
      const W = random(nIn * nOut, 32);
      const b = random(nOut, 33).map((v) => Math.fround(0.3 * v));
      const g = random(N * nOut, 34);
      const w = new OnnxWriter();
      const tape = new Tape(w);
      const ops = new Ops(tape, COMPOSITE_RULES.attnlrp);
      const xIn = tape.leaf(w.input('x', 'float32', [N, nIn]), [N, nIn]);
      const Wn = w.floatInitializer('W', Float32Array.from(W), [nIn, nOut]);
      const bn = w.floatInitializer('b', Float32Array.from(b), [nOut]);
      const res = ops.linear(xIn, Wn, nOut, bn, { kind: 'alpha-beta', alpha, beta }, 'lin');
      const gIn = w.input('g', 'float32', [N, nOut]);
      w.output('weight_rel', w.op1('Mul', [res.weightGrad!(gIn), Wn]));
      w.output('bias_rel', res.biasRelevance!(gIn));
      const session = await ort.InferenceSession.create(w.encode('pxp-ab-shares'));
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [N, nIn]), g: new ort.Tensor('float32', Float32Array.from(g), [N, nOut]) });
      const pos = (v: number) => Math.max(v, 0);
      const neg = (v: number) => Math.min(v, 0);
      const stab = (v: number) => v + (v >= 0 ? 1 : -1) * RULE_STABILISER;
      const RW = new Array<number>(nIn * nOut).fill(0);
      const Rb: number[] = [];
      for (let n = 0; n < N; n++) for (let j = 0; j < nOut; j++) {
        let z = b[j]!, zp = pos(b[j]!), zn = neg(b[j]!);
        for (let i = 0; i < nIn; i++) {
          const xi = x[n * nIn + i]!, wij = W[i * nOut + j]!;
          z += xi * wij;
          zp += pos(xi) * pos(wij) + neg(xi) * neg(wij);
          zn += pos(xi) * neg(wij) + neg(xi) * pos(wij);
        }
        const R = z * g[n * nOut + j]!;
        for (let i = 0; i < nIn; i++) {
          const xi = x[n * nIn + i]!, wij = W[i * nOut + j]!;
          RW[i * nOut + j]! += (alpha * (pos(xi) * pos(wij) + neg(xi) * neg(wij))) / stab(zp) * R - (beta * (pos(xi) * neg(wij) + neg(xi) * pos(wij))) / stab(zn) * R;
        }
        Rb.push((alpha * pos(b[j]!)) / stab(zp) * R - (beta * neg(b[j]!)) / stab(zn) * R);
      }
      const errW = relErr(out.weight_rel!.data as Float32Array, RW);
      const errB = relErr(out.bias_rel!.data as Float32Array, Rb);
      assert.ok(errW <= TOL, `weight relevance: relative error ${errW}`);
      assert.ok(errB <= TOL, `bias relevance: relative error ${errB}`);
    });
  }
});

describe('α-β parameters', () => {
  it('refuses α − β ≠ 1 and negative α or β, as zennit does', () => {
    assert.throws(() => checkLinearRule({ kind: 'alpha-beta', alpha: 2, beta: 0 }), /α − β must be 1/);
    assert.throws(() => checkLinearRule({ kind: 'alpha-beta', alpha: 0.5, beta: -0.5 }), /≥ 0/);
    assert.throws(() => checkLinearRule({ kind: 'epsilon', epsilon: -1 }), /ε must be/);
    checkLinearRule({ kind: 'alpha-beta', alpha: 2, beta: 1 });
  });
});

describe('layer groups', () => {
  it('blocks split into thirds by index', () => {
    assert.deepEqual(Array.from({ length: 6 }, (_, l) => layerGroup(l, 6)), ['low', 'low', 'mid', 'mid', 'high', 'high']);
    assert.deepEqual(Array.from({ length: 4 }, (_, l) => layerGroup(l, 4)), ['low', 'low', 'mid', 'high']);
    assert.deepEqual([layerGroup(0, 1)], ['low']);
  });
});

describe('pxp-gamma on the embedded model', () => {
  let engine: Engine;
  after(() => engine?.dispose());
  const ids = [5, 17, 300, 42, 9, 77, 128, 3];
  const target = { kind: 'logit' as const, position: ids.length - 1, token: 10 };

  it('with every linear rule ε = 0 the graph is byte-for-byte AttnLRP’s (no op added)', () => {
    const model = loadModelFolder(EMBEDDED_MODEL);
    const options = (rules: RuleTable | undefined): GraphOptions => ({ composite: 'attnlrp', interventions: false, hooks: false, weightRelevance: [], ...(rules ? { rules } : {}) });
    const plain = compileGraph(model.spec, model.weights, options(undefined));
    const zeroed = compileGraph(model.spec, model.weights, options({ ...COMPOSITE_RULES['pxp-gamma'], linear: GRADIENT_LINEAR }));
    assert.deepEqual(Buffer.from(zeroed.model), Buffer.from(plain.model));
    const pxp = compileGraph(model.spec, model.weights, options(COMPOSITE_RULES['pxp-gamma']));
    assert.throws(() => compileGraph(model.spec, model.weights, { ...options(COMPOSITE_RULES['pxp-gamma']), edges: true }), /edge attribution and prompt graphs need ε = 0 linear rules/);
    assert.ok(pxp.nodeCount > plain.nodeCount, `pxp-gamma adds the rules' ops (${pxp.nodeCount} vs ${plain.nodeCount})`);
  });

  it('attributes, differs from AttnLRP, and ε → 0 through the rule path approaches AttnLRP', async () => {
    engine = await Engine.load(EMBEDDED_MODEL);
    const [p] = await engine.attribute({ ids: [ids], targets: [target], mode: 'pxp-gamma' });
    const [a] = await engine.attribute({ ids: [ids], targets: [target], mode: 'attnlrp' });
    assert.ok(Array.from(p!.tokenRelevance).every(Number.isFinite));
    assert.equal(p!.targetValue, a!.targetValue);
    const diff = relErr(p!.tokenRelevance, a!.tokenRelevance);
    assert.ok(diff > 1e-3, `γ changes the token relevance (relative difference ${diff})`);

    // Weight relevance keeps the rule's redistribution: at the bias-free unembedding (ε = 1e-6)
    // Σ R_W = Σ_j z_j g̃_j · z_j/(z_j + ε) — the explained logit; at a γ layer (block 0's c_fc,
    // "low") Σ_j R_W_ij equals the rule's input relevance share, so the sum is finite and
    // differs from the plain gradient's.
    const [pw] = await engine.attribute({ ids: [ids], targets: [target], mode: 'pxp-gamma', weights: ['lm_head.weight', 'transformer.h.0.mlp.c_fc.weight'] });
    const [aw] = await engine.attribute({ ids: [ids], targets: [target], mode: 'attnlrp', weights: ['transformer.h.0.mlp.c_fc.weight'] });
    const total = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, v) => s + v, 0);
    const head = total(pw!.weightRelevance['lm_head.weight']!);
    assert.ok(Math.abs(head - p!.targetValue) <= 1e-4 * Math.abs(p!.targetValue), `Σ R_W(lm_head) ${head} vs logit ${p!.targetValue}`);
    const fc = total(pw!.weightRelevance['transformer.h.0.mlp.c_fc.weight']!);
    const fcPlain = total(aw!.weightRelevance['transformer.h.0.mlp.c_fc.weight']!);
    assert.ok(Number.isFinite(fc) && Math.abs(fc - fcPlain) > 1e-4 * Math.abs(fcPlain), `γ weight relevance ${fc} vs gradient ${fcPlain}`);

    // The ε path with a tiny ε (ops added, ratio z/(z + ε) ≈ 1) against the plain gradient, by ORT directly.
    const model = loadModelFolder(EMBEDDED_MODEL);
    const tiny: LinearRule = { kind: 'epsilon', epsilon: 1e-12 };
    const rules = { ...COMPOSITE_RULES.attnlrp, linear: { low: tiny, mid: tiny, high: tiny, head: tiny } };
    const graph = compileGraph(model.spec, model.weights, { composite: 'attnlrp', interventions: false, hooks: false, weightRelevance: [], rules });
    const session = await ort.InferenceSession.create(graph.model, { externalData: graph.externalData });
    const T = ids.length, V = model.spec.vocabSize;
    const seedPosition = new Float32Array(T);
    seedPosition[T - 1] = 1;
    const seed = new Float32Array(V);
    seed[10] = 1;
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, T]),
      seed_position: new ort.Tensor('float32', seedPosition, [1, T]),
      seed: new ort.Tensor('float32', seed, [1, V]),
    });
    const err = relErr(out[OUT.tokenRelevance]!.data as Float32Array, a!.tokenRelevance);
    assert.ok(err < 1e-4, `ε = 1e-12 vs ordinary gradient: relative error ${err}`);
  });

  it('α2β1 everywhere: weight relevance at the bias-free unembedding sums to the explained logit (α R − β R = R)', async () => {
    const ab: LinearRule = { kind: 'alpha-beta', alpha: 2, beta: 1 };
    const rules: RuleTable = { ...COMPOSITE_RULES.attnlrp, linear: { low: ab, mid: ab, high: ab, head: ab } };
    const [r] = await engine.attribute({ ids: [ids], targets: [target], mode: 'attnlrp', rules, weights: ['lm_head.weight', 'transformer.h.0.mlp.c_fc.weight'] });
    const [a] = await engine.attribute({ ids: [ids], targets: [target], mode: 'attnlrp' });
    const total = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, v) => s + v, 0);
    const head = total(r!.weightRelevance['lm_head.weight']!);
    assert.ok(Math.abs(head - r!.targetValue) <= 1e-3 * Math.abs(r!.targetValue), `Σ R_W(lm_head) ${head} vs logit ${r!.targetValue}`);
    assert.ok(Array.from(r!.weightRelevance['transformer.h.0.mlp.c_fc.weight']!).every(Number.isFinite));
    assert.ok(relErr(r!.tokenRelevance, a!.tokenRelevance) > 1e-3, 'α2β1 changes the token relevance');
  });
});

describe('conservation under the α-β rules (bias-free random Llama, CP-LRP softmax)', { skip: missingShared('models/random-tiny-llama/model.safetensors') }, () => {
  let engine: Engine;
  after(() => engine?.dispose());
  // Without biases every α-β layer passes on α R − β R = R (up to the 1e-6 stabiliser), and CP-LRP
  // conserves through attention and norms, so Σ token relevance is the explained logit.
  const ids = [5, 17, 300, 42, 9, 77, 128, 3];
  for (const rule of [{ kind: 'alpha-beta', alpha: 2, beta: 1 }, { kind: 'alpha-beta', alpha: 1, beta: 0 }] as const) {
    it(`α${rule.alpha}β${rule.beta} in every group: Σ token relevance = the logit within 1e-4 relative, and ≠ CP-LRP's`, async () => {
      engine ??= await Engine.load(sharedModel('random-tiny-llama'));
      const rules: RuleTable = { ...COMPOSITE_RULES['cp-lrp'], linear: { low: rule, mid: rule, high: rule, head: rule } };
      const target = { kind: 'logit' as const, position: ids.length - 1, token: 10 };
      const [r] = await engine.attribute({ ids: [ids], targets: [target], mode: 'cp-lrp', rules });
      const [c] = await engine.attribute({ ids: [ids], targets: [target], mode: 'cp-lrp' });
      const total = Array.from(r!.tokenRelevance).reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(total - r!.targetValue) <= 1e-4 * Math.abs(r!.targetValue), `Σ R ${total} vs logit ${r!.targetValue}`);
      assert.ok(relErr(r!.tokenRelevance, c!.tokenRelevance) > 1e-3, 'the rule changes the token relevance');
    });
  }
});
