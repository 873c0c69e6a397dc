/**
 * Weight matrices kept in half precision (build.ts `halfWeights`, EngineOptions.weightPrecision;
 * README "Half precision"). The rounding is IEEE's; a BF16 file is mapped as stored and gives the
 * same relevance as its float32 conversion; F32 weights rounded to F16 move the relevance by the
 * documented tolerance and not by nothing; the backward pass casts its own copy of each matrix;
 * and `auto` keeps the CPU float32.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { compileGraph } from '../../src/engine/build';
import { Engine } from '../../src/engine/engine';
import type { AttributeRequest } from '../../src/engine/api';
import { encodeSafetensors, float32ToBfloat16Bits, float32ToHalfBits, halfToFloat } from '../../src/models/safetensors';
import { loadModelFolder } from '../../src/models/load';
import { EMBEDDED_MODEL, missingShared, relativeError, sharedModel, tempDir } from '../helpers';

/** Documented tolerance (README "Half precision"): max |ΔR| / max |R| of token relevance, F32 weights rounded to F16. */
const F16_TOLERANCE = 1e-2;

describe('half-precision rounding', () => {
  it('float32 → float16 is exact on every half value and rounds ties to even, overflow to ∞, underflow to 0', () => {
    const halves = Float32Array.from({ length: 0x7c00 }, (_, h) => halfToFloat(h));
    assert.deepEqual(Array.from(float32ToHalfBits(halves)), Array.from({ length: 0x7c00 }, (_, h) => h));
    const bits = (x: number) => float32ToHalfBits(new Float32Array([x]))[0]!;
    assert.equal(bits(1 / 3), 0x3555);
    assert.equal(bits(1 + 2 ** -11), 0x3c00, 'a tie rounds to the even neighbour (down)');
    assert.equal(bits(1 + 3 * 2 ** -11), 0x3c02, 'a tie rounds to the even neighbour (up)');
    assert.equal(bits(65520), 0x7c00, 'past the largest half: Infinity');
    assert.equal(bits(-1e-9), 0x8000, 'below the smallest subnormal: −0');
    assert.equal(bits(2 ** -24), 0x0001, 'the smallest subnormal');
    assert.ok((bits(NaN) & 0x7c00) === 0x7c00 && (bits(NaN) & 0x3ff) !== 0, 'NaN stays NaN');
  });

  it('float32 → bfloat16 keeps the upper half, rounded to nearest even', () => {
    const b = (x: number) => float32ToBfloat16Bits(new Float32Array([x]))[0]!;
    assert.equal(b(1), 0x3f80);
    assert.equal(b(1 + 2 ** -8), 0x3f80, 'tie → even');
    assert.equal(b(1 + 3 * 2 ** -8), 0x3f82, 'tie → even (up)');
    assert.equal(b(-2.5), 0xc020);
    assert.ok((b(NaN) & 0x7f80) === 0x7f80 && (b(NaN) & 0x7f) !== 0);
  });
});

/** A copy of a model folder with its weights written as `dtype`. */
function writeCopy(folder: string, dtype: 'F16' | 'BF16'): string {
  const out = tempDir(`half-${dtype}`);
  for (const f of fs.readdirSync(folder)) if (!f.endsWith('.safetensors') && fs.statSync(path.join(folder, f)).isFile()) fs.copyFileSync(path.join(folder, f), path.join(out, f));
  const { weights } = loadModelFolder(folder);
  const tensors = weights.names().map((name) => ({ name, shape: weights.info(name).shape, data: weights.readFloat32(name) }));
  fs.writeFileSync(path.join(out, 'model.safetensors'), encodeSafetensors(tensors, undefined, dtype));
  return out;
}

const CASES = [
  { name: 'tiny-ioi-gpt2', folder: EMBEDDED_MODEL, skip: false as const },
  { name: 'random-tiny-llama', folder: sharedModel('random-tiny-llama'), skip: missingShared('models/random-tiny-llama/model.safetensors') },
];

for (const c of CASES) {
  describe(`weight matrices in half precision, ${c.name}`, { skip: c.skip }, () => {
    const folders: string[] = [];
    after(() => folders.forEach((f) => fs.rmSync(f, { recursive: true, force: true })));

    const request = (vocab: number): AttributeRequest => {
      const ids = Array.from({ length: 12 }, (_, i) => (i * 41 + 7) % vocab);
      return { ids: [ids], targets: [{ kind: 'logit', position: ids.length - 1, token: ids[3]! }], mode: 'attnlrp' };
    };
    const attribute = async (folder: string, weightPrecision: 'float32' | 'half' | 'auto') => {
      const engine = await Engine.load(folder, { weightPrecision, prepack: false });
      try {
        const [r] = await engine.attribute(request(engine.spec.vocabSize));
        return { r: r!, half: engine.halfWeights, info: engine.info() };
      } finally {
        await engine.dispose();
      }
    };

    for (const dtype of ['BF16', 'F16'] as const) {
    it(`a ${dtype} file is mapped as stored and gives the relevance of its float32 conversion`, async () => {
      const folder = writeCopy(c.folder, dtype);
      folders.push(folder);
      const model = loadModelFolder(folder);
      const graph = compileGraph(model.spec, model.weights, { composite: 'attnlrp', interventions: false, hooks: false, weightRelevance: [], halfWeights: true });
      const inits = onnx.ModelProto.decode(graph.model).graph!.initializer!.filter((i) => i.name!.startsWith('w_'));
      const matrices = inits.filter((i) => i.dims!.length >= 2);
      assert.ok(matrices.length > 0);
      for (const m of matrices) {
        assert.equal(m.dataType, onnx.TensorProto.DataType[dtype === 'BF16' ? 'BFLOAT16' : 'FLOAT16'], `${m.name} is ${dtype}`);
        assert.equal(m.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL, `${m.name} is read from the file, not copied`);
      }
      assert.ok(
        inits.filter((i) => i.dims!.length < 2).every((i) => i.dataType === onnx.TensorProto.DataType.FLOAT),
        'vectors stay float32',
      );
      const half = await attribute(folder, 'half');
      const full = await attribute(folder, 'float32');
      assert.equal(half.half, true);
      assert.equal(full.half, false);
      assert.equal(half.info.dtype, `${dtype} (matrices kept half)`);
      assert.ok(relativeError(half.r.tokenRelevance, full.r.tokenRelevance) <= 1e-5, `token relevance ${relativeError(half.r.tokenRelevance, full.r.tokenRelevance)}`);
      assert.ok(relativeError(half.r.headRelevance.flat(), full.r.headRelevance.flat()) <= 1e-5, 'head relevance');
      assert.ok(Math.abs(half.r.targetValue - full.r.targetValue) <= 1e-5 * Math.max(1, Math.abs(full.r.targetValue)));
      // auto on the CPU: float32.
      assert.equal((await attribute(folder, 'auto')).half, false);
    });
    }

    it(`F32 weights rounded to F16 move the relevance by less than ${F16_TOLERANCE} of its largest value (and do move it)`, async () => {
      const half = await attribute(c.folder, 'half');
      const full = await attribute(c.folder, 'float32');
      const err = relativeError(half.r.tokenRelevance, full.r.tokenRelevance);
      assert.ok(err > 0 && err <= F16_TOLERANCE, `token relevance: ${err.toExponential(2)} relative`);
      const headErr = relativeError(half.r.headRelevance.flat(), full.r.headRelevance.flat());
      assert.ok(headErr <= F16_TOLERANCE, `head relevance: ${headErr.toExponential(2)} relative`);
    });

    it('the backward pass casts each matrix again after its gradient, not from the forward copy', () => {
      const model = loadModelFolder(c.folder);
      const graph = compileGraph(model.spec, model.weights, { composite: 'attnlrp', interventions: false, hooks: false, weightRelevance: [], halfWeights: true });
      const nodes = onnx.ModelProto.decode(graph.model).graph!.node!;
      const gated = new Set(nodes.filter((n) => n.opType === 'Reshape' && /_after_grad$/.test(n.output![0]!)).map((n) => n.output![0]!));
      const recast = nodes.filter((n) => n.opType === 'Cast' && gated.has(n.input![0]!));
      // Every linear layer's VJP reads a weight: at least one re-cast per layer and the unembedding.
      assert.ok(recast.length >= model.spec.nLayers + 1, `${recast.length} casts after a gradient`);
    });
  });
}
