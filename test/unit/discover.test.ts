/**
 * Circuit discovery and verification on the real engine and the embedded model: the IOI
 * circuit AttnLRP finds, its faithfulness under mean ablation, and edge conservation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { discoverCircuit } from '../../src/circuits/discovery/discover';
import { evaluateCircuit } from '../../src/circuits/discovery/faithfulness';
import { circuitComponentIds, selectEdges, selectNodes } from '../../src/circuits/discovery/graph';
import { pearson, spearman } from '../../src/circuits/discovery/ranking';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import { EMBEDDED_MODEL, missingShared, readJson, sharedModel } from '../helpers';

const HEADS = Array.from({ length: 16 }, (_, i) => `a${Math.floor(i / 4)}.h${i % 4}`);

describe('IOI circuit on the embedded model', () => {
  let engine: Engine;
  before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
  after(() => engine.dispose());
  const task = () => loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl'));

  it('AttnLRP picks 4 of 16 heads that keep ≥ 90 % of the logit difference, and ablating them removes ≥ 80 %', async () => {
    const ioi = task();
    const { graph } = await discoverCircuit(engine, ioi, { method: 'attnlrp', granularity: 'heads', modelName: 'tiny-ioi-gpt2' });
    const circuit = circuitComponentIds(selectNodes(graph, { kind: 'top-k', k: 4 }));
    assert.ok(circuit.includes('a2.h2'), `the name mover a2.h2 is in ${circuit.join(' ')}`);
    const evaluation = await evaluateCircuit(engine, ioi, circuit, 'mean', HEADS);
    assert.ok(Math.abs(evaluation.full - 10.5545) < 1e-3, `full-model logit difference ${evaluation.full} (reference.json: 10.5545)`);
    assert.ok(evaluation.circuit >= 0.9 * evaluation.full, `circuit alone ${evaluation.circuit} of ${evaluation.full}`);
    assert.ok(evaluation.complement <= 0.2 * evaluation.full, `circuit ablated ${evaluation.complement} of ${evaluation.full}`);
  });

  it('the signed per-head relevance agrees with the single-head ablation drops at the top', async () => {
    const ioi = task();
    const { graph } = await discoverCircuit(engine, ioi, { method: 'attnlrp', aggregation: 'signed-mean', granularity: 'heads', modelName: 'tiny-ioi-gpt2' });
    const drops = new Map<string, number>(readJson(path.join(EMBEDDED_MODEL, 'reference.json')).head_ablation_ioi.map((r: any) => [`a${r.layer}.h${r.head}`, r.drop]));
    const scores = HEADS.map((id) => graph.nodes.find((n) => n.id === id)!.relevance);
    const byScore = [...HEADS].sort((a, b) => scores[HEADS.indexOf(b)]! - scores[HEADS.indexOf(a)]!).slice(0, 3);
    const byDrop = [...HEADS].sort((a, b) => drops.get(b)! - drops.get(a)!).slice(0, 3);
    assert.deepEqual(new Set(byScore), new Set(byDrop));
    // Measured 0.52: zero ablation also changes the LayerNorm scale, which LRP (std detached)
    // does not attribute, so the long tail of small negative drops is not ranked. See README.
    const rho = spearman(scores, HEADS.map((id) => drops.get(id)!));
    assert.ok(rho > 0.5, `Spearman ${rho}`);
  });

  it('EAP scores are (clean − corrupted)·∇: positive where patching the corrupted activation in lowers the metric', async () => {
    // Ground truth by real patching: each head's z replaced by its value on the ABC-corrupted
    // prompt, one head at a time; effect = m(clean) − m(patched). EAP is its first-order estimate.
    const ioi = { ...task(), examples: task().examples.slice(0, 32) };
    const { graph } = await discoverCircuit(engine, ioi, { method: 'eap', aggregation: 'signed-mean', granularity: 'heads', modelName: 'tiny-ioi-gpt2' });
    const eap = HEADS.map((id) => graph.nodes.find((n) => n.id === id)!.relevance);
    const ids = ioi.examples.map((e) => e.ids);
    const corrupted = await engine.forward({ ids: ioi.examples.map((e) => e.corruptedIds!), hooks: true });
    const clean = await engine.forward({ ids });
    const diff = (rows: { logitsLast: Float32Array }[]) =>
      rows.reduce((s, r, i) => s + r.logitsLast[ioi.examples[i]!.target!]! - r.logitsLast[ioi.examples[i]!.foil!]!, 0) / rows.length;
    const full = diff(clean);
    const effects: number[] = [];
    for (const head of HEADS) {
      const patched = await engine.forward({ ids, interventions: { ablate: [head], headReplacement: corrupted.map((r) => r.headZ!), neuronReplacement: corrupted.map((r) => r.mlpPost!) } });
      effects.push(full - diff(patched));
    }
    const strongest = effects.map((e, i) => [Math.abs(e), i] as const).sort((a, b) => b[0] - a[0])[0]![1];
    assert.ok(effects[strongest]! > 0, `patching ${HEADS[strongest]} in lowers the logit difference (${effects[strongest]})`);
    assert.ok(eap[strongest]! > 0, `so its EAP score is positive: ${eap[strongest]}`);
    assert.equal(HEADS[eap.indexOf(Math.max(...eap))], HEADS[strongest], 'the top signed EAP head is the head whose patching costs most');
    // Linear in the effect (measured 0.93 on these 32 prompts after the sign fix; −0.93 before it). Early heads are where the first-order
    // estimate fails (a0.h1: patched effect +1.48, EAP −1.09), so their rank is not asserted.
    const r = pearson(eap, effects);
    assert.ok(r > 0.8, `EAP tracks real patching: Pearson ${r}`);
  });

  it('an edge circuit from the top edges is connected from input to logits', async () => {
    const ioi = { ...task(), examples: task().examples.slice(0, 20) };
    const { graph } = await discoverCircuit(engine, ioi, { method: 'attnlrp', granularity: 'heads+mlps', edges: true, modelName: 'tiny-ioi-gpt2' });
    assert.equal(graph.edges.length, edgeCount(4, 4));
    const top = selectEdges(graph, { kind: 'top-k', k: 10 });
    assert.ok(top.edges.some((e) => e.id === 'a2.h2->logits'));
    assert.ok(top.edges.some((e) => e.source === 'input'));
  });
});

/** Forward edges among input, heads, MLP blocks and logits (an MLP also reads its own layer's heads). */
function edgeCount(L: number, H: number): number {
  let n = 0;
  for (let l = 0; l < L; l++) {
    const upstream = 1 + l * (H + 1); // input, and every head and MLP of earlier layers
    n += H * upstream + (upstream + H);
  }
  return n + 1 + L * (H + 1); // into logits: everything
}

for (const model of ['tiny-ioi-gpt2', 'random-tiny-llama', 'random-tiny-opt'] as const) {
  const folder = model === 'tiny-ioi-gpt2' ? EMBEDDED_MODEL : sharedModel(model);
  const skip = model === 'tiny-ioi-gpt2' ? false : missingShared(`models/${model}/model.safetensors`);
  describe(`edge relevance conserves on ${model}`, { skip }, () => {
    for (const mode of ['attnlrp', 'cp-lrp'] as const) {
      it(`${mode}: each node's inflow is the sum of its incoming edges (1e-4 relative), and the logits' inflow is resid_final`, async () => {
        const engine = await Engine.load(folder);
        try {
          const ids = model === 'tiny-ioi-gpt2' ? [770, 11, 1038, 468, 1012, 565, 1030, 1034, 1031, 464, 461, 909, 13, 1038, 669, 464] : [5, 17, 300, 42, 9, 77, 128, 3];
          const target = { kind: 'logit_diff' as const, position: ids.length - 1, token: 12, foil: 40 };
          const [result] = await engine.edges([{ ids, target }], mode);
          const [attribution] = await engine.attribute({ ids: [ids], targets: [target], mode });
          const scale = Math.max(...Object.values(result!.inflow).map(Math.abs));
          for (const [node, inflow] of Object.entries(result!.inflow)) {
            const incoming = result!.edges.filter((e) => e.target === node).reduce((s, e) => s + e.relevance, 0);
            assert.ok(Math.abs(incoming - inflow) <= 1e-4 * scale, `${node}: edges ${incoming} vs inflow ${inflow}`);
          }
          assert.ok(Math.abs(result!.inflow.logits! - attribution!.residFinal) <= 1e-4 * scale);
          assert.ok(Math.abs(result!.targetValue - attribution!.targetValue) < 1e-4);
        } finally {
          await engine.dispose();
        }
      });
    }
  });
}
