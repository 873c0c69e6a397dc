/**
 * Each LRP rule against its closed form, on a tiny hand-built graph run by ONNX Runtime
 * (methods.md A.1, G.1). The tape computes g̃; relevance is R = t ⊙ g̃; the closed forms are
 * computed here in float64.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxWriter } from '../../src/engine/onnx';
import { Ops } from '../../src/engine/ops';
import { COMPOSITE_RULES, type RuleTable } from '../../src/engine/rules';
import { Tape, type Tensor } from '../../src/engine/tape';

type Feeds = Record<string, { data: number[]; dims: number[] }>;

/** Builds a graph with `build`, seeds the output with the input "g", returns named outputs. */
async function run(rules: RuleTable, feeds: Feeds, build: (ops: Ops, input: (n: string) => Tensor, constant: (n: string) => string) => { out: Tensor; read: Tensor[] }) {
  const w = new OnnxWriter();
  const tape = new Tape(w);
  const ops = new Ops(tape, rules);
  const input = (n: string) => tape.leaf(w.input(n, 'float32', feeds[n]!.dims), feeds[n]!.dims);
  const constant = (n: string) => w.input(n, 'float32', feeds[n]!.dims);
  const { out, read } = build(ops, input, constant);
  const g = w.input('g', 'float32', feeds.g!.dims);
  w.output('out', out.name);
  tape.seed(out, g);
  tape.backward();
  read.forEach((t, i) => w.output(`grad_${i}`, tape.gradOf(t)!));
  const session = await ort.InferenceSession.create(w.encode('test'));
  const result = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', Float32Array.from(v.data), v.dims)])));
  const arr = (n: string) => Array.from(result[n]!.data as Float32Array);
  return { out: arr('out'), grads: read.map((_, i) => arr(`grad_${i}`)) };
}

const random = (n: number, seed: number) => {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 2 - 1;
  });
};
const close = (a: number[], b: number[], tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  const scale = Math.max(...b.map(Math.abs), 1e-6);
  const err = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
  assert.ok(err <= tol * scale, `${what}: max error ${err} (scale ${scale})`);
};
const times = (a: number[], b: number[]) => a.map((v, i) => v * b[i]!);

describe('LRP rules against their closed forms', () => {
  it('softmax (AttnLRP, Prop. 3.1): R_x = x ⊙ (R − s·ΣR) with R = s ⊙ g̃', async () => {
    const x = random(6, 1).map((v) => 3 * v);
    const g = random(6, 2);
    const { out: s, grads } = await run(COMPOSITE_RULES.attnlrp, { x: { data: x, dims: [1, 6] }, g: { data: g, dims: [1, 6] } }, (ops, input) => {
      const xi = input('x');
      return { out: ops.softmax(xi), read: [xi] };
    });
    const R = times(s, g);
    const total = R.reduce((a, b) => a + b, 0);
    close(times(x, grads[0]!), x.map((xi, i) => xi * (R[i]! - s[i]! * total)), 1e-5, 'softmax rule');
  });

  it('matmul of two activations (uniform rule, Prop. 3.3): each side gets half of the ε-rule share', async () => {
    const A = random(6, 3); // [2,3]
    const B = random(6, 4); // [3,2]
    const g = random(4, 5); // [2,2]
    const { out: O, grads } = await run(COMPOSITE_RULES.attnlrp, { a: { data: A, dims: [2, 3] }, b: { data: B, dims: [3, 2] }, g: { data: g, dims: [2, 2] } }, (ops, input) => {
      const a = input('a');
      const b = input('b');
      return { out: ops.matmul(a, b, 'mm', COMPOSITE_RULES.attnlrp.qk), read: [a, b] };
    });
    const R = times(O, g);
    const RA: number[] = [];
    for (let j = 0; j < 2; j++) for (let i = 0; i < 3; i++) {
      let acc = 0;
      for (let p = 0; p < 2; p++) acc += (A[j * 3 + i]! * B[i * 2 + p]! * R[j * 2 + p]!) / (2 * O[j * 2 + p]!);
      RA.push(acc);
    }
    const RB: number[] = [];
    for (let i = 0; i < 3; i++) for (let p = 0; p < 2; p++) {
      let acc = 0;
      for (let j = 0; j < 2; j++) acc += (A[j * 3 + i]! * B[i * 2 + p]! * R[j * 2 + p]!) / (2 * O[j * 2 + p]!);
      RB.push(acc);
    }
    close(times(A, grads[0]!), RA, 1e-4, 'R_A');
    close(times(B, grads[1]!), RB, 1e-4, 'R_B');
    // Together they conserve: ΣR_A + ΣR_B = ΣR_O.
    const sumOf = (v: number[]) => v.reduce((s, t) => s + t, 0);
    assert.ok(Math.abs(sumOf(times(A, grads[0]!)) + sumOf(times(B, grads[1]!)) - sumOf(R)) < 1e-4);
  });

  it('product of two activations (uniform rule, Eq. 7): R_a = R_b = R_y / 2', async () => {
    const a = random(5, 6);
    const b = random(5, 7);
    const g = random(5, 8);
    const { out: y, grads } = await run(COMPOSITE_RULES.attnlrp, { a: { data: a, dims: [5] }, b: { data: b, dims: [5] }, g: { data: g, dims: [5] } }, (ops, input) => {
      const ai = input('a');
      const bi = input('b');
      return { out: ops.mul(ai, bi, 'gate', [0.5, 0.5]), read: [ai, bi] };
    });
    const half = times(y, g).map((r) => r / 2);
    close(times(a, grads[0]!), half, 1e-5, 'R_a');
    close(times(b, grads[1]!), half, 1e-5, 'R_b');
  });

  it('linear map: the ordinary gradient gives the ε-rule R_x = x ⊙ Wᵀ(R_z / z) (Eq. 8, ε → 0)', async () => {
    const x = random(3, 9);
    const W = random(6, 10); // [3 in, 2 out]
    const g = random(2, 11);
    const { out: z, grads } = await run(COMPOSITE_RULES.attnlrp, { x: { data: x, dims: [1, 3] }, w: { data: W, dims: [3, 2] }, g: { data: g, dims: [1, 2] } }, (ops, input, constant) => {
      const xi = input('x');
      return { out: ops.matmul(xi, { name: constant('w'), shape: [3, 2], grad: false }, 'lin'), read: [xi] };
    });
    const R = times(z, g);
    const expected = x.map((xi, i) => xi * [0, 1].reduce((acc, j) => acc + (W[i * 2 + j]! * R[j]!) / z[j]!, 0));
    close(times(x, grads[0]!), expected, 1e-4, 'ε-rule');
  });

  it('LayerNorm with std detached (Prop. 3.4): g̃x = Σ_j (δ_ij − 1/N)(γ_j/σ) g̃y_j', async () => {
    const N = 6;
    const x = random(N, 12).map((v) => 2 * v + 0.3);
    const gamma = random(N, 13).map((v) => 1 + v / 2);
    const g = random(N, 14);
    const { grads } = await run(COMPOSITE_RULES.attnlrp, { x: { data: x, dims: [1, N] }, gamma: { data: gamma, dims: [N] }, g: { data: g, dims: [1, N] } }, (ops, input, constant) => {
      const xi = input('x');
      return { out: ops.layerNorm(xi, constant('gamma'), undefined, 1e-5), read: [xi] };
    });
    const mean = x.reduce((a, b) => a + b, 0) / N;
    const sigma = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / N + 1e-5);
    const u = g.map((gi, j) => (gamma[j]! / sigma) * gi);
    const uMean = u.reduce((a, b) => a + b, 0) / N;
    close(grads[0]!, u.map((v) => v - uMean), 1e-5, 'LayerNorm');
  });

  it('LayerNorm under the plain-gradient composite is the true derivative (finite differences)', async () => {
    const N = 5;
    const x = random(N, 15).map((v) => 2 * v);
    const gamma = random(N, 16).map((v) => 1 + v / 2);
    const g = random(N, 17);
    const { grads } = await run(COMPOSITE_RULES.gradient, { x: { data: x, dims: [1, N] }, gamma: { data: gamma, dims: [N] }, g: { data: g, dims: [1, N] } }, (ops, input, constant) => {
      const xi = input('x');
      return { out: ops.layerNorm(xi, constant('gamma'), undefined, 1e-5), read: [xi] };
    });
    const f = (v: number[]) => {
      const m = v.reduce((a, b) => a + b, 0) / N;
      const s = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / N + 1e-5);
      return v.reduce((acc, vi, j) => acc + g[j]! * gamma[j]! * ((vi - m) / s), 0);
    };
    const numeric = x.map((_, i) => {
      const h = 1e-4;
      const up = [...x];
      const down = [...x];
      up[i]! += h;
      down[i]! -= h;
      return (f(up) - f(down)) / (2 * h);
    });
    close(grads[0]!, numeric, 1e-3, 'LayerNorm gradient');
  });

  it('RMSNorm with rsqrt detached is an identity rule: x ⊙ g̃x = y ⊙ g̃y element-wise', async () => {
    const x = random(8, 18);
    const gamma = random(8, 19).map((v) => 1 + v);
    const g = random(8, 20);
    const { out: y, grads } = await run(COMPOSITE_RULES.attnlrp, { x: { data: x, dims: [1, 8] }, gamma: { data: gamma, dims: [8] }, g: { data: g, dims: [1, 8] } }, (ops, input, constant) => {
      const xi = input('x');
      return { out: ops.rmsNorm(xi, constant('gamma'), 1e-6), read: [xi] };
    });
    close(times(x, grads[0]!), times(y, g), 1e-5, 'RMSNorm identity');
  });

  for (const kind of ['gelu_new', 'gelu', 'silu'] as const) {
    it(`${kind}: identity rule R_x = R_y (Eq. 9), and the true derivative under the gradient composite`, async () => {
      const x = random(7, 21).map((v) => 3 * v);
      const g = random(7, 22);
      const feeds = { x: { data: x, dims: [7] }, g: { data: g, dims: [7] } };
      const identity = await run(COMPOSITE_RULES.attnlrp, feeds, (ops, input) => {
        const xi = input('x');
        return { out: ops.activation(xi, kind), read: [xi] };
      });
      close(times(x, identity.grads[0]!), times(identity.out, g), 1e-5, `${kind} identity`);
      const gradient = await run(COMPOSITE_RULES.gradient, feeds, (ops, input) => {
        const xi = input('x');
        return { out: ops.activation(xi, kind), read: [xi] };
      });
      const f = (v: number) => {
        if (kind === 'silu') return v / (1 + Math.exp(-v));
        if (kind === 'gelu_new') return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
        // erf via the same tanh-free series is overkill: compare against a central difference of the graph's own forward
        return NaN;
      };
      if (kind !== 'gelu') {
        const numeric = x.map((xi, i) => ((f(xi + 1e-4) - f(xi - 1e-4)) / 2e-4) * g[i]!);
        close(gradient.grads[0]!, numeric, 1e-3, `${kind} derivative`);
      } else {
        // GELU(x) = x·Φ(x): check g̃ = g·(Φ + xφ) with Φ from the graph's output (y/x).
        const expected = x.map((xi, i) => g[i]! * (gradient.out[i]! / xi + (xi * Math.exp(-(xi ** 2) / 2)) / Math.sqrt(2 * Math.PI)));
        close(gradient.grads[0]!, expected, 1e-4, 'gelu derivative');
      }
    });
  }

  it('rotary embedding and repeat_kv keep the ordinary gradient (linear, conserving)', async () => {
    const T = 3;
    const dh = 4;
    const x = random(T * 2 * dh, 23); // [1,T,2,dh]
    const g = random(T * 4 * dh, 24); // after repeat to 4 heads
    const cos = random(T * dh, 25);
    const sin = random(T * dh, 26);
    const { out, grads } = await run(
      COMPOSITE_RULES.attnlrp,
      { x: { data: x, dims: [1, T, 2, dh] }, cos: { data: cos, dims: [1, T, 1, dh] }, sin: { data: sin, dims: [1, T, 1, dh] }, g: { data: g, dims: [1, T, 4, dh] } },
      (ops, input, constant) => {
        const xi = input('x');
        const rotated = ops.rope(xi, constant('cos'), constant('sin'));
        return { out: ops.repeatKv(rotated, 2, 2, dh), read: [xi] };
      },
    );
    // Linear map, no bias: Σ x ⊙ g̃x = Σ y ⊙ g̃y.
    const lhs = times(x, grads[0]!).reduce((a, b) => a + b, 0);
    const rhs = times(out, g).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(lhs - rhs) < 1e-4 * Math.max(1, Math.abs(rhs)), `${lhs} vs ${rhs}`);
  });

  it('tanh soft-capping cap·tanh(x/cap) (Gemma 2): identity rule R_x = R_y, and 1 − tanh² under the gradient composite', async () => {
    const cap = 2;
    const x = random(9, 31).map((v) => 5 * v); // past the cap on both sides
    const g = random(9, 32);
    const feeds = { x: { data: x, dims: [9] }, g: { data: g, dims: [9] } };
    const identity = await run(COMPOSITE_RULES.attnlrp, feeds, (ops, input) => {
      const xi = input('x');
      return { out: ops.softcap(xi, cap), read: [xi] };
    });
    close(identity.out, x.map((v) => cap * Math.tanh(v / cap)), 1e-6, 'soft-cap forward');
    assert.ok(identity.out.every((v) => Math.abs(v) <= cap));
    close(times(x, identity.grads[0]!), times(identity.out, g), 1e-5, 'soft-cap identity rule');
    assert.equal(COMPOSITE_RULES['cp-lrp'].softcap, 'identity');
    const gradient = await run(COMPOSITE_RULES.gradient, feeds, (ops, input) => {
      const xi = input('x');
      return { out: ops.softcap(xi, cap), read: [xi] };
    });
    close(gradient.grads[0]!, x.map((v, i) => g[i]! * (1 - Math.tanh(v / cap) ** 2)), 1e-5, 'soft-cap derivative');
  });

  it('q/k norm (Qwen3, per head over head_dim) with the table rule passes each head and position unchanged', async () => {
    const [T, H, d] = [3, 2, 4];
    const x = random(T * H * d, 33).map((v) => 2 * v);
    const gamma = random(d, 34).map((v) => 1 + 0.5 * v);
    const g = random(T * H * d, 35);
    const { out: y, grads } = await run(COMPOSITE_RULES.attnlrp, { x: { data: x, dims: [1, T, H, d] }, gamma: { data: gamma, dims: [d] }, g: { data: g, dims: [1, T, H, d] } }, (ops, input, constant) => {
      const xi = input('x');
      return { out: ops.rmsNorm(xi, constant('gamma'), 1e-6, 'q_norm', ops.rules.qkNorm), read: [xi] };
    });
    // Per (position, head): Σ_dims R_x = Σ_dims R_y; element-wise too, since rsqrt is a constant.
    close(times(x, grads[0]!), times(y, g), 1e-5, 'q/k norm identity');
    for (let i = 0; i < T * H; i++) {
      const mean = x.slice(i * d, (i + 1) * d).reduce((a, b) => a + b * b, 0) / d;
      close(y.slice(i * d, (i + 1) * d), x.slice(i * d, (i + 1) * d).map((v, j) => (gamma[j]! * v) / Math.sqrt(mean + 1e-6)), 1e-5, `q/k norm forward ${i}`);
    }
  });

  it('partial rotary (GPT-NeoX): RoPE on the first dims only, the rest untouched; the gradient is its transpose', async () => {
    const [T, d, rot] = [3, 6, 4];
    const x = random(T * d, 36);
    const g = random(T * d, 37);
    const angle = (t: number, i: number) => t / 10000 ** ((2 * (i % (rot / 2))) / rot);
    const table = (f: (a: number) => number) => Array.from({ length: T * rot }, (_, k) => f(angle(Math.floor(k / rot), k % rot)));
    const feeds = { x: { data: x, dims: [1, T, 1, d] }, cos: { data: table(Math.cos), dims: [1, T, 1, rot] }, sin: { data: table(Math.sin), dims: [1, T, 1, rot] }, g: { data: g, dims: [1, T, 1, d] } };
    const { out: y, grads } = await run(COMPOSITE_RULES.attnlrp, feeds, (ops, input, constant) => {
      const xi = input('x');
      return { out: ops.rope(xi, constant('cos'), constant('sin'), 'rope', rot), read: [xi] };
    });
    const expected = x.map((v, k) => {
      const [t, i] = [Math.floor(k / d), k % d];
      if (i >= rot) return v;
      const a = angle(t, i);
      const partner = i < rot / 2 ? -x[t * d + i + rot / 2]! : x[t * d + i - rot / 2]!;
      return v * Math.cos(a) + partner * Math.sin(a);
    });
    close(y, expected, 1e-5, 'partial rotary forward');
    // Linear map: ⟨g, R x⟩ = ⟨Rᵀ g, x⟩ for the gradient to be exact.
    const lhs = times(g, y).reduce((a, b) => a + b, 0);
    const rhs = times(grads[0]!, x).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(lhs - rhs) < 1e-5, `${lhs} vs ${rhs}`);
    for (let t = 0; t < T; t++) for (let i = rot; i < d; i++) assert.equal(grads[0]![t * d + i], Math.fround(g[t * d + i]!));
  });

  it('CP-LRP sends nothing through the attention probabilities and all of A·V to V', async () => {
    assert.deepEqual(COMPOSITE_RULES['cp-lrp'].av, [0, 1]);
    assert.deepEqual(COMPOSITE_RULES.attnlrp.av, [0.5, 0.5]);
    assert.deepEqual(COMPOSITE_RULES.attnlrp.qk, [0.5, 0.5]);
    assert.deepEqual(COMPOSITE_RULES['cp-lrp'].gatedProduct, [0, 1]);
    assert.deepEqual(COMPOSITE_RULES.attnlrp.gatedProduct, [0.5, 0.5]);
  });
});
