import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cantorPair,
  cantorUnpair,
  eapIgEdgeList,
  graphMetadataEntry,
  mergeGraphMetadata,
  neuronpediaWarnings,
  eapIgNodeNames,
  toEapIgJson,
  toNeuronpediaJson,
  validateEapIgJson,
  validateNeuronpediaJson,
  type NeuronpediaExportOptions,
} from '../../src/circuits/exporters/export';
import { buildCircuitGraph, selectEdges, selectNodes } from '../../src/circuits/discovery/graph';
import { TINY_MODEL, tinyEdgeGraph, tinyNodeGraph } from './circuits-graph-fixture';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

test('the full EAP-IG graph of a 2-layer, 2-head model has 46 edges with q/k/v into heads', () => {
  assert.deepEqual(eapIgNodeNames({ n_layers: 2, n_heads: 2 }).map((n) => n.name), ['input', 'a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1', 'logits']);
  const names = eapIgEdgeList({ n_layers: 2, n_heads: 2 }).map(([s, t, qkv]) => (qkv ? `${s}->${t}<${qkv}>` : `${s}->${t}`));
  // layer-0 heads 3·2·1, m0 3, layer-1 heads 3·2·4, m1 6, logits 7
  assert.equal(names.length, 46);
  assert.ok(names.includes('input->a0.h0<q>'));
  assert.ok(names.includes('m0->a1.h1<v>'));
  assert.ok(names.includes('a1.h0->m1'));
  assert.ok(!names.includes('m0->a0.h0<q>'));
  assert.ok(!names.includes('a0.h0->a0.h1<k>'));
});

test('EAP-IG export of an edge circuit: q/k/v scores, in_graph for the kept edges only, no node scores', () => {
  const circuit = selectEdges(tinyEdgeGraph(), { kind: 'top-k', k: 3 }); // input->a0.h0, a0.h0->m1, m1->logits
  const json = toEapIgJson(circuit, { qkvScore: 'copy' });
  assert.deepEqual(validateEapIgJson(json), []);
  assert.deepEqual(json.cfg, { n_layers: 2, n_heads: 2, parallel_attn_mlp: false, d_model: 8 });
  assert.equal(Object.keys(json.nodes).length, 8);
  assert.equal(Object.keys(json.edges).length, 46);
  for (const letter of ['q', 'k', 'v']) assert.deepEqual(json.edges[`input->a0.h0<${letter}>`], { score: 5, in_graph: true });
  assert.deepEqual(json.edges['a0.h0->m1'], { score: -4, in_graph: true });
  assert.deepEqual(json.edges['m1->logits'], { score: 3, in_graph: true });
  assert.deepEqual(json.edges['input->a1.h1<q>'], { score: 0, in_graph: false }, 'dropped edges are out of the graph');
  // Edge exports carry no node scores unless asked (EAP-IG's to_json fails on node scores without neurons).
  assert.deepEqual(json.nodes['a0.h0'], { in_graph: true });
  assert.deepEqual(json.nodes['a0.h1'], { in_graph: false });
  assert.deepEqual(json.nodes['logits'], { in_graph: true });
  const withScores = toEapIgJson(circuit, { nodeScores: true });
  assert.deepEqual(withScores.nodes['a0.h0'], { in_graph: true, score: 0.5 });
  assert.deepEqual(withScores.nodes['a0.h1'], { in_graph: false, score: 0 });
  // The default splits a head input's relevance over q, k, v, so scores sum to our edge relevance.
  const split = toEapIgJson(circuit);
  close(split.edges['input->a0.h0<k>']!.score, 5 / 3);
  assert.equal(split.edges['a0.h0->m1']!.score, -4, 'only head inputs are split');
  const sum = (j: typeof json) => Object.values(j.edges).reduce((acc, e) => acc + e.score, 0);
  close(sum(split), circuit.edges.reduce((acc, e) => acc + e.relevance, 0), 1e-9);
  assert.throws(() => toEapIgJson(circuit, { qkvScore: 'thirds' as 'split' }), /qkvScore must be split or copy/);
});

test('EAP-IG export of a node circuit marks edges among kept nodes, neurons fold into blocks', () => {
  const circuit = selectNodes(tinyNodeGraph(), { kind: 'top-k', k: 2 }); // a0.h1, m0
  const json = toEapIgJson(circuit);
  assert.deepEqual(validateEapIgJson(json), []);
  assert.equal(json.edges['a0.h1->m0']!.in_graph, true);
  assert.equal(json.edges['input->a0.h1<v>']!.in_graph, true);
  assert.equal(json.edges['m0->logits']!.in_graph, true);
  assert.equal(json.edges['a0.h0->m0']!.in_graph, false);
  assert.equal(Object.values(json.edges).filter((e) => e.in_graph).length, 3 + 1 + 1 + 1 + 1 + 1); // input→a0.h1 (q,k,v), input→m0, input→logits, a0.h1→m0, a0.h1→logits, m0→logits
  const neurons = buildCircuitGraph({
    model: TINY_MODEL,
    task: { name: 't', metric: 'kl', examples: 1 },
    method: { name: 'attnlrp' },
    heads: [[0, 0], [0, 0]],
    neurons: [[1, -2, 4], [0, 0, 0]],
  });
  const folded = toEapIgJson(selectNodes(neurons, { kind: 'top-k', k: 2 })); // m0.n2, m0.n1; node circuits keep node scores
  assert.deepEqual(folded.nodes['m0'], { in_graph: true, score: 2 });
  assert.deepEqual(folded.nodes['m1'], { in_graph: false, score: 0 });
  assert.deepEqual(validateEapIgJson(folded), []);
});

test('the EAP-IG validator catches what Graph.from_json would reject', () => {
  const json = toEapIgJson(tinyNodeGraph()) as unknown as { cfg: Record<string, unknown>; nodes: Record<string, unknown>; edges: Record<string, unknown> };
  json.edges['input->a0.h0'] = { score: 1, in_graph: true }; // head target without q/k/v
  json.edges['input->m0<q>'] = { score: 1, in_graph: true }; // q/k/v on an MLP
  json.edges['m1->a0.h0<q>'] = { score: 1, in_graph: true }; // backwards
  json.edges['a0.h0->a9.h0<q>'] = { score: 1, in_graph: true }; // unknown node
  json.edges['m0->logits'] = { score: 'high', in_graph: 1 };
  json.nodes['a5.h0'] = { in_graph: true };
  const problems = validateEapIgJson(json);
  assert.deepEqual(problems, [
    'nodes["a5.h0"]: not a node of a 2-layer, 2-head graph',
    'edges["m0->logits"].score: expected a finite number',
    'edges["m0->logits"].in_graph: expected a boolean',
    'edges["input->a0.h0"]: edges into an attention head must name its q, k or v input',
    'edges["input->m0<q>"]: only edges into attention heads carry <q|k|v>',
    'edges["m1->a0.h0<q>"]: not an edge of the model graph (it does not go forward)',
    'edges["a0.h0->a9.h0<q>"]: "a9.h0" cannot end an edge',
  ]);
  assert.deepEqual(validateEapIgJson({ cfg: {}, nodes: {} }), ['edges: required object is missing']);
});

const PROMPT: NeuronpediaExportOptions = {
  slug: 'ioi-tiny',
  prompt: 'Then, Ann and Bob went',
  promptIds: [5, 6, 7],
  promptTokens: ['Then', ',', ' Ann'],
  target: { id: 42, text: ' Ann', probability: 0.9 },
  createTimeMs: 1700000000000,
};

test('Neuronpedia export of an edge circuit validates and splits input edges over tokens', () => {
  const circuit = selectEdges(tinyEdgeGraph(), { kind: 'top-k', k: 3 });
  const json = toNeuronpediaJson(circuit, { ...PROMPT, tokenRelevance: [1, -1, 2] });
  assert.deepEqual(validateNeuronpediaJson(json), []);
  assert.deepEqual(validateNeuronpediaJson(JSON.parse(JSON.stringify(json))), []);
  assert.equal(json.metadata.scan, 'tiny-test');
  assert.deepEqual(json.metadata.prompt_tokens, ['Then', ',', ' Ann']);
  assert.equal(json.metadata.info!.create_time_ms, 1700000000000);
  assert.deepEqual(json.metadata.info!.generator, { name: 'circuit-lens', version: '0.1.0' });
  assert.deepEqual(json.nodes.map((n) => n.node_id), ['E_5_0', 'E_6_1', 'E_7_2', '0_0_2', '1_2_2', '3_42_2']);
  assert.deepEqual(json.metadata.transcoder_list, [], 'circuit-tracer\'s Metadata requires transcoder_list');
  assert.equal(json.metadata.schema_version, 1);
  const head = json.nodes.find((n) => n.clerp === 'a0.h0')!;
  assert.deepEqual(
    { feature: head.feature, layer: head.layer, ctx_idx: head.ctx_idx, feature_type: head.feature_type, jsNodeId: head.jsNodeId },
    { feature: 0, layer: '0', ctx_idx: 2, feature_type: 'attention head', jsNodeId: '0_0-0' },
  );
  // schema_version 1: feature = Cantor(layer, index); m1 is index H = 2 of layer 1 → (1+2)(1+2+1)/2 + 2 = 8.
  const m1 = json.nodes.find((n) => n.clerp === 'm1')!;
  assert.equal(m1.feature, 8);
  assert.deepEqual(cantorUnpair(m1.feature!), { layer: 1, index: 2 });
  const logit = json.nodes.at(-1)!;
  assert.equal(logit.feature_type, 'logit');
  assert.equal(logit.clerp, 'Output " Ann" (p=0.900)');
  assert.equal(logit.token_prob, 0.9);
  // What both viewers run on the logit node:
  assert.equal(+logit.clerp.split('(p=')[1]!.split(')')[0]!, 0.9);
  assert.equal(json.qParams.clickedId, '3_42_2');
  // input->a0.h0 (5) split by |token relevance| shares 1/4, 1/4, 2/4.
  const fromInput = json.links.filter((l) => l.target === '0_0_2').map((l) => [l.source, l.weight]);
  assert.deepEqual(fromInput, [['E_5_0', 1.25], ['E_6_1', 1.25], ['E_7_2', 2.5]]);
  assert.deepEqual(json.links.filter((l) => !l.source.startsWith('E_')), [
    { source: '0_0_2', target: '1_2_2', weight: -4 },
    { source: '1_2_2', target: '3_42_2', weight: 3 },
  ]);
});

test('Neuronpedia export of a node circuit links components to the logit and carries cumulative influence', () => {
  const circuit = selectNodes(tinyNodeGraph(), { kind: 'budget', fraction: 0.8 }); // a0.h1 (3), m0 (2), a1.h0 (1): 6 ≥ 5.44
  const json = toNeuronpediaJson(circuit, PROMPT);
  assert.deepEqual(validateNeuronpediaJson(json), []);
  const byLabel = new Map(json.nodes.map((n) => [n.clerp, n]));
  close(byLabel.get('a0.h1')!.influence as number, 3 / 6);
  close(byLabel.get('m0')!.influence as number, 5 / 6);
  close(byLabel.get('a1.h0')!.influence as number, 1);
  assert.equal(byLabel.get('m0')!.node_id, '0_2_2', 'the MLP block is index H = 2 of its layer');
  assert.equal(byLabel.get('m0')!.feature, cantorPair(0, 2));
  assert.equal(byLabel.get('a1.h0')!.feature, cantorPair(1, 0));
  assert.equal(cantorPair(1, 0), 1, 'a1.h0 decodes to layer 1, index 0');
  assert.equal(byLabel.get('m0')!.feature_type, 'mlp');
  assert.deepEqual(json.links, [
    { source: '0_1_2', target: '3_42_2', weight: -3 },
    { source: '0_2_2', target: '3_42_2', weight: 2 },
    { source: '1_0_2', target: '3_42_2', weight: 1 },
  ]);
  assert.deepEqual(json.metadata.pruning_settings, { node_threshold: 0.8 });
  assert.deepEqual(toNeuronpediaJson(circuit, { ...PROMPT, nodeLinks: 'none' }).links, []);
});

test('Neuronpedia export and validator report bad input', () => {
  assert.throws(() => toNeuronpediaJson(tinyNodeGraph(), { ...PROMPT, promptTokens: ['a'] }), /1 token strings for 3 token ids/);
  assert.throws(() => toNeuronpediaJson(tinyNodeGraph(), { ...PROMPT, tokenRelevance: [1] }), /token relevance has 1 entries for 3 tokens/);
  const json = JSON.parse(JSON.stringify(toNeuronpediaJson(tinyNodeGraph(), PROMPT)));
  delete json.metadata.slug;
  json.nodes[1].ctx_idx = 1.5;
  json.nodes[2].node_id = json.nodes[1].node_id;
  json.nodes[3].feature = 'x';
  json.links.push({ source: 'E_5_0', target: 'nowhere', weight: 1 });
  json.qParams.pinnedIds = [3];
  assert.deepEqual(validateNeuronpediaJson(json), [
    'metadata.slug: required string',
    'qParams.pinnedIds: expected an array of strings',
    'nodes[1].ctx_idx: required integer',
    'nodes[2].node_id: duplicate id "E_6_1"',
    'nodes[3].feature: required integer or null',
    `links[${json.links.length - 1}].target: "nowhere" is not a node id (dangling link)`,
  ]);
  assert.deepEqual(validateNeuronpediaJson({ metadata: {}, nodes: [] }), ['qParams: required object is missing', 'links: required array is missing']);
});

test('the Neuronpedia validator refuses a logit without (p=…), a missing transcoder_list and non-Cantor features', () => {
  assert.throws(() => toNeuronpediaJson(tinyNodeGraph(), { ...PROMPT, target: { id: 42, text: ' Ann' } as NeuronpediaExportOptions['target'] }), /target probability must be a number/);
  const json = JSON.parse(JSON.stringify(toNeuronpediaJson(tinyNodeGraph(), PROMPT)));
  const logitIndex = json.nodes.findIndex((n: { feature_type: string }) => n.feature_type === 'logit');
  const headIndex = json.nodes.findIndex((n: { clerp: string }) => n.clerp === 'a1.h1');
  json.nodes[logitIndex].clerp = 'Output " Ann"';
  delete json.nodes[logitIndex].token_prob;
  json.nodes[headIndex].feature = 1; // the old per-layer index: decodes to layer 1 only by chance…
  const m1 = json.nodes.findIndex((n: { clerp: string }) => n.clerp === 'm1');
  json.nodes[m1].feature = 2; // …and m1's old index 2 decodes to layer 0
  delete json.metadata.transcoder_list;
  assert.deepEqual(validateNeuronpediaJson(json), [
    "metadata.transcoder_list: required array of strings (circuit-tracer's Metadata; [] without transcoders)",
    `nodes[${m1}].feature: 2 decodes to layer 0, not 1 (schema_version 1 features are Cantor pairs of layer and index)`,
    `nodes[${logitIndex}].clerp: a logit node's clerp must carry its probability as "(p=0.123)"`,
    `nodes[${logitIndex}].token_prob: a logit node needs its probability`,
  ]);
});

test('a graph whose components all sit in layer 0 is flagged; graph-metadata.json entries merge by slug', () => {
  const layer0 = selectNodes(tinyNodeGraph(), { kind: 'top-k', k: 2 }); // a0.h1, m0
  assert.match(neuronpediaWarnings(toNeuronpediaJson(layer0, PROMPT)).join(), /every component of this circuit is in layer 0/);
  assert.deepEqual(neuronpediaWarnings(toNeuronpediaJson(tinyNodeGraph(), PROMPT)), []);
  const json = toNeuronpediaJson(tinyNodeGraph(), PROMPT);
  const entry = graphMetadataEntry(json);
  assert.deepEqual(entry, { slug: 'ioi-tiny', scan: 'tiny-test', transcoder_list: [], prompt_tokens: ['Then', ',', ' Ann'], prompt: PROMPT.prompt, node_threshold: null, schema_version: 1 });
  const merged = mergeGraphMetadata({ graphs: [{ slug: 'other' }, { slug: 'ioi-tiny', prompt: 'old' }] }, entry);
  assert.deepEqual(merged.graphs.map((g) => [g['slug'], g['prompt']]), [['other', undefined], ['ioi-tiny', PROMPT.prompt]]);
  assert.deepEqual(mergeGraphMetadata(undefined, entry), { graphs: [entry] });
});
