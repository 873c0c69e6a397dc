/**
 * ONNX conformance: every compiled graph variant, on every shared model family, written as a
 * standalone model (src/engine/graph-file.ts) passes `onnx.checker.check_model(full_check=True)`
 * of Debian's python3-onnx (1.12, opsets ≤ 17; full_check runs strict shape inference against
 * the declared output shapes). And `circuit-lens export-graph` writes a graph that
 * onnxruntime-node, loading it from disk, runs to the same relevance as `circuit-lens attribute`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { GraphOptions } from '../../src/engine/build';
import { Engine, embeddedModelPath } from '../../src/engine/engine';
import { compileForExport, writeGraphFile, type GraphFile } from '../../src/engine/graph-file';
import { onnx } from 'onnx-proto';
import { OnnxWriter, OPSET } from '../../src/engine/onnx';
import { missingShared, sharedModel, tempDir } from '../helpers';
import { cli, IOI_PROMPT, provisionPython, runPython } from './helpers';
import { COMPOSITES } from '../../src/vocabulary';

// The families the engine compiles (gemma2, neox, qwen3 configs are refused at load).
const FAMILIES = ['random-tiny-gpt2', 'random-tiny-llama', 'random-tiny-opt', 'stories260k'];

function variants(engine: Engine): Record<string, GraphOptions> {
  const base = { interventions: false, hooks: false, weightRelevance: [] as string[] };
  const someWeight = engine.spec.layers[0]!.down.weight;
  return {
    forward: { ...base, composite: null },
    'forward-hooks-interventions': { ...base, composite: null, hooks: true, interventions: true },
    'forward-input-norms': { ...base, composite: null, inputNorms: [someWeight] },
    'attnlrp-interventions-weights': { ...base, composite: 'attnlrp', interventions: true, weightRelevance: [someWeight] },
    'cp-lrp': { ...base, composite: 'cp-lrp' },
    gradient: { ...base, composite: 'gradient' },
    edges: { ...base, composite: 'attnlrp', edges: true },
    sequence: { ...base, composite: 'attnlrp', sequenceTargets: true },
    'contrastive-sequence': { ...base, composite: 'cp-lrp', sequenceTargets: true, contrastiveSequence: true },
  };
}

describe('OnnxWriter declares graph output shapes', () => {
  const declared = (w: OnnxWriter) =>
    Object.fromEntries(
      onnx.ModelProto.decode(w.encode('test')).graph!.output!.map((o) => [
        o.name!,
        o.type!.tensorType!.shape ? o.type!.tensorType!.shape.dim!.map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : null)) : 'none',
      ]),
    );

  test('rank and dims from inputs and constants; opset-17 forms of ReduceMean and Split', () => {
    const w = new OnnxWriter();
    const x = w.input('x', 'float32', ['B', 'T', 8]);
    const mean = w.op1('ReduceMean', [x, w.ints([-1])], { keepdims: 1 });
    const flat = w.op1('Reshape', [x, w.ints([0, -1])]);
    const summed = w.op1('ReduceSum', [x, w.ints([1, 2])], { keepdims: 0 });
    const [a, b] = w.op('Split', [x], { axis: -1, num_outputs: 2 }, 'half', 2) as [string, string];
    const seq = w.op1('Gather', [w.op1('Shape', [x]), w.ints([1])], { axis: 0 });
    const square = w.op1('ConstantOfShape', [w.op1('Concat', [seq, seq], { axis: 0 })], { value: { tensor: { data: new Float32Array([1]), dims: [1] } } });
    w.output('mean', mean);
    w.output('flat', flat);
    w.output('summed', summed);
    w.output('a', w.op1('Mul', [a, b]));
    w.output('square', square);
    assert.deepEqual(declared(w), { mean: ['B', 'T', 1], flat: ['B', null], summed: ['B'], a: ['B', 'T', 4], square: ['T', 'T'] });
    const model = onnx.ModelProto.decode(w.encode('test'));
    assert.equal(Number(model.opsetImport![0]!.version), 17);
    const reduceMean = model.graph!.node!.find((n) => n.opType === 'ReduceMean')!;
    assert.equal(reduceMean.input!.length, 1, 'opset 17: axes is an attribute');
    assert.deepEqual(reduceMean.attribute!.find((t) => t.name === 'axes')!.ints!.map(Number), [-1]);
    assert.equal(model.graph!.node!.find((n) => n.opType === 'Split')!.attribute!.some((t) => t.name === 'num_outputs'), false);
    // ReduceMean's axes constant is now unread; ONNX Runtime would warn on stderr about it.
    const read = new Set(model.graph!.node!.flatMap((n) => n.input!));
    assert.deepEqual(model.graph!.initializer!.filter((i) => !read.has(i.name!)).map((i) => i.name), []);
  });

  test('an op without a shape rule leaves only what depends on it undeclared', () => {
    const w = new OnnxWriter();
    const x = w.input('x', 'float32', ['B', 4]);
    w.output('odd', w.op1('Hardmax', [x]));
    w.output('fine', w.op1('Tanh', [x]));
    assert.deepEqual(declared(w), { odd: 'none', fine: ['B', 4] });
  });
});

describe('onnx.checker (full_check) accepts every graph variant', { skip: missingShared('models') }, () => {
  const dir = tempDir('conformance-onnx');
  const files: { model: string; variant: string; file: GraphFile }[] = [];

  before(async () => {
    const problem = provisionPython();
    if (problem) throw new Error(problem);
    for (const model of [...FAMILIES.map(sharedModel), embeddedModelPath()]) {
      if (!fs.existsSync(model)) throw new Error(`missing model ${model}`);
      const engine = await Engine.load(model, { executionProvider: 'cpu' });
      try {
        for (const [variant, options] of Object.entries(variants(engine))) {
          const name = `${path.basename(model)}-${variant}`;
          files.push({ model: path.basename(model), variant, file: writeGraphFile(compileForExport(engine.spec, engine.loaded.weights, options), path.join(dir, `${name}.onnx`)) });
        }
      } finally {
        await engine.dispose();
      }
    }
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test(`${FAMILIES.length + 1} models × 9 variants pass check_model(full_check=True) at opset ${OPSET}`, () => {
    assert.equal(OPSET, 17);
    const results = runPython('check_onnx.py', files.map((f) => f.file.model));
    assert.equal(results.length, files.length);
    const failed = results.filter((r) => !r.ok).map((r) => `${path.basename(r.file)}: ${r.error}`);
    assert.deepEqual(failed, []);
    results.forEach((r, i) => {
      assert.equal(r.opset, 17);
      // The declared ranks are what the checker read back.
      assert.deepEqual(r.outputs, files[i]!.file.outputs.map((o) => [o.name, o.dims.length]), `${files[i]!.model} ${files[i]!.variant}`);
    });
  });
});

describe('circuit-lens export-graph: the dumped graph reproduces the CLI relevance', () => {
  const dir = tempDir('conformance-export-graph');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const mode of ['attnlrp', 'cp-lrp'] as const) {
    test(`${mode}: token and head relevance from the file equal circuit-lens attribute`, async () => {
      const out = path.join(dir, `${mode}.onnx`);
      const written = cli(['export-graph', '--mode', mode, '--out', out]).json;
      assert.equal(written.opset, 17);
      assert.ok(fs.statSync(written.data).size > 1_000_000, 'the weights sit in the external data file beside the graph');
      assert.ok(fs.statSync(out).size < 1_000_000, 'the graph file itself carries no large weights');
      const reference = cli(['attribute', '--prompt', IOI_PROMPT, '--mode', mode]).json;
      const ids: number[] = reference.ids;
      const T = ids.length;
      const info = cli(['info']).json;
      // The graph from disk (ONNX Runtime resolves the external data beside it), fed as the engine feeds it.
      const session = await ort.InferenceSession.create(out);
      try {
        const seed = new Float32Array(info.vocab);
        seed[reference.target.token] = 1; // a logit target (engine.ts fillSeed)
        const seedPosition = new Float32Array(T);
        seedPosition[T - 1] = 1;
        const result = await session.run({
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, T]),
          seed: new ort.Tensor('float32', seed, [1, info.vocab]),
          seed_position: new ort.Tensor('float32', seedPosition, [1, T]),
        });
        const close = (ours: ArrayLike<number>, theirs: readonly number[], what: string) => {
          assert.equal(ours.length, theirs.length, what);
          const scale = Math.max(...theirs.map(Math.abs));
          for (let i = 0; i < theirs.length; i++) assert.ok(Math.abs(ours[i]! - theirs[i]!) <= 1e-5 * scale, `${what}[${i}]: ${ours[i]} vs ${theirs[i]}`);
        };
        close(result['token_relevance']!.data as Float32Array, reference.token_relevance, 'token_relevance');
        close(result['target_value']!.data as Float32Array, [reference.target_value], 'target_value');
        close(result['head_relevance']!.data as Float32Array, (reference.head_relevance as number[][]).flat(), 'head_relevance');
        // The declared output ranks are the ranks ONNX Runtime returns.
        for (const output of written.outputs) assert.equal(result[output.name]!.dims.length, output.dims.length, output.name);
      } finally {
        await session.release();
      }
    });
  }

  test('bad flags exit 2 with a clear error', () => {
    assert.throws(() => cli(['export-graph', '--mode', 'lrp', '--out', path.join(dir, 'x.onnx')]), new RegExp(`exited 2[\\s\\S]*--mode must be one of ${[...COMPOSITES, 'forward'].join(', ')}`));
    assert.throws(() => cli(['export-graph', '--mode', 'forward', '--outputs', 'edges', '--out', path.join(dir, 'x.onnx')]), /exited 2[\s\S]*--mode forward writes --outputs logits or hooks/);
    assert.throws(() => cli(['export-graph']), /exited 2[\s\S]*--out graph.onnx/);
  });
});
