/**
 * What keeps a long prompt's attribution within memory (README "Speed and memory at scale"):
 * the writer leaves out nodes no output reads, and the backward pass reads each layer's
 * attention maps from a copy computed again from Q and K (build.ts `recomputeAttention`, tape.ts
 * `recomputeInBackward`). Checked on the graphs themselves (who reads the forward maps) and by
 * running them in ONNX Runtime: every output equals the graph that keeps the maps, on GPT-2,
 * Llama (GQA, RoPE) and Gemma 2 (score soft-cap, sliding windows), under AttnLRP and CP-LRP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { compileGraph, type CompiledGraph, type GraphOptions } from '../../src/engine/build';
import { OnnxWriter } from '../../src/engine/onnx';
import type { Composite } from '../../src/engine/api';
import { loadModelFolder } from '../../src/models/load';
import { EMBEDDED_MODEL, missingShared, relativeError, sharedModel } from '../helpers';

describe('the ONNX writer', () => {
  it('leaves out nodes that no graph output reads, and the initializers only they read', () => {
    const w = new OnnxWriter();
    const x = w.input('x', 'float32', [2]);
    const kept = w.op1('Mul', [x, w.scalar(2, 'two')], {}, 'kept');
    w.op1('Add', [w.op1('Mul', [kept, w.scalar(3, 'three')], {}, 'dead_mul'), x], {}, 'dead_add');
    w.output('y', kept);
    const graph = onnx.ModelProto.decode(w.encode('test')).graph!;
    assert.deepEqual(
      graph.node!.map((n) => n.output![0]),
      ['kept', 'y'],
    );
    assert.deepEqual(
      graph.initializer!.map((i) => i.name),
      ['two'],
    );
    assert.equal(w.nodeCount, 2);
  });
});

const CASES = [
  { name: 'tiny-ioi-gpt2', folder: EMBEDDED_MODEL, skip: false as const },
  { name: 'random-tiny-llama', folder: sharedModel('random-tiny-llama'), skip: missingShared('models/random-tiny-llama/model.safetensors') },
  { name: 'random-tiny-gemma2', folder: sharedModel('random-tiny-gemma2'), skip: missingShared('models/random-tiny-gemma2/model.safetensors') },
];

const options = (composite: Composite, recomputeAttention: boolean): GraphOptions => ({ composite, interventions: false, hooks: false, weightRelevance: [], recomputeAttention });

async function run(graph: CompiledGraph, ids: number[], vocab: number): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(graph.model, { externalData: graph.externalData });
  const T = ids.length;
  const seedPosition = new Float32Array(T);
  seedPosition[T - 1] = 1;
  const seed = new Float32Array(vocab);
  seed[ids[0]!] = 1;
  try {
    return await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, T]),
      seed_position: new ort.Tensor('float32', seedPosition, [1, T]),
      seed: new ort.Tensor('float32', seed, [1, vocab]),
    });
  } finally {
    await session.release();
  }
}

/** Names of the nodes that read `tensor`. */
function readers(nodes: readonly onnx.INodeProto[], tensor: string): string[] {
  return nodes.filter((n) => n.input!.includes(tensor)).map((n) => n.name!);
}

for (const c of CASES) {
  describe(`attention maps recomputed in the backward pass, ${c.name}`, { skip: c.skip }, () => {
    const model = c.skip ? undefined : loadModelFolder(c.folder);

    it('the forward maps are read by the forward pass only; the backward reads a copy made after its gradient', () => {
      const { spec } = model!;
      const graph = compileGraph(spec, model!.weights, options('attnlrp', true));
      const proto = onnx.ModelProto.decode(graph.model).graph!;
      const softmaxes = proto.node!.filter((n) => n.opType === 'Softmax');
      assert.equal(softmaxes.length, 2 * spec.nLayers, 'one softmax per layer, and its copy');
      for (let l = 0; l < spec.nLayers; l++) {
        // Gemma 2's soft-cap sits between S and the softmax, so its head readout sums the map
        // itself (build.ts `relevanceOutputs`): one more reader, at the end of the graph.
        const forward = readers(proto.node!, `l${l}_probs`);
        assert.equal(forward[0], `n_l${l}_mixed`, `layer ${l}: the forward probabilities feed A·V`);
        assert.equal(forward.length, spec.attnSoftcap === undefined ? 1 : 2, `layer ${l}: and nothing else but a soft-capped model's readout (${forward.join(', ')})`);
        const copies = readers(proto.node!, `l${l}_probs_re`);
        assert.ok(copies.length >= 2, `layer ${l}: the backward reads the copy (${copies.join(', ')})`);
      }
      // Each copy starts from Q made to wait for a gradient (a Reshape over Shape of the gradient).
      const gated = proto.node!.filter((n) => n.opType === 'Reshape' && /_qT_after_grad$/.test(n.output![0]!));
      assert.equal(gated.length, spec.nLayers);
      const kept = compileGraph(spec, model!.weights, options('attnlrp', false));
      assert.equal(onnx.ModelProto.decode(kept.model).graph!.node!.filter((n) => n.opType === 'Softmax').length, spec.nLayers);
    });

    for (const composite of ['attnlrp', 'cp-lrp'] as const) {
      it(`${composite}: every output equals the graph that keeps the maps`, async () => {
        const { spec, weights } = model!;
        const ids = Array.from({ length: 13 }, (_, i) => (i * 37 + 5) % spec.vocabSize);
        const recomputed = await run(compileGraph(spec, weights, options(composite, true)), ids, spec.vocabSize);
        const kept = await run(compileGraph(spec, weights, options(composite, false)), ids, spec.vocabSize);
        assert.deepEqual(Object.keys(recomputed).sort(), Object.keys(kept).sort());
        for (const name of Object.keys(kept)) {
          const a = recomputed[name]!.data as Float32Array;
          const b = kept[name]!.data as Float32Array;
          assert.deepEqual(recomputed[name]!.dims, kept[name]!.dims, name);
          assert.ok(relativeError(a, b) <= 1e-6, `${name}: ${relativeError(a, b).toExponential(2)} relative`);
        }
        const tokens = kept['token_relevance']!.data as Float32Array;
        assert.ok(tokens.some((v) => Math.abs(v) > 1e-6), 'the relevance is not all zero');
      });
    }
  });
}
