/**
 * Conformance with Neuronpedia's and circuit-tracer's own code (pinned, unmodified in
 * ../shared/peers) on our Neuronpedia/circuit-tracer graph JSON, exported by the CLI from the
 * embedded tiny-ioi-gpt2: the IOI edge circuit and a one-prompt node circuit.
 * - Neuronpedia upload schema (graph-schema.json, Ajv draft-07) accepts them.
 * - Neuronpedia `formatCLTGraphData` and circuit-tracer `formatData` (what both viewers run on
 *   every graph) draw them with every node and link kept; the logit's probability is read back.
 * - Neuronpedia's Cantor decoders give each feature's layer and index back.
 * - circuit-tracer's pydantic `Model` parses them (Debian python3-pydantic), and its
 *   `Metadata` every entry of the graph-metadata.json that `export` writes beside them.
 * - A circuit whose components all sit in layer 0: the CLI warns, and Neuronpedia indeed
 *   throws "No layer found" on it.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import Ajv from 'ajv';
import { cantorUnpair } from '../../src/circuits/exporters/export';
import { tempDir } from '../helpers';
import { makeExports, PEERS, peersMissing, provisionPython, runPython, type Exports } from './helpers';
import { loadCircuitTracer, loadNeuronpedia, type NeuronpediaUtils } from './viewers';

const skip = peersMissing();
const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

describe('Neuronpedia and circuit-tracer on our graphs', { skip }, () => {
  let exports: Exports;
  let np: NeuronpediaUtils;
  let ct: Awaited<ReturnType<typeof loadCircuitTracer>>;
  let graphs: [string, string][];

  before(async () => {
    exports = makeExports(tempDir('conformance-np'));
    np = await loadNeuronpedia();
    ct = await loadCircuitTracer();
    graphs = [
      ['IOI edge circuit', exports.npEdges],
      ['prompt node circuit', exports.npNodes],
    ];
  });

  test('the graphs are non-trivial and reach past layer 0', () => {
    const edges = read(exports.npEdges);
    assert.ok(edges.links.length > 20, `${edges.links.length} links`);
    assert.ok(edges.nodes.filter((n: any) => n.feature_type !== 'embedding').length > 5);
    for (const [, file] of graphs) assert.ok(read(file).nodes.some((n: any) => /^[1-9]\d*$/.test(n.layer) && n.feature_type !== 'logit'));
  });

  test("Neuronpedia's upload schema (Ajv) accepts them", () => {
    // strict: false — the schema carries annotation keywords ("version", "examples") Ajv's strict mode rejects.
    const validate = new Ajv({ allErrors: true, strict: false }).compile(np.ATTRIBUTION_GRAPH_SCHEMA);
    for (const [name, file] of graphs) assert.ok(validate(read(file)), `${name}: ${JSON.stringify(validate.errors)}`);
  });

  test("Neuronpedia's formatCLTGraphData draws every node and link; features decode to their layer and index", () => {
    for (const [name, file] of graphs) {
      const data = read(file);
      const formatted = np.formatCLTGraphData(read(file), null);
      assert.equal(formatted.nodes.length, data.nodes.length, `${name}: nodes kept`);
      assert.equal(formatted.links.length, data.links.length, `${name}: links kept`);
      const logit = formatted.nodes.find((n: any) => n.feature_type === 'logit');
      assert.ok(Number.isFinite(logit.logitPct) && Math.abs(logit.logitPct - logit.token_prob) < 5e-4, `${name}: logitPct ${logit.logitPct} vs token_prob ${logit.token_prob}`);
      for (const node of data.nodes.filter((n: any) => n.feature_type !== 'embedding' && n.feature_type !== 'logit')) {
        const [layer, index] = node.node_id.split('_').map(Number);
        assert.equal(np.getLayerFromFeatureAndGraph('tiny-ioi-gpt2', node, data), layer, `${name}: ${node.clerp} layer`);
        assert.equal(np.getIndexFromFeatureAndGraph('tiny-ioi-gpt2', node, data), index, `${name}: ${node.clerp} index`);
        assert.deepEqual(cantorUnpair(node.feature), { layer, index });
      }
    }
  });

  test("circuit-tracer's formatData draws every node and link", async () => {
    for (const [name, file] of graphs) {
      const data = read(file);
      const formatted = await ct.formatData(read(file), { pinnedIds: [], isHideLayer: false });
      assert.equal(formatted.nodes.length, data.nodes.length, `${name}: nodes kept`);
      assert.equal(formatted.links.length, data.links.length, `${name}: links kept`);
      const logit = formatted.nodes.find((n: any) => n.feature_type === 'logit');
      assert.ok(Math.abs(logit.logitPct - logit.token_prob) < 5e-4, `${name}: logitPct ${logit.logitPct}`);
      assert.equal(logit.logitToken, data.nodes.find((n: any) => n.feature_type === 'logit').clerp.split('"')[1], `${name}: logit token parsed`);
    }
  });

  test("circuit-tracer's pydantic Model parses them; graph-metadata.json lists both", () => {
    const problem = provisionPython();
    if (problem) throw new Error(problem);
    const modelPy = path.join(PEERS, 'circuit-tracer', 'circuit_tracer', 'frontend', 'graph_models.py');
    const index = path.join(exports.dir, 'graph-metadata.json');
    const results = runPython('circuit_tracer_model.py', [modelPy, ...graphs.map(([, file]) => file), index]);
    graphs.forEach(([name, file], i) => {
      const data = read(file);
      assert.equal(results[i].error, undefined, `${name}: ${results[i].error}`);
      assert.equal(results[i].nodes, data.nodes.length);
      assert.equal(results[i].links, data.links.length);
      assert.deepEqual(results[i].transcoder_list, []);
    });
    const listed = results.at(-1);
    assert.equal(listed.error, undefined, listed.error);
    assert.deepEqual([...listed.slugs].sort(), ['np-ioi-edges', 'np-layer0', 'np-prompt-nodes']);
  });

  test('all components in layer 0: the CLI warns, and Neuronpedia indeed refuses the graph', () => {
    const data = read(exports.npLayer0);
    assert.ok(data.nodes.some((n: any) => n.layer === '0'), 'the layer-0 circuit has layer-0 components');
    assert.match(exports.npLayer0Warnings.join(' '), /every component of this circuit is in layer 0/);
    assert.throws(() => np.formatCLTGraphData(data, null), /No layer found/);
  });
});
