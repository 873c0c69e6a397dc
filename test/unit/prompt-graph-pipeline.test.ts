/**
 * The prompt-graph use case as the editor runs it: the pipeline the CLI and the worker share,
 * its graph through the wire schema the panel reads, the worker's requests, and the clicked-node
 * ablation ("Ablate at this position & rerun") against a forward pass with that head zeroed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { ablatePromptNodes } from '../../src/circuits/prompt/promptGraph';
import { ablatePromptGraphNodes, promptGraph } from '../../src/pipelines/promptGraph';
import { parseWith } from '../../src/protocol/schema';
import { promptGraphSchema } from '../../src/protocol/promptGraph';
import { engineRequests } from '../../src/protocol/worker';
import { fromPromptPanelMessages, promptPanelStateSchema } from '../../src/protocol/webview';
import { EMBEDDED_MODEL } from '../helpers';

const PROMPT = 'Then, Sean and Hugo were thinking about going to the farm. Sean wanted to give a cake to';

describe('prompt graph pipeline (CLI and editor)', () => {
  let engine: Engine;
  before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
  after(() => engine.dispose());

  it('builds the IOI graph, which survives the wire schema unchanged', async () => {
    const progress: string[] = [];
    const graph = await promptGraph(engine, { prompt: { text: PROMPT }, target: { text: 'Hugo' }, foil: { text: ' Sean' } }, { progress: (p) => p.message && progress.push(p.message) });
    assert.equal(graph.prompt.ids.length, 20);
    assert.equal(graph.target.position, 19);
    assert.equal(graph.target.text, ' Hugo'); // "Hugo" as typed in the editor means the word after a space
    assert.equal(graph.target.foilText, ' Sean');
    assert.ok(graph.nodes.some((n) => n.id === 'a2.h2@19'), 'the name mover at the last position is kept');
    assert.ok(graph.attention['a2.h2@19'], 'its attention pattern is recorded');
    assert.ok(graph.conservation.relativeError < 1e-4);
    assert.ok(progress.length > 0);
    // What the worker posts and the panel validates is the same object.
    const wire = parseWith(promptGraphSchema, JSON.parse(JSON.stringify(graph)), 64 << 20);
    assert.deepEqual(JSON.parse(JSON.stringify(wire)), JSON.parse(JSON.stringify(graph)));
    const state = parseWith(promptPanelStateSchema, { graph: wire, title: 'ioi', selected: 'a2.h2@19', ablations: [{ node: 'a2.h2@19', ablation: 'zero', full: 1, ablated: 0 }] }, 64 << 20);
    assert.equal(state.graph?.nodes.length, graph.nodes.length);
  });

  it('ablating a clicked node re-runs the prompt: the same numbers as ablatePromptNodes on the graph', async () => {
    const graph = await promptGraph(engine, { prompt: { text: PROMPT }, target: { text: ' Hugo' }, foil: { text: ' Sean' } });
    const t = graph.target;
    const ours = await ablatePromptGraphNodes(engine, { ids: graph.prompt.ids, metric: graph.task.metric, position: t.position, token: t.token, foil: t.foil! }, ['a2.h2@19'], 'zero');
    const direct = await ablatePromptNodes(engine, graph, ['a2.h2@19'], 'zero');
    assert.equal(ours.full, direct.full);
    assert.equal(ours.ablated[0], direct.ablated[0]);
    assert.ok(Math.abs(ours.full - t.value) < 1e-3 * Math.max(1, Math.abs(t.value)), `full ${ours.full} vs graph ${t.value}`);
    // a2.h2 carries the logit difference on this prompt: zeroing it at the last position lowers it.
    assert.ok(ours.ablated[0]! < ours.full - 0.5, `ablated ${ours.ablated[0]} vs full ${ours.full}`);
  });

  it('refuses bad input with a clear error', async () => {
    const graph = { ids: engine.encode(PROMPT).ids, metric: 'logit_diff' as const, position: 19, token: 1012, foil: 1038 };
    await assert.rejects(ablatePromptGraphNodes(engine, graph, ['a9.h0@19'], 'zero'), /layer 9 does not exist/);
    await assert.rejects(ablatePromptGraphNodes(engine, graph, ['a2.h2@40'], 'zero'), /past the prompt/);
    await assert.rejects(ablatePromptGraphNodes(engine, { ...graph, ids: [99999] }, ['a2.h2@0'], 'zero'), /vocabulary/);
    await assert.rejects(promptGraph(engine, { prompt: { text: PROMPT }, target: { text: ' Hugo Sean' } }), /target token/);
    await assert.rejects(promptGraph(engine, { prompt: { text: PROMPT }, nodeThreshold: 0 }), /node threshold/);
  });

  it('the worker and panel protocols accept the requests the editor sends and reject malformed ones', () => {
    assert.ok(engineRequests.validate({ method: 'engine/promptGraph', params: { text: PROMPT, mode: 'attnlrp', target: 'logit-diff', token: ' Hugo', foil: ' Sean' } }).ok);
    assert.ok(!engineRequests.validate({ method: 'engine/promptGraph', params: { text: PROMPT, mode: 'attnlrp', target: 'top1', nodeThreshold: 2 } }).ok);
    assert.ok(engineRequests.validate({ method: 'engine/ablatePromptNode', params: { ids: [1, 2], metric: 'logit', position: 1, token: 3, node: 'm0@1', ablation: 'mean' } }).ok);
    assert.ok(!engineRequests.validate({ method: 'engine/ablatePromptNode', params: { ids: [1, 2], metric: 'logit', position: 1, token: 3, node: 'input@1', ablation: 'zero' } }).ok);
    assert.ok(engineRequests.validate({ method: 'engine/logitLens', params: { ids: [1, 2], top: 3 } }).ok);
    assert.ok(engineRequests.validate({ method: 'engine/steer', params: { ids: [1, 2], node: 'a2.h2@1', scale: -3 } }).ok);
    assert.ok(!engineRequests.validate({ method: 'engine/steer', params: { ids: [1, 2], node: 'a2.h2', scale: -3 } }).ok, 'a steered node names its position');
    assert.ok(fromPromptPanelMessages.validate({ method: 'promptGraph/ablate', params: { node: 'a2.h2@19', ablation: 'zero' } }).ok);
    assert.ok(fromPromptPanelMessages.validate({ method: 'promptGraph/lens' }).ok);
    assert.ok(!fromPromptPanelMessages.validate({ method: 'promptGraph/ablate', params: { node: 'a2.h2@19', ablation: 'resample' } }).ok);
  });
});
