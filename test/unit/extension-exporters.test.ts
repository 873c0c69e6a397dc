/**
 * The extension's Export Circuit… formats (src/extension/exporters.ts): the panel's circuit goes
 * through the CLI's exporters and validators, and the circuit graph JSON it writes is what the
 * CLI's `--circuit` reader accepts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateEapIgJson, validateNeuronpediaJson, type EapIgGraphJson, type NeuronpediaGraphJson } from '../../src/circuits/export';
import { validateCircuitGraph, type CircuitGraph } from '../../src/circuits/graph';
import { Engine } from '../../src/engine/engine';
import { exportCircuit, toCircuitGraph } from '../../src/extension/exporters';
import type { Circuit, PromptAttribution } from '../../src/protocol';
import { EMBEDDED_MODEL } from '../helpers';

const circuit: Circuit = {
  id: 'fixture-ioi',
  title: 'Fixture circuit',
  task: 'ioi',
  model: '/models/tiny-ioi-gpt2',
  mode: 'attnlrp',
  layers: 4,
  heads: 4,
  dModel: 128,
  dMlp: 512,
  examples: 16,
  nodes: [
    { id: 'input', kind: 'input', layer: -1, relevance: 1 },
    { id: 'a0.h0', kind: 'head', layer: 0, head: 0, relevance: 0.9 },
    { id: 'a2.h1', kind: 'head', layer: 2, head: 1, relevance: 0.5 },
    { id: 'm1', kind: 'mlp', layer: 1, relevance: 0.3 },
    { id: 'logits', kind: 'logits', layer: 4, relevance: 1 },
  ],
  edges: [
    { source: 'input', target: 'a0.h0', weight: 0.8 },
    { source: 'a0.h0', target: 'm1', weight: 0.4 },
    { source: 'm1', target: 'a2.h1', weight: -0.2 },
    { source: 'a2.h1', target: 'logits', weight: 0.6 },
  ],
  metrics: { metric: 'logit_diff', full: 10.5, circuit: 9.8, faithfulness: 0.93 },
};
const dims = { dModel: 128, dMlp: 512 };

describe('extension exporters', () => {
  it('writes the CLI circuit graph JSON, restricted to a node subset when given', () => {
    const graph = exportCircuit(circuit, 'circuit-lens', dims) as CircuitGraph;
    assert.deepEqual(validateCircuitGraph(JSON.parse(JSON.stringify(graph))), graph);
    assert.equal(graph.model.name, 'tiny-ioi-gpt2');
    assert.equal(graph.granularity, 'heads+mlps');
    assert.equal(graph.metrics?.faithfulness, 0.93);
    assert.deepEqual(graph.edges.map((e) => e.id), ['input->a0.h0', 'a0.h0->m1', 'm1->a2.h1', 'a2.h1->logits']);
    const sub = toCircuitGraph(circuit, dims, ['a0.h0', 'm1']);
    assert.deepEqual(sub.nodes.map((n) => n.id), ['input', 'a0.h0', 'm1', 'logits']);
    assert.deepEqual(sub.edges.map((e) => e.id), ['input->a0.h0', 'a0.h0->m1']);
  });

  it('writes valid EAP-IG JSON', () => {
    const json = exportCircuit(circuit, 'eap-ig', dims) as EapIgGraphJson;
    assert.deepEqual(validateEapIgJson(json), []);
    assert.equal(json.cfg.d_model, 128);
    assert.equal(json.nodes['a0.h0']!.in_graph, true);
    assert.equal(json.nodes['a1.h0']!.in_graph, false);
    assert.equal(json.edges['a0.h0->m1']!.in_graph, true);
  });

  it('writes a valid Neuronpedia graph on one prompt, and needs the prompt', async () => {
    assert.throws(() => exportCircuit(circuit, 'neuronpedia', dims), /one prompt/);
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const text = 'When Mary and John went to the store, John gave a drink to';
      const { ids } = engine.encode(text);
      const mary = engine.tokenizer!.singleTokenId(' Mary');
      const [a] = await engine.attribute({ ids: [ids], targets: [{ kind: 'logit', position: ids.length - 1, token: mary }], mode: 'attnlrp' });
      const attribution: PromptAttribution = {
        mode: 'attnlrp',
        tokens: ids.map((id, i) => ({ id, text: engine.tokenizer!.tokenString(id), start: 0, end: 0, relevance: a!.tokenRelevance[i]! })),
        positionRelevance: null,
        target: { kind: 'logit', token: mary, text: ' Mary', value: a!.targetValue },
        topNext: [{ id: mary, text: ' Mary', prob: 0.86, logit: a!.targetValue }],
        headRelevance: [],
        sums: { token: 0, position: 0, bias: 0 },
      };
      const json = exportCircuit(circuit, 'neuronpedia', dims, undefined, { text, attribution }) as NeuronpediaGraphJson;
      assert.deepEqual(validateNeuronpediaJson(json), []);
      assert.equal(json.metadata.prompt, text);
      assert.equal(json.metadata.prompt_tokens.length, ids.length);
      assert.ok(json.nodes.some((n) => n.clerp === 'a0.h0'));
      assert.ok(json.nodes.some((n) => n.feature_type === 'logit'));
    } finally {
      await engine.dispose();
    }
  });
});
