/**
 * Conformance with EAP-IG's own code: hannamw/EAP-IG `src/eap/graph.py` (pinned, unmodified in
 * ../shared/peers/eap-ig) loads our IOI edge circuit under Debian's python3-torch.
 * Done when: Graph.from_json reads every node and edge; apply_topn(k) with the circuit's edge
 * count reproduces our in_graph set; summed scores equal our edge relevance; EAP-IG's own
 * to_json → from_json round trip keeps it.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import type { CircuitGraph } from '../../src/circuits/discovery/graph';
import { tempDir } from '../helpers';
import { cli, PEERS, peersMissing, provisionPython, runPython } from './helpers';

const skip = peersMissing();

describe('EAP-IG Graph.from_json on our exports', { skip }, () => {
  let circuit: CircuitGraph;
  let split: any;
  let copy: any;

  before(() => {
    const problem = provisionPython();
    if (problem) throw new Error(problem);
    const dir = tempDir('conformance-eap');
    const at = (name: string) => path.join(dir, name);
    cli(['discover', '--task', 'ioi', '--n', '8', '--edges', '--top', '40', '--no-verify', '--out', at('ioi-edges.json')]);
    cli(['export', '--circuit', at('ioi-edges.json'), '--format', 'eap-ig', '--out', at('split.json')]);
    cli(['export', '--circuit', at('ioi-edges.json'), '--format', 'eap-ig', '--qkv', 'copy', '--out', at('copy.json')]);
    circuit = JSON.parse(fs.readFileSync(at('ioi-edges.json'), 'utf8'));
    [split, copy] = runPython('eap_ig_load.py', [path.join(PEERS, 'eap-ig', 'src'), at('split.json'), at('copy.json')]);
  });

  /** Our edges in EAP-IG's names: an edge into a head is its <q>, <k> and <v> inputs. */
  const expectedInGraph = () =>
    circuit.edges.flatMap((e) => (/^a\d+\.h\d+$/.test(e.target) ? ['q', 'k', 'v'].map((l) => `${e.source}->${e.target}<${l}>`) : [`${e.source}->${e.target}`])).sort();

  test('every node and edge of the 4-layer, 4-head graph is read; in_graph is our circuit', () => {
    assert.equal(split.nodes, 1 + 4 * (4 + 1) + 1);
    assert.equal(split.edges, Object.keys(JSON.parse(fs.readFileSync(split.file, 'utf8')).edges).length);
    assert.ok(circuit.edges.length > 10, `the IOI circuit has ${circuit.edges.length} edges`);
    assert.deepEqual(split.in_graph, expectedInGraph());
    assert.equal(split.nodes_in_graph, circuit.nodes.length, 'input, logits and every component the edges touch');
  });

  test('summed q/k/v scores equal our edge relevance (default --qkv split)', () => {
    for (const edge of circuit.edges) {
      const sum = split.pair_sums[`${edge.source}->${edge.target}`];
      assert.ok(Math.abs(sum - edge.relevance) <= 1e-6 * Math.max(1, Math.abs(edge.relevance)), `${edge.id}: EAP-IG sums ${sum}, ours ${edge.relevance}`);
    }
    const total = Object.values(split.pair_sums as Record<string, number>).reduce((a, b) => a + b, 0);
    const ours = circuit.edges.reduce((a, e) => a + e.relevance, 0);
    assert.ok(Math.abs(total - ours) <= 1e-5 * Math.max(1, Math.abs(ours)), `graph total ${total} vs ours ${ours}`);
    // --qkv copy counts a head's input three times, which is why it is not the default.
    const head = circuit.edges.find((e) => /^a\d+\.h\d+$/.test(e.target) && e.relevance !== 0)!;
    const copied = copy.pair_sums[`${head.source}->${head.target}`];
    assert.ok(Math.abs(copied - 3 * head.relevance) <= 1e-6 * Math.max(1, Math.abs(head.relevance)));
  });

  test('apply_topn(count_included_edges) reproduces the in_graph set, for both --qkv modes', () => {
    assert.equal(split.count_included_edges, expectedInGraph().length);
    assert.deepEqual(split.topn_in_graph, split.in_graph);
    assert.deepEqual(copy.topn_in_graph, copy.in_graph);
  });

  test("EAP-IG's own to_json → from_json round trip keeps in_graph and scores", () => {
    assert.equal(split.roundtrip, true);
    assert.equal(copy.roundtrip, true);
  });
});
