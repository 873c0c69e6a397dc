/**
 * Neuronpedia's and circuit-tracer's own formatters on our exported *prompt graph* (issue 15):
 * `circuit-lens graph` on an IOI prompt of the embedded model, then `export --format neuronpedia`,
 * then the peers' code as their viewers run it on every graph, loaded from ../shared/peers
 * (never copied here, see viewers.ts):
 * - Neuronpedia `formatCLTGraphData` (apps/webapp/app/[modelId]/graph/utils.ts) and
 * - circuit-tracer `utilCg.formatData` (frontend/assets/attribution_graph/util-cg.js),
 * must keep every node and link, attach every link to its two nodes, and compute the layout data
 * the link graph places nodes by: the column (`ctx_idx`, `ctx_from_end`) and the row
 * (`streamIdx`, layers bottom to top, logit on top). Both pages also hide nodes whose cumulative
 * `influence` exceeds their pruning slider (default: metadata.node_threshold); that is run too.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { EMBEDDED_MODEL, tempDir } from '../helpers';
import { cli, peersMissing } from './helpers';
import { loadCircuitTracer, loadNeuronpedia, type NeuronpediaUtils } from './viewers';

const skip = peersMissing();
const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const IOI = JSON.parse(fs.readFileSync(path.join(EMBEDDED_MODEL, 'ioi.jsonl'), 'utf8').split('\n')[0]!) as { prompt: string; io: string; s: string; prompt_ids: number[] };

describe("Neuronpedia's and circuit-tracer's formatters draw an exported prompt graph", { skip }, () => {
  let graph: any;
  let exported: any;
  let file: string;
  let np: NeuronpediaUtils;
  let ct: Awaited<ReturnType<typeof loadCircuitTracer>>;
  const P = IOI.prompt_ids.length - 1;

  before(async () => {
    const dir = tempDir('conformance-prompt-graph');
    const out = path.join(dir, 'graph.json');
    file = path.join(dir, 'np-prompt-graph.json');
    cli(['graph', '--prompt', IOI.prompt, '--target', IOI.io, '--foil', IOI.s, '--out', out]);
    cli(['export', '--circuit', out, '--format', 'neuronpedia', '--out', file]);
    graph = read(out);
    exported = read(file);
    np = await loadNeuronpedia();
    ct = await loadCircuitTracer();
  });

  test('the export is the pruned prompt graph: every node, every non-zero edge, heads at their positions', () => {
    assert.equal(exported.nodes.length, graph.nodes.length);
    assert.equal(exported.links.length, graph.edges.filter((e: any) => e.relevance !== 0).length);
    assert.ok(exported.links.length > 50, `${exported.links.length} links`);
    const mover = exported.nodes.find((n: any) => n.clerp.startsWith(`a2.h2@${P} `));
    assert.ok(mover, 'the name mover at the last position is a node');
    assert.equal(mover.ctx_idx, P);
    // The QK selection's edges into the name mover are links of the export.
    const qk = graph.edges.filter((e: any) => e.target === `a2.h2@${P}` && e.qkSelected);
    assert.ok(qk.length > 0);
    for (const e of qk) assert.ok(exported.links.some((l: any) => l.target === mover.node_id && Math.abs(l.weight - e.relevance) < 1e-12), `${e.id} is a link`);
  });

  /** What both viewers need to place and connect nodes (util-cg.js formatData, utils.ts formatCLTGraphData). */
  function checkLayout(name: string, formatted: any, drawnIds: Set<string>, logitOnTopOf: (n: any) => boolean): void {
    assert.equal(formatted.nodes.length, drawnIds.size, `${name}: nodes drawn`);
    const expectedLinks = exported.links.filter((l: any) => drawnIds.has(l.source) && drawnIds.has(l.target));
    assert.equal(formatted.links.length, expectedLinks.length, `${name}: links drawn`);
    for (const link of formatted.links) {
      assert.equal(link.sourceNode.node_id, link.source, `${name}: link source attached`);
      assert.equal(link.targetNode.node_id, link.target, `${name}: link target attached`);
      assert.ok(Number.isFinite(link.pctInput), `${name}: ${link.linkId} share of its target's input`);
    }
    const byId = new Map(exported.nodes.map((n: any) => [n.node_id, n]));
    const logit = formatted.nodes.find((n: any) => n.feature_type === 'logit');
    for (const node of formatted.nodes) {
      const ours = byId.get(node.node_id) as any;
      assert.equal(node.ctx_idx, ours.ctx_idx, `${name}: ${node.node_id} column`);
      assert.equal(node.ctx_from_end, IOI.prompt_ids.length - ours.ctx_idx, `${name}: ${node.node_id} column from the end`);
      assert.ok(Number.isInteger(node.streamIdx) && node.streamIdx >= 0, `${name}: ${node.node_id} row ${node.streamIdx}`);
      if (node !== logit) assert.ok(logitOnTopOf(node) ? logit.streamIdx > node.streamIdx : true, `${name}: the logit above ${node.node_id}`);
    }
    // Rows follow layers: a node of a higher layer is never drawn below one of a lower layer.
    const numeric = formatted.nodes.filter((n: any) => /^\d+$/.test(n.layer));
    for (const a of numeric) for (const b of numeric) if (+a.layer < +b.layer) assert.ok(a.streamIdx <= b.streamIdx, `${name}: ${a.node_id} row ${a.streamIdx} vs ${b.node_id} row ${b.streamIdx}`);
    const embedding = formatted.nodes.filter((n: any) => n.feature_type === 'embedding');
    assert.ok(embedding.length === IOI.prompt_ids.length && embedding.every((n: any) => n.streamIdx === 0), `${name}: embeddings on the bottom row`);
    assert.equal(Math.abs(logit.logitPct - logit.token_prob) < 5e-4, true, `${name}: logit probability parsed`);
    assert.equal(new Set(formatted.nodes.map((n: any) => `${n.ctx_idx}:${n.streamIdx}:${n.featureId}`)).size, formatted.nodes.length, `${name}: no two nodes share a place and feature`);
  }

  test("Neuronpedia's formatCLTGraphData keeps every node and link and computes each node's column and row", () => {
    const formatted = np.formatCLTGraphData(read(file), null);
    checkLayout('Neuronpedia', formatted, new Set(exported.nodes.map((n: any) => n.node_id)), () => true);
    // Neuronpedia's rows are the layer numbers (its streamIdx = +layer; the logit gets L + 1).
    for (const n of formatted.nodes.filter((d: any) => /^\d+$/.test(d.layer))) assert.equal(n.streamIdx, +n.layer);
  });

  test("circuit-tracer's formatData keeps every node and link and computes each node's column and row", async () => {
    const formatted = await ct.formatData(read(file), { pinnedIds: [], isHideLayer: false });
    checkLayout('circuit-tracer', formatted, new Set(exported.nodes.map((n: any) => n.node_id)), () => true);
    // circuit-tracer's rows: embeddings 0, layer l at l + 1, the logit at L + 2 (util-cg.js).
    for (const n of formatted.nodes.filter((d: any) => /^\d+$/.test(d.layer))) assert.equal(n.streamIdx, +n.layer + 1);
    const mover = formatted.nodes.find((n: any) => n.clerp.startsWith(`a2.h2@${P} `));
    assert.ok(mover.sourceLinks.length > 0 && mover.targetLinks.length > 0, 'the name mover has inputs and outputs');
  });

  test("both viewers' pruning sliders at their default (metadata.node_threshold) still draw every node", async () => {
    const threshold = exported.metadata.node_threshold;
    assert.ok(threshold >= exported.metadata.pruning_settings.node_threshold && Math.abs(threshold - graph.selection.nodeShare) < 1e-12);
    const all = new Set<string>(exported.nodes.map((n: any) => n.node_id));
    // circuit-tracer: util-cg.js formatData keeps embeddings, logits and `influence <= slider`.
    const formatted = await ct.formatData(read(file), { pinnedIds: [], isHideLayer: false, pruningThreshold: threshold });
    checkLayout('circuit-tracer (default slider)', formatted, all, () => true);
    // Neuronpedia: the same test per node, in shouldShowNodeForInfluenceThreshold.
    // (utils.ts exports it beside formatCLTGraphData; viewers.ts's interface names only what the other tests use.)
    const { shouldShowNodeForInfluenceThreshold } = np as NeuronpediaUtils & { shouldShowNodeForInfluenceThreshold(node: any, visState: any, clickedId: string | null): boolean };
    const shown = np.formatCLTGraphData(read(file), null).nodes.filter((n: any) => shouldShowNodeForInfluenceThreshold(n, { pinnedIds: [], pruningThreshold: threshold }, null));
    assert.equal(shown.length, all.size, 'Neuronpedia shows every node at its default slider');
    // A lower slider hides nodes in both, by the same rule: influence past it.
    const lower = exported.metadata.pruning_settings.node_threshold / 2;
    const drawnLower = (await ct.formatData(read(file), { pinnedIds: [], isHideLayer: false, pruningThreshold: lower })).nodes.length;
    const expected = exported.nodes.filter((n: any) => n.feature_type === 'embedding' || n.feature_type === 'logit' || n.influence === null || n.influence <= lower).length;
    assert.ok(drawnLower === expected && drawnLower < all.size, `${drawnLower} drawn at slider ${lower}, ${expected} expected of ${all.size}`);
  });
});
