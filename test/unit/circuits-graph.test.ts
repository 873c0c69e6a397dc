import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildCircuitGraph,
  chooseByRule,
  circuitComponentIds,
  connectedEdges,
  impliedEdges,
  isForwardEdge,
  nodeForId,
  selectEdges,
  selectNodes,
  validateCircuitGraph,
} from '../../src/circuits/discovery/graph';
import { parseComponentId } from '../../src/models/componentIds';
import { TINY_MODEL, tinyEdgeGraph, tinyNodeGraph } from './circuits-graph-fixture';

test('component ids parse in TransformerLens / EAP-IG form', () => {
  assert.deepEqual(parseComponentId('a9.h9'), { kind: 'head', layer: 9, head: 9 });
  assert.deepEqual(parseComponentId('m3'), { kind: 'mlp', layer: 3 });
  assert.deepEqual(parseComponentId('m3.n17'), { kind: 'neuron', layer: 3, neuron: 17 });
  assert.deepEqual(parseComponentId('input'), { kind: 'input', layer: -1 });
  assert.deepEqual(parseComponentId('logits'), { kind: 'logits', layer: null });
  assert.equal(parseComponentId('L9H9'), null);
  assert.equal(nodeForId('logits', TINY_MODEL).layer, 2);
  assert.throws(() => nodeForId('a1.h2', TINY_MODEL), /head 2 is out of range \(the model has 2 heads per layer\)/);
  assert.throws(() => nodeForId('m2', TINY_MODEL), /layer 2 is out of range/);
  assert.throws(() => nodeForId('m0.n3', TINY_MODEL), /neuron 3 is out of range/);
  assert.throws(() => nodeForId('attn0', TINY_MODEL), /not a component id/);
});

test('edges go forward: input → heads → same-layer MLP → later layers → logits', () => {
  const node = (id: string) => nodeForId(id, TINY_MODEL);
  assert.ok(isForwardEdge(node('input'), node('a0.h0')));
  assert.ok(isForwardEdge(node('a0.h0'), node('m0')));
  assert.ok(isForwardEdge(node('m0'), node('a1.h1')));
  assert.ok(isForwardEdge(node('m1.n2'), node('logits')));
  assert.ok(!isForwardEdge(node('m0'), node('a0.h1')), 'the MLP runs after attention in its layer');
  assert.ok(!isForwardEdge(node('a0.h0'), node('a0.h1')), 'heads of one layer run in parallel');
  assert.ok(!isForwardEdge(node('m0.n0'), node('m0.n1')));
});

test('building: nodes in forward order with relevance, granularity inferred', () => {
  const graph = tinyNodeGraph();
  assert.equal(graph.version, 1);
  assert.equal(graph.granularity, 'heads+mlps');
  assert.deepEqual(graph.nodes.map((n) => n.id), ['input', 'a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1', 'logits']);
  assert.deepEqual(graph.nodes[2], { id: 'a0.h1', kind: 'head', layer: 0, head: 1, relevance: -3 });
  assert.deepEqual(graph.nodes.at(-1), { id: 'logits', kind: 'logits', layer: 2, relevance: 5 });
  assert.deepEqual(graph.selection, { level: 'none', rule: 'all', value: null, absolute: true, candidates: 6, kept: 6, removedForConnectivity: 0 });
  assert.deepEqual(circuitComponentIds(graph), ['a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1']);
  const neurons = buildCircuitGraph({
    model: TINY_MODEL,
    task: { name: 't', metric: 'kl', examples: 1 },
    method: { name: 'attnlrp' },
    heads: [[0, 0], [0, 0]],
    neurons: [[1, 2, 3], [4, 5, 6]],
  });
  assert.equal(neurons.granularity, 'heads+neurons');
  assert.ok(neurons.nodes.some((n) => n.id === 'm1.n2' && n.neuron === 2));
});

test('building rejects inconsistent input', () => {
  const base = { model: TINY_MODEL, task: { name: 't', metric: 'kl' as const, examples: 1 }, method: { name: 'x' } };
  assert.throws(() => buildCircuitGraph({ ...base, heads: [[1, 2]] }), /head relevance for layer 1 has 0 heads, the model has 2/);
  assert.throws(() => buildCircuitGraph({ ...base, heads: [[1, 2], [3, Number.NaN]] }), /a1\.h1's relevance is not a finite number/);
  assert.throws(() => buildCircuitGraph({ ...base, heads: [[1, 2], [3, 4]], mlps: [1, 1], neurons: [[1, 1, 1], [1, 1, 1]] }), /not both/);
  assert.throws(() => buildCircuitGraph({ ...base, heads: [[1, 2], [3, 4]], edges: [{ source: 'a1.h0', target: 'a0.h0', relevance: 1 }] }), /a1\.h0->a0\.h0 does not go forward/);
  assert.throws(() => buildCircuitGraph({ ...base, heads: [[1, 2], [3, 4]], edges: [{ source: 'm0', target: 'logits', relevance: 1 }] }), /starts at "m0", which is not a node/);
});

test('node selection: top-k, threshold and cumulative budget over |relevance|', () => {
  const graph = tinyNodeGraph(); // |R|: a0.h0 .5, a0.h1 3, m0 2, a1.h0 1, a1.h1 .1, m1 .2 (total 6.8)
  const ids = (g: typeof graph) => circuitComponentIds(g);
  assert.deepEqual(ids(selectNodes(graph, { kind: 'top-k', k: 2 })), ['a0.h1', 'm0']);
  assert.deepEqual(ids(selectNodes(graph, { kind: 'threshold', threshold: 1 })), ['a0.h1', 'm0', 'a1.h0']);
  // 50 % of 6.8 = 3.4: a0.h1 (3) is not enough, a0.h1 + m0 (5) is.
  const budget = selectNodes(graph, { kind: 'budget', fraction: 0.5 });
  assert.deepEqual(ids(budget), ['a0.h1', 'm0']);
  assert.deepEqual(budget.selection, { level: 'node', rule: 'budget', value: 0.5, absolute: true, candidates: 6, kept: 2, removedForConnectivity: 0 });
  assert.equal(ids(selectNodes(graph, { kind: 'budget', fraction: 1 })).length, 6);
  assert.deepEqual(ids(selectNodes(graph, { kind: 'top-k', k: 2 }, { absolute: false })), ['m0', 'a1.h0']);
  assert.deepEqual(budget.nodes[0]!.id, 'input');
  assert.deepEqual(budget.nodes.at(-1)!.id, 'logits');
  assert.throws(() => selectNodes(graph, { kind: 'top-k', k: 7 }), /k = 7 but there are only 6 candidates/);
  assert.throws(() => selectNodes(graph, { kind: 'budget', fraction: 0 }), /budget fraction must be in \(0, 1\]/);
  assert.throws(() => selectNodes(graph, { kind: 'threshold', threshold: Number.NaN }), /threshold must be a finite number/);
});

test('chooseByRule breaks ties by position and ignores non-positive scores in budgets', () => {
  assert.deepEqual(chooseByRule([1, 2, 2, 1], { kind: 'top-k', k: 2 }), [1, 2]);
  assert.deepEqual(chooseByRule([1, 2, 2, 1], { kind: 'top-k', k: 1 }), [1]);
  assert.deepEqual(chooseByRule([-5, 1, 1], { kind: 'budget', fraction: 1 }, { absolute: false }), [1, 2]);
  assert.deepEqual(chooseByRule([0, 0], { kind: 'budget', fraction: 0.5 }), []);
});

test('edge selection keeps only edges on an input→logits path', () => {
  const graph = tinyEdgeGraph();
  const top3 = selectEdges(graph, { kind: 'top-k', k: 3 });
  assert.deepEqual(top3.edges.map((e) => e.id), ['input->a0.h0', 'a0.h0->m1', 'm1->logits']);
  assert.deepEqual(top3.nodes.map((n) => n.id), ['input', 'a0.h0', 'm1', 'logits']);
  // The 4th strongest edge (input->a1.h1) leads nowhere, so it is dropped and counted.
  const top4 = selectEdges(graph, { kind: 'top-k', k: 4 });
  assert.deepEqual(top4.edges.map((e) => e.id), top3.edges.map((e) => e.id));
  assert.equal(top4.selection.removedForConnectivity, 1);
  assert.equal(top4.selection.kept, 3);
  // m0->logits alone has no input; with input->m0 it becomes a path.
  assert.deepEqual(selectEdges(graph, { kind: 'top-k', k: 5 }).edges.length, 3);
  assert.deepEqual(selectEdges(graph, { kind: 'top-k', k: 6 }).edges.map((e) => e.id).sort(), ['a0.h0->m1', 'input->a0.h0', 'input->m0', 'm0->logits', 'm1->logits']);
  assert.throws(() => selectEdges(tinyNodeGraph(), { kind: 'top-k', k: 1 }), /no scored edges/);
  // Node selection keeps scored edges between kept nodes only.
  assert.deepEqual(selectNodes(graph, { kind: 'top-k', k: 1 }).edges.map((e) => e.id), []);
  assert.deepEqual(selectNodes(graph, { kind: 'threshold', threshold: 0.15 }).edges.map((e) => e.id), ['input->a0.h0', 'a0.h0->m1', 'm1->logits', 'm0->logits', 'input->m0']);
});

test('connectedEdges and impliedEdges', () => {
  assert.deepEqual(connectedEdges([{ source: 'input', target: 'logits' }, { source: 'a0.h0', target: 'logits' }]), [{ source: 'input', target: 'logits' }]);
  const circuit = selectNodes(tinyNodeGraph(), { kind: 'top-k', k: 2 }); // a0.h1, m0
  assert.deepEqual(
    impliedEdges(circuit).map((e) => `${e.source}->${e.target}`),
    ['input->a0.h1', 'input->m0', 'input->logits', 'a0.h1->m0', 'a0.h1->logits', 'm0->logits'],
  );
});

test('a built graph survives a JSON round trip through the validator', () => {
  const graph = selectEdges(tinyEdgeGraph(), { kind: 'budget', fraction: 0.8 });
  const loaded = validateCircuitGraph(JSON.parse(JSON.stringify(graph)), 'circuit.json');
  assert.deepEqual(loaded, graph);
});

test('validation lists every problem with its JSON path', () => {
  const json = JSON.parse(JSON.stringify(tinyEdgeGraph()));
  json.nodes[1].head = 1; // a0.h0 claims to be head 1
  json.nodes.push({ id: 'a0.h7', kind: 'head', layer: 0, head: 7, relevance: 1 });
  json.nodes.push({ id: 'm1', kind: 'mlp', layer: 1, relevance: 'high' });
  json.edges.push({ id: 'm1->a0.h1', source: 'm1', target: 'a0.h1', relevance: 1 });
  json.edges.push({ id: 'x', source: 'input', target: 'logits', relevance: 1 });
  json.edges.push({ id: 'input->a1.h5', source: 'input', target: 'a1.h5', relevance: 1 });
  json.selection.kept = -1;
  assert.throws(
    () => validateCircuitGraph(json, 'my-circuit.json'),
    (error: Error) => {
      const message = error.message;
      assert.match(message, /^my-circuit\.json: the circuit has 7 problems:/);
      assert.match(message, /nodes\[1\] \("a0\.h0"\)\.head: the id implies number 0, the node says number 1/);
      assert.match(message, /nodes\[8\] \("a0\.h7"\): "a0\.h7": head 7 is out of range/);
      assert.match(message, /nodes\[9\] \("m1"\): duplicate node id/);
      assert.match(message, /edges\[6\] \("m1->a0\.h1"\): does not go forward/);
      assert.match(message, /edges\[7\] \("x"\): the id must be "input->logits"/);
      assert.match(message, /edges\[8\] \("input->a1\.h5"\): target "a1\.h5" is not a node of this graph/);
      assert.match(message, /selection\.kept: expected a non-negative integer, got number -1/);
      return true;
    },
  );
  assert.throws(() => validateCircuitGraph({ ...json, version: 2 }, 'c.json'), /c\.json: unsupported circuit version number 2/);
  assert.throws(() => validateCircuitGraph([], 'c.json'), /c\.json: expected a JSON object, got an array/);
  const noLogits = JSON.parse(JSON.stringify(tinyNodeGraph()));
  noLogits.nodes.pop();
  assert.throws(() => validateCircuitGraph(noLogits), /the "logits" node is missing/);
});
