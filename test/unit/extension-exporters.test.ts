/**
 * The extension's Save / Export Circuit… formats (src/extension/exporters.ts): the circuit is
 * the CLI's `CircuitGraph` itself, written byte for byte as `circuit-lens discover --out` writes
 * it, and the EAP-IG and Neuronpedia documents come from the CLI's exporters and validators.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { circuitFileText } from '../../src/pipelines/exports';
import { validateEapIgJson, validateNeuronpediaJson, type EapIgGraphJson, type NeuronpediaGraphJson } from '../../src/circuits/exporters/export';
import { selectNodes, type CircuitGraph } from '../../src/circuits/discovery/graph';
import { Engine } from '../../src/engine/engine';
import { circuitName, exportCircuit, parseCircuitFile } from '../../src/extension/exporters';
import type { PromptAttribution } from '../../src/protocol/shapes';
import { EMBEDDED_MODEL } from '../helpers';
import { tinyNodeGraph } from './circuits-graph-fixture';

/** A selected circuit as discovery returns it: kept nodes, all candidate scores, metrics, time. */
function discovered(): CircuitGraph {
  const full = tinyNodeGraph();
  const scores = Object.fromEntries(full.nodes.filter((n) => n.kind !== 'input' && n.kind !== 'logits').map((n) => [n.id, n.relevance]));
  const graph = selectNodes(full, { kind: 'top-k', k: 3 }, { absolute: true });
  return {
    ...graph,
    metrics: { metric: 'logit_diff', ablation: 'mean', full: 5, empty: 0.5, circuit: 4.5, faithfulness: 0.89, curve: [{ fraction: 0.5, size: 3, score: 4.5, faithfulness: 0.89 }] },
    scores,
    created: '2026-01-02T03:04:05.678Z',
  };
}

describe('extension exporters', () => {
  it('writes the circuit graph exactly as the CLI does, and reads it back unchanged', () => {
    const graph = discovered();
    const text = circuitFileText(graph);
    // The one writer the CLI and the editor share writes the documented format.
    assert.equal(text, JSON.stringify(graph, null, 1) + '\n', 'one-space indent, final newline');
    assert.ok(text.endsWith('}\n'));
    const back = parseCircuitFile(text, 'saved.json');
    assert.deepEqual(back, graph);
    // What is read and written again is the same file: Save after Open changes nothing.
    assert.equal(circuitFileText(back), text);
    assert.equal(exportCircuit(graph, 'circuit-lens'), text);
  });

  it('names the file and the problem when a circuit file is not one', () => {
    assert.throws(() => parseCircuitFile('{"version": 1', 'broken.json'), /broken\.json: not JSON/);
    const wrong = JSON.parse(circuitFileText(discovered()));
    wrong.nodes[1].kind = 'attention';
    assert.throws(() => parseCircuitFile(JSON.stringify(wrong), 'wrong.json'), /wrong\.json.*nodes\[1\].*kind/s);
  });

  it('gives a circuit a file-name-safe name from its task, method, granularity and time', () => {
    const name = circuitName(discovered());
    assert.equal(name, 'ioi-attnlrp-heads+mlps-2026-01-02T03-04-05Z');
    assert.match(name, /^[A-Za-z0-9_.+-]+$/);
  });

  it('writes valid EAP-IG JSON from the graph itself', () => {
    const json = JSON.parse(exportCircuit(discovered(), 'eap-ig')) as EapIgGraphJson;
    assert.deepEqual(validateEapIgJson(json), []);
    assert.equal(json.cfg.d_model, 8);
    const kept = discovered().nodes.map((n) => n.id);
    for (const id of ['a0.h0', 'a0.h1', 'a1.h0', 'a1.h1']) assert.equal(json.nodes[id]!.in_graph, kept.includes(id), id);
  });

  it('writes a valid Neuronpedia graph on one prompt, and needs the prompt', async () => {
    assert.throws(() => exportCircuit(discovered(), 'neuronpedia'), /one prompt/);
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
      // The embedded model's shape, so the graph's ids are in range.
      const graph: CircuitGraph = { ...discovered(), model: { name: 'tiny-ioi-gpt2', nLayers: engine.spec.nLayers, nHeads: engine.spec.nHeads, dModel: engine.spec.dModel, dMlp: engine.spec.dMlp } };
      const json = JSON.parse(exportCircuit(graph, 'neuronpedia', { text, attribution, slug: 'my circuit' })) as NeuronpediaGraphJson;
      assert.deepEqual(validateNeuronpediaJson(json), []);
      assert.equal(json.metadata.prompt, text);
      assert.equal(json.metadata.prompt_tokens.length, ids.length);
      assert.equal(json.metadata.slug, 'my-circuit');
      assert.ok(json.nodes.some((n) => n.feature_type === 'logit'));
    } finally {
      await engine.dispose();
    }
  });
});
